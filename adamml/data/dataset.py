"""`VideoDataset`: manifest rows to the model's input dict, straight from video files.

Each item decodes only the frames its segments need (`VideoReader`), reads the audio track
(resampled to 24 kHz mono by FFmpeg) and runs [`ClipTransform`][adamml.data.ClipTransform].
Training randomness comes from a generator seeded by ``(seed, epoch, index)``, so a run is
reproducible whatever the number of DataLoader workers (call ``set_epoch`` each epoch).

Bad files. ``on_error="raise"`` raises the typed error. ``"skip"`` and ``"warn"`` (which also
emits a warning) replace the item by the next index that loads (``i+1, i+2, ...`` modulo the
length, at most ``max_retries`` tries) and record the bad file in a small JSON-lines log file
shared by all worker processes; ``ds.bad_files()`` / ``ds.report_errors()`` read it in the main
process after (or during) an epoch.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..modalities import InputSpec
from .errors import DataError, NoAudioStreamError
from .flowstore import flow_file, read_flow_pairs
from .frames import open_media
from .manifest import Manifest, read_manifest
from .prefetch import clip_inputs
from .producers import SegmentRequest
from .transforms import ClipTransform

__all__ = ["VideoDataset", "collate_clips"]

OnError = Literal["raise", "skip", "warn"]


def _specs(input_spec: Mapping[str, InputSpec] | Any) -> dict[str, InputSpec]:
    spec = getattr(input_spec, "input_spec", input_spec)
    if not isinstance(spec, Mapping) or not all(isinstance(v, InputSpec) for v in spec.values()):
        raise ConfigError("input_spec must be a dict of InputSpec or a model with .input_spec")
    return dict(spec)


def _remove(path: str, pid: int) -> None:
    if os.getpid() == pid and os.path.exists(path):
        os.remove(path)


class VideoDataset(Dataset):
    """A manifest of videos as model inputs (AdaMML appendix B).

    Args:
        manifest: ``path,label`` CSV (see `read_manifest`) or a parsed `Manifest`.
        input_spec: modality -> `InputSpec`, or a model with ``.input_spec``.
        segments: S (5 in training, 10 in evaluation in the paper).
        train: random sampling and augmentation.
        on_error: ``"raise"``, ``"skip"`` or ``"warn"`` (see the module docs).
        flow_dir: stored flow from ``extract_flow`` (else flow is computed from frames).
        seed: base seed of the per-(seed, epoch, index) generators.
        classes: class names or file (default ``classes.txt`` beside the manifest).
        missing_audio: ``"zeros"`` (a zero spectrogram, as the reference does for a missing WAV)
            or ``"raise"`` (`NoAudioStreamError`, handled by ``on_error``).
        flow_on_demand: return a `FlowRequest` for flow; `collate_clips` turns a batch of them
            into an `OnDemandFlow` that computes flow only for selected segments.
        max_retries: replacement tries for a bad item.
        error_log: file recording bad files (default: a temporary file, removed with the dataset).
        **transform_kwargs: passed to `ClipTransform` (``independent_augment``, ``flow_method``,
            ``flow_reduced``, ``flow_size``, ``rgbdiff_uint8``).

    Returns (``ds[i]``):
        ``(inputs, label)``: inputs like the model's without the batch dimension (visual
        ``(S, T, C, H, W)``, audio ``(S, 1, 1, F, W)``: ``(S, *spec.shape)``); label an int64
        class index, or a float multi-hot ``(K,)`` for multi-label manifests.

    Example:
        >>> ds = VideoDataset("train.csv", model.input_spec, segments=5)  # doctest: +SKIP
        >>> inputs, label = ds[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str] | Manifest,
        input_spec: Mapping[str, InputSpec] | Any,
        segments: int = 5,
        train: bool = True,
        on_error: OnError = "raise",
        flow_dir: str | os.PathLike[str] | None = None,
        seed: int = 0,
        *,
        classes: list[str] | str | None = None,
        missing_audio: Literal["zeros", "raise"] = "zeros",
        flow_on_demand: bool = False,
        max_retries: int = 10,
        error_log: str | os.PathLike[str] | None = None,
        **transform_kwargs: Any,
    ) -> None:
        if on_error not in ("raise", "skip", "warn"):
            raise ConfigError(f"on_error must be 'raise', 'skip' or 'warn', got {on_error!r}")
        if missing_audio not in ("zeros", "raise"):
            raise ConfigError(f"missing_audio must be 'zeros' or 'raise', got {missing_audio!r}")
        self.manifest = (
            manifest if isinstance(manifest, Manifest) else read_manifest(manifest, classes)
        )
        if not self.manifest.entries:
            raise ConfigError(f"{self.manifest.path}: the manifest has no rows")
        self.input_spec = _specs(input_spec)
        self.segments, self.train, self.on_error, self.seed = segments, train, on_error, seed
        self.flow_dir = Path(flow_dir) if flow_dir else None
        self.missing_audio, self.max_retries = missing_audio, max_retries
        self.transform = ClipTransform(
            self.input_spec,
            segments=segments,
            train=train,
            flow_on_demand=flow_on_demand,
            **transform_kwargs,
        )
        self._needs_audio = self.transform.needs_audio
        self.epoch = 0
        if error_log is None:
            fd, name = tempfile.mkstemp(prefix="adamml-bad-files-", suffix=".jsonl")
            os.close(fd)
            weakref.finalize(self, _remove, name, os.getpid())
            error_log = name
        self.error_log = Path(error_log)

    @property
    def classes(self) -> list[str]:
        """Class names, index = label."""
        return self.manifest.classes

    def __len__(self) -> int:
        return len(self.manifest.entries)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random draws (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def label(self, index: int) -> Tensor:
        """The target of row ``index``: int64 class, or float multi-hot ``(K,)``."""
        labels = self.manifest.entries[index].labels
        if self.manifest.multi_label:
            target = torch.zeros(len(self.classes))
            target[list(labels)] = 1.0
            return target
        return torch.tensor(labels[0], dtype=torch.long)

    def load(self, index: int) -> dict[str, Tensor | SegmentRequest]:
        """Inputs of row ``index`` (no error handling).

        Raises:
            DataError: the file is missing, unreadable or has no audio (``missing_audio="raise"``).
        """
        entry = self.manifest.entries[index]
        media = open_media(entry.path, audio=entry.audio, fps=entry.fps)
        audio = None
        if self._needs_audio:
            if entry.audio is not None and not media.has_audio:
                from .frames import _audio_only

                audio = _audio_only(entry.audio, 24000)
            elif media.has_audio:
                audio = media.get_audio()
            elif self.missing_audio == "raise":
                raise NoAudioStreamError(f"{entry.path}: the file has no audio stream")
        stored = None
        if self.flow_dir is not None and "flow" in self.transform.kinds.values():
            rel = os.path.relpath(entry.path, self.manifest.path.parent)
            path = flow_file(self.flow_dir, rel)
            stored = lambda starts: read_flow_pairs(path, starts)  # noqa: E731
        rng = np.random.default_rng([self.seed, self.epoch, index])
        # in this process, on-demand flow reads the frames kept from the clip's one decode
        return clip_inputs(
            self.transform,
            media,
            audio,
            rng,
            stored=stored,
            path=entry.path,
            columns=entry.columns,
            root=self.manifest.path.parent,
        )

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor | SegmentRequest], Tensor]:
        if self.on_error == "raise":
            return self.load(index), self.label(index)
        tried = 0
        i = index
        while True:
            try:
                return self.load(i), self.label(i)
            except DataError as e:
                self._record(i, e)
                tried += 1
                if tried >= min(self.max_retries, len(self)):
                    raise DataError(
                        f"{tried} files in a row failed to load from item {index} "
                        f"(last: {e}); see ds.report_errors()"
                    ) from e
                i = (i + 1) % len(self)

    def _record(self, index: int, error: DataError) -> None:
        path = str(self.manifest.entries[index].path)
        line = json.dumps(
            {"path": path, "index": index, "error": f"{type(error).__name__}: {error}"}
        )
        with open(self.error_log, "a", encoding="utf-8") as f:  # O_APPEND: safe across workers
            f.write(line + "\n")
        if self.on_error == "warn":
            warnings.warn(f"skipping bad file {path}: {error}", RuntimeWarning, stacklevel=3)

    def bad_files(self) -> dict[str, str]:
        """Bad files recorded so far by any process: path -> error message."""
        if not self.error_log.is_file():
            return {}
        out: dict[str, str] = {}
        for line in self.error_log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["path"]] = rec["error"]
        return out

    def report_errors(self, *, clear: bool = False) -> str:
        """A summary of the bad files (also emitted as a warning when there are any).

        Args:
            clear: empty the log afterwards (e.g. at the end of each epoch).
        """
        bad = self.bad_files()
        text = (
            f"{len(bad)} bad file(s) skipped:\n"
            + "\n".join(f"  {p}: {m}" for p, m in sorted(bad.items()))
            if bad
            else "no bad files"
        )
        if bad:
            warnings.warn(text, RuntimeWarning, stacklevel=2)
        if clear and self.error_log.exists():
            self.error_log.write_text("", encoding="utf-8")
        return text


def collate_clips(batch: list[tuple[dict[str, Any], Tensor]]) -> tuple[dict[str, Any], Tensor]:
    """Stack a batch of ``(inputs, label)``; `SegmentRequest` entries (e.g. `FlowRequest`)
    become one SegmentSource (``type(request).batch``, e.g. `OnDemandFlow`).

    Use as ``DataLoader(ds, collate_fn=collate_clips)`` with ``flow_on_demand=True``.
    """
    inputs: dict[str, Any] = {}
    for key, first in batch[0][0].items():
        items = [b[0][key] for b in batch]
        inputs[key] = (
            type(first).batch(items) if isinstance(first, SegmentRequest) else torch.stack(items)
        )
    return inputs, torch.stack([b[1] for b in batch])
