"""One video file to model inputs, for prediction and quick experiments (AdaMML appendix B).

Given a model, optical flow comes back lazy: an [`OnDemandFlow`][adamml.data.OnDemandFlow] that
``model(x)`` asks only for the segments its policy selected (AdaMML-RGBDiff, Table 2), instead
of TV-L1 on every segment before the policy has decided anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..modalities import InputSpec
from .errors import NoAudioStreamError
from .flow import FlowMethod
from .flowstore import find_flow_file, read_flow_pairs
from .frames import open_media
from .prefetch import clip_inputs
from .producers import SegmentRequest, producer_for
from .transforms import ClipTransform

__all__ = ["load_video_inputs", "lazy_modalities"]


def lazy_modalities(model: Any) -> tuple[str, ...]:
    """The inputs [`load_video_inputs`][adamml.data.load_video_inputs] makes lazy for ``model``.

    A model (anything with ``modalities``, ``policy_modalities`` and ``input_spec``, like
    `adamml.AdaMML`) gets its recognition modalities whose producer can work on demand
    (``InputProducer.on_demand``: optical flow) lazily: the router asks only for the selected
    segments. When the policy looks at flow too (``adamml_rgb_flow``),
    the model asks the source for the policy view's frames of every segment
    (``select_frames``) and the rest only where flow was selected. A plain ``input_spec`` dict
    gets nothing lazy.

    Example:
        >>> import adamml
        >>> lazy_modalities(adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=3))
        ('flow',)
    """
    if not all(hasattr(model, a) for a in ("modalities", "policy_modalities", "input_spec")):
        return ()
    spec = model.input_spec
    return tuple(m for m in model.modalities if m in spec and producer_for(m, spec[m]).on_demand)


def _device(model: Any, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if isinstance(first, Tensor) else torch.device("cpu")


def load_video_inputs(
    path: str | os.PathLike[str],
    input_spec: Mapping[str, InputSpec] | Any,
    *,
    segments: int = 10,
    missing_audio: str = "zeros",
    flow_on_demand: bool | None = None,
    flow_dir: str | os.PathLike[str] | None = None,
    flow_method: FlowMethod = "tvl1",
    flow_reduced: bool = False,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Decode ``path`` and build the evaluation inputs a model asks for.

    Evaluation sampling (``segments`` evenly spaced segments, centre crop), exactly as
    [`VideoDataset`][adamml.data.VideoDataset] does with ``train=False``. Given a model,
    ``load_video_inputs(path, model)`` returns lazy (on-demand) flow (see `lazy_modalities`),
    so ``model(x)`` computes flow only for the segments its policy selected, and an input only
    the policy looks at (RGB difference with the proxy) as the policy's view: only the frames
    the view keeps are computed.

    Args:
        path: a video file (any container PyAV reads) or a frame folder.
        input_spec: the model itself, or ``model.input_spec`` (then flow is eager).
        segments: S.
        missing_audio: ``"zeros"`` (a silent spectrogram) or ``"raise"`` when the file has no
            audio track but the model needs audio.
        flow_on_demand: ``True``: flow as an `OnDemandFlow`; ``False``: computed now for every
            segment; ``None`` (default): on demand for a model's flow (`lazy_modalities`),
            eager for a plain ``input_spec``.
        flow_dir: stored flow from ``adamml extract flow`` (found with `find_flow_file`); read
            eagerly, no flow is computed.
        flow_method: how flow is computed otherwise (see `optical_flow`).
        flow_reduced: reduced TV-L1 settings.
        device: where the returned tensors and the on-demand flow live, and where
            ``raft_small`` runs (default: the model's device, else the CPU).

    Returns:
        ``{m: (1, S, T, C, H, W)}``: a batch of one video; lazy flow is an `OnDemandFlow` of
        that shape.

    Raises:
        DataError: (a subclass) naming the file when it cannot be decoded, or its stored flow
            cannot be found.

    Example:
        >>> x = load_video_inputs("clip.mp4", model)  # doctest: +SKIP
        >>> out = model.eval()(x)  # flow only where out.decisions selects it  # doctest: +SKIP
    """
    transform, views, dev = video_transform(
        input_spec,
        segments=segments,
        flow_on_demand=flow_on_demand,
        flow_method=flow_method,
        flow_reduced=flow_reduced,
        device=device,
    )
    stored = None
    if flow_dir is not None and "flow" in transform.kinds.values():
        flow_path = find_flow_file(flow_dir, path)
        stored = lambda starts: read_flow_pairs(flow_path, starts)  # noqa: E731
    media = open_media(path)
    audio = None
    if transform.needs_audio:
        if media.has_audio:
            audio = media.get_audio()
        elif missing_audio == "raise":
            raise NoAudioStreamError(f"{path}: the file has no audio stream")
    # one decode of the file: on-demand flow later reads the frames kept from it
    rng = np.random.default_rng(0)
    inputs = clip_inputs(transform, media, audio, rng, stored=stored, path=path)
    return batch_of_one(inputs, views, dev)


def video_transform(
    input_spec: Mapping[str, InputSpec] | Any,
    *,
    segments: int,
    flow_on_demand: bool | None,
    flow_method: FlowMethod,
    flow_reduced: bool,
    device: torch.device | str | None,
) -> tuple[ClipTransform, dict[str, tuple[tuple[int, ...], Any]], torch.device]:
    """The evaluation `ClipTransform` for a model (or an ``input_spec``), the policy-only views
    it produces in part (`batch_of_one` resizes them) and the device of the inputs; shared by
    `load_video_inputs` and `adamml.data.stream_video_inputs`."""
    spec = dict(getattr(input_spec, "input_spec", input_spec))
    dev = _device(input_spec, device)
    lazy = bool(lazy_modalities(input_spec)) if flow_on_demand is None else flow_on_demand
    views = _policy_only_views(input_spec)
    transform = ClipTransform(
        spec,
        segments=segments,
        train=False,
        flow_method=flow_method,
        flow_reduced=flow_reduced,
        flow_on_demand=lazy,
        flow_device=dev,
        frame_subsets={m: frames for m, (frames, _) in views.items()},
    )
    return transform, views, dev


def batch_of_one(
    inputs: Mapping[str, Any], views: Mapping[str, tuple[tuple[int, ...], Any]], dev: torch.device
) -> dict[str, Any]:
    """One video's produced inputs ``(S, ...)`` as a batch of one on ``dev``: policy-only
    inputs resized to the policy's view, on-demand requests as their `SegmentSource`."""
    inputs = dict(inputs)
    for m, (_, view) in views.items():  # the frames the policy keeps, resized to its view
        inputs[m] = view(inputs[m].unsqueeze(0))[0]
    return {
        m: type(x).batch([x], device=dev)
        if isinstance(x, SegmentRequest)
        else x.unsqueeze(0).to(dev)
        for m, x in inputs.items()
    }


def _policy_only_views(model: Any) -> dict[str, tuple[tuple[int, ...], Any]]:
    """For a model's policy-only visual inputs (``rgbdiff`` with the proxy): the frame
    positions its policy view keeps and the resize to that view; nothing for a plain spec."""
    specs = getattr(model, "specs", None)
    if not isinstance(specs, Mapping) or not hasattr(model, "policy_modalities"):
        return {}
    out = {}
    for m in model.policy_modalities:
        spec = specs.get(m)
        if m in model.modalities or spec is None or spec.is_audio or m not in model.input_spec:
            continue
        frames = tuple(range(0, spec.frames, spec.policy_frame_stride))
        out[m] = (frames, spec.replace(policy_frame_stride=1).policy_view)
    return out
