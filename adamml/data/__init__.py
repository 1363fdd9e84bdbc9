"""Data pipeline: decoding, sampling, features, optical flow and datasets (AdaMML appendix B).

```
video file --VideoReader--> frames (n, H, W, 3) uint8 + audio (n,) float32 24 kHz mono
           --sample_segments--> (S, T) indices   --ClipTransform--> {"rgb": (S, T, 3, H, W),
             "flow": (S, T, 10, H, W), "rgbdiff": (S, T, 15, H, W), "audio": (S, 1, 1, F, W)}
```
"""

from __future__ import annotations

from typing import Any

from . import errors as _errors
from .audio import audio_window, log_spectrogram
from .check import ManifestReport, check_manifest, import_reference_list
from .clip import lazy_modalities, load_video_inputs
from .dataset import VideoDataset, collate_clips
from .decode import VideoReader
from .errors import *  # noqa: F403  (the error classes, as errors.__all__ lists them)
from .extract import ExtractResult, ExtractRun, extract_audio, extract_flow, extract_frames
from .flow import (
    FLOW_METHODS,
    FlowMethod,
    FlowOptions,
    dequantise_flow,
    normalise_flow,
    optical_flow,
    optical_flow_batch,
    quantise_flow,
)
from .flowclip import FlowRequest, OnDemandFlow
from .flowstore import find_flow_file
from .frames import FrameFolderReader, open_media
from .importers import IMPORTERS, ImportResult, import_dataset
from .manifest import Manifest, builtin_classes, expected_num_classes, read_classes, read_manifest
from .prefetch import PrefetchedFrames
from .producers import ClipContext, InputProducer, SegmentRequest, SideFileInput
from .sampling import sample_segments
from .spatial import SpatialParams
from .stream import DecodedSegment, SegmentReader, stream_video_inputs
from .transforms import ClipTransform

__all__ = [
    "VideoReader",
    "FrameFolderReader",
    "load_video_inputs",
    "stream_video_inputs",
    "SegmentReader",
    "DecodedSegment",
    "lazy_modalities",
    "PrefetchedFrames",
    "open_media",
    "sample_segments",
    "log_spectrogram",
    "audio_window",
    "ClipTransform",
    "InputProducer",
    "ClipContext",
    "SegmentRequest",
    "SideFileInput",
    "SpatialParams",
    "optical_flow",
    "optical_flow_batch",
    "FlowOptions",
    "FlowMethod",
    "FLOW_METHODS",
    "quantise_flow",
    "dequantise_flow",
    "normalise_flow",
    "FlowRequest",
    "OnDemandFlow",
    "find_flow_file",
    "extract_flow",
    "extract_frames",
    "extract_audio",
    "ExtractResult",
    "ExtractRun",
    "VideoDataset",
    "collate_clips",
    "Manifest",
    "read_manifest",
    "read_classes",
    "builtin_classes",
    "expected_num_classes",
    "check_manifest",
    "ManifestReport",
    "import_reference_list",
    "import_dataset",
    "ImportResult",
    "IMPORTERS",
    *_errors.__all__,
]


def __getattr__(name: str) -> Any:
    # SyntheticAV lives in .synthetic (written separately); imported lazily so this package
    # does not depend on it.
    if name == "SyntheticAV":
        from .synthetic import SyntheticAV

        return SyntheticAV
    raise AttributeError(f"module 'adamml.data' has no attribute {name!r}")
