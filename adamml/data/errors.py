"""Typed errors of the data pipeline.

Every error derives from [`DataError`][adamml.data.errors.DataError], itself an
[`AdamMLError`][adamml.errors.AdamMLError] and a `RuntimeError`, so ``except adamml.AdamMLError``
catches them. Messages name the file and the problem.
"""

from __future__ import annotations

from ..errors import AdamMLError

__all__ = [
    "DataError",
    "MediaFileError",
    "VideoDecodeError",
    "NoVideoStreamError",
    "NoAudioStreamError",
    "ManifestError",
    "FlowWeightsError",
    "MissingSideFileError",
]


class DataError(AdamMLError, RuntimeError):
    """Base class of every data-pipeline error (decoding, manifests, features)."""


class MediaFileError(DataError, OSError):
    """A media file is missing, empty or cannot be opened at all."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


class VideoDecodeError(DataError):
    """A file opened but its frames or audio could not be decoded (corrupt or truncated)."""


class NoVideoStreamError(VideoDecodeError):
    """The file has no video stream (e.g. an audio-only file)."""


class NoAudioStreamError(DataError):
    """Audio was asked for but the file has no audio stream."""


class ManifestError(DataError, ValueError):
    """A manifest, class list or reference list file is malformed (the message names the line)."""


class FlowWeightsError(DataError):
    """A flow network's weights (``raft_small``) are not cached and cannot be downloaded."""


class MissingSideFileError(MediaFileError):
    """A modality's side file (named in a manifest column) is missing or not named at all."""
