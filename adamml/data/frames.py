"""Frame folders (the reference's ``%05d.jpg`` extraction) behind the `VideoReader` interface."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .decode import AUDIO_RATE, VideoReader
from .errors import MediaFileError, NoAudioStreamError, VideoDecodeError
from .spatial import resize_frame_short

__all__ = ["FrameFolderReader", "open_media"]


class FrameFolderReader:
    """Frames stored as ``00001.jpg, 00002.jpg, ...`` in a folder, with an optional audio file.

    Args:
        folder: the frame folder.
        fps: the frame rate the frames were extracted at (the reference uses native fps; its
            loader assumes 29.97).
        audio: an audio file (e.g. the reference's 24 kHz mono WAV), read with PyAV.

    Raises:
        MediaFileError: the folder is missing or holds no ``.jpg`` frames.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        fps: float = 29.97,
        audio: str | os.PathLike[str] | None = None,
    ) -> None:
        self.path = Path(folder)
        if not self.path.is_dir():
            raise MediaFileError(f"{self.path}: frame folder not found")
        images = (".jpg", ".jpeg", ".png")
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in images)
        if not self.files:
            raise MediaFileError(f"{self.path}: no .jpg frames in the folder")
        self.fps, self.num_frames = float(fps), len(self.files)
        self.duration = self.num_frames / self.fps
        self.audio_path = Path(audio) if audio else None
        self.has_audio = bool(self.audio_path and self.audio_path.is_file())

    def get_frames(
        self, indices: Sequence[int] | np.ndarray, *, short: int | None = None
    ) -> np.ndarray:
        """``(n, H, W, 3)`` uint8 RGB frames (indices past the end give the last frame); with
        ``short``, each resized as it is read so that its shorter side is ``short``."""
        out = []
        for i in np.asarray(indices, dtype=np.int64).reshape(-1).tolist():
            f = self.files[min(max(i, 0), self.num_frames - 1)]
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoDecodeError(f"{f}: cannot decode the image")
            rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            out.append(rgb if short is None else resize_frame_short(rgb, short))
        return np.stack(out)

    def get_audio(self, sample_rate: int = AUDIO_RATE) -> np.ndarray:
        """The audio file as mono float32 at ``sample_rate``.

        Raises:
            NoAudioStreamError: no audio file was given or it does not exist.
        """
        if not self.has_audio or self.audio_path is None:
            raise NoAudioStreamError(f"{self.path}: no audio file for this frame folder")
        return _audio_only(self.audio_path, sample_rate)


def _audio_only(path: Path, sample_rate: int) -> np.ndarray:
    """Decode an audio-only file with the same FFmpeg resampling as `VideoReader.get_audio`."""
    reader = VideoReader.__new__(VideoReader)
    reader.path = path
    return VideoReader.get_audio(reader, sample_rate)


def open_media(
    path: str | os.PathLike[str],
    *,
    audio: str | os.PathLike[str] | None = None,
    fps: float | None = None,
) -> VideoReader | FrameFolderReader:
    """A `VideoReader` for a file, a `FrameFolderReader` for a folder of frames."""
    p = Path(path)
    if p.is_dir():
        return FrameFolderReader(p, fps=fps or 29.97, audio=audio)
    return VideoReader(p)
