"""SyntheticAV: lazily generated audio-visual videos, and their precomputed model inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ...errors import ConfigError
from ...modalities import InputSpec
from ..audio import audio_window, log_spectrogram
from ..flow import FLOW_SIZE, FlowMethod
from ..sampling import segment_centres
from ..transforms import ClipTransform
from .config import SyntheticConfig, class_table
from .render import VideoPlan, make_plan, render_audio, render_frames, segment_of_frames

__all__ = ["SyntheticAV", "SyntheticVideo", "SyntheticTensorDataset", "Featurised"]

_SPLITS = {"train": 0, "val": 1, "test": 2}
_AUDIO = ("audio", "sound")


@dataclass(frozen=True)
class SyntheticVideo:
    """One raw synthetic video with its ground truth.

    Attributes:
        frames: ``(N, H, W, 3)`` uint8 RGB.
        audio: ``(n,)`` float32 mono at ``sample_rate``.
        fps: frames per second.
        sample_rate: audio rate (24 kHz).
        label: class index.
        class_name: the class's name in ``classes.txt``.
        categories: ``(G,)`` evidence category per evidence segment (`CATEGORY_NAMES`).
        evidence: ``(N, 2)`` bool per frame: (RGB shows the class, audio sounds like it) at
            that frame's time.
    """

    frames: np.ndarray
    audio: np.ndarray
    fps: float
    sample_rate: int
    label: int
    class_name: str
    categories: np.ndarray
    evidence: np.ndarray


class SyntheticAV:
    """A built-in procedural audio-visual dataset where adaptive selection matters (AdaMML Fig. 1).

    Every video has one of K classes. Its time is cut into G evidence segments; each segment
    independently shows the class (a yellow sprite of the class's shape, moving), sounds like it
    (the class tone), both, or neither, with the configured probabilities. Everything else is
    class-independent clutter: sprites of other colours, noise bursts, sweeps. Videos are
    generated on demand and deterministically from ``(seed, split, index)``.

    Args:
        num_videos: videos in this split.
        num_classes: K.
        seed: same seed, same data.
        split: ``"train"``, ``"val"`` or ``"test"`` (different videos for the same seed).
        **config: any `SyntheticConfig` field (``frames``, ``fps``, ``size``, ``p_rgb_only``,
            ``p_audio_only``, ``p_both``, ``p_neither``, ``motion_pairs``, ``motion_blur``, ...).

    Raises:
        ConfigError: an unknown split or option, or inconsistent probabilities.

    Example:
        >>> ds = SyntheticAV(8, seed=0)
        >>> v = ds.video(0)
        >>> v.frames.shape, v.audio.shape, v.fps
        ((160, 64, 64, 3), (307200,), 12.5)
    """

    def __init__(
        self,
        num_videos: int,
        *,
        num_classes: int = 6,
        seed: int = 0,
        split: Literal["train", "val", "test"] = "train",
        **config: Any,
    ) -> None:
        if split not in _SPLITS:
            raise ConfigError(
                f"SyntheticAV split must be one of {', '.join(_SPLITS)}; got {split!r}"
            )
        fields = SyntheticConfig.__dataclass_fields__
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ConfigError(
                f"SyntheticAV got unknown options {unknown}; known: "
                f"{', '.join(f for f in fields if f != 'num_classes')}"
            )
        if num_videos < 0:
            raise ConfigError(f"SyntheticAV num_videos must be >= 0; got {num_videos}")
        self.config = SyntheticConfig(num_classes=num_classes, **config)
        self.num_videos, self.seed, self.split = int(num_videos), int(seed), split
        self.classes = [c.name for c in class_table(num_classes, self.config.motion_pairs)]

    def __len__(self) -> int:
        return self.num_videos

    def _check(self, index: int) -> int:
        if not -self.num_videos <= index < self.num_videos:
            raise IndexError(f"SyntheticAV has {self.num_videos} videos; index {index}")
        return index % self.num_videos

    def plan(self, index: int) -> VideoPlan:
        """Every random choice of video ``index`` (cheap: no pixels, no samples)."""
        return make_plan(self.config, self.seed, _SPLITS[self.split], self._check(index))

    def frames(self, index: int, indices: Any) -> np.ndarray:
        """Only frames ``indices`` of video ``index``: ``(n, H, W, 3)`` uint8."""
        return render_frames(self.plan(index), self.config, indices)

    def video(self, index: int) -> SyntheticVideo:
        """The whole raw video ``index`` with its ground truth."""
        plan, cfg = self.plan(index), self.config
        segs = segment_of_frames(np.arange(cfg.frames), cfg)
        evidence = np.stack([plan.rgb_evidence[segs], plan.audio_evidence[segs]], axis=1)
        return SyntheticVideo(
            render_frames(plan, cfg, range(cfg.frames)),
            render_audio(plan, cfg),
            cfg.fps,
            cfg.sample_rate,
            plan.label,
            self.classes[plan.label],
            plan.categories.copy(),
            evidence,
        )

    @property
    def labels(self) -> np.ndarray:
        """``(V,)`` class index of every video."""
        return np.array([self.plan(i).label for i in range(self.num_videos)], np.int64)

    def tensors(
        self, input_spec: Mapping[str, InputSpec], segments: int, train: bool, **options: Any
    ) -> SyntheticTensorDataset:
        """Precompute the model inputs of every video once (see `SyntheticTensorDataset`).

        ``options`` are the dataset's other keyword arguments (``subsegments``, ``augment``,
        ``max_shift``, ``flow_method``, ``flow_size``, ``transform``), passed on as they are.
        """
        return SyntheticTensorDataset(self, input_spec, segments=segments, train=train, **options)


@dataclass(frozen=True)
class Featurised:
    """What featurising a `SyntheticAV` split makes (`SyntheticTensorDataset`'s ``featurised``).

    Attributes:
        inputs: modality -> ``(V, P, T, C, H, W)`` tensors.
        labels: ``(V,)`` int64.
        evidence: ``(V, P, 2)`` float32 ground truth per clip position.
    """

    inputs: Mapping[str, Tensor]
    labels: Tensor
    evidence: Tensor


class SyntheticTensorDataset(Dataset):
    """In-memory model inputs of a `SyntheticAV`, so an epoch does no rendering or decoding.

    Every video is featurised once at ``P`` evenly spaced clip positions (evaluation sampling
    with ``P`` segments): ``P = S`` for evaluation, ``P = S * subsegments`` for training. A
    training item takes, for each of its S regions, one of the region's ``subsegments``
    positions at random (drawn from ``(seed, epoch, index)``; call `set_epoch`), a cheap
    stand-in for TSN's random start per region. No crops or flips.

    Args:
        source: the raw videos.
        input_spec: modality -> `InputSpec` (``model.input_spec``): rgb, rgbdiff, flow, audio.
        segments: S per item.
        train: draw positions per epoch (True) or use the S evaluation positions (False).
        subsegments: positions per training region.
        augment: mirror and shift training items (ignored for evaluation).
        max_shift: largest shift in pixels; ``None``: an eighth of the frame side.
        flow_method: how flow inputs are computed (``tvl1``, ``farneback`` or ``dis``).
        flow_size: the shorter side of the frames flow is computed on (256, the real
            pipeline's). SyntheticAV's frames are rendered at 64 px, so 64 computes flow on
            them as rendered, about 16x faster; displacements are then in pixels of 64-px
            frames (about a quarter of the 256-px values, correlation 0.66 on 4 DIS videos),
            so a model trained with one flow_size should be evaluated with the same.
        transform: a ``ClipTransform``-like callable built for ``P`` evaluation segments;
            ``None`` uses `adamml.data.ClipTransform` (evaluation mode) for the visual
            modalities and the same window and spectrogram, batched, for audio.
        sample_like: sample the clips as for these inputs (`adamml.data.ClipTransform`).
        featurised: inputs already made for these arguments (a cache's); skips rendering.

    Attributes:
        inputs: modality -> ``(V, P, T, C, H, W)`` tensors (visual stored as float16).
        labels: ``(V,)`` int64.
        evidence: ``(V, P, 2)`` float32: fraction of the clip's sampled frames that show the
            class, and whether the audio window's centre lies in an audio-evidence segment.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> spec = {"rgb": InputSpec((4, 3, 32, 32), "rgb"),
        ...         "audio": InputSpec((1, 1, 32, 32), "audio")}
        >>> ds = SyntheticAV(4, seed=0).tensors(spec, segments=5, train=True)
        >>> x, y = ds[0]
        >>> x["rgb"].shape, x["audio"].shape
        (torch.Size([5, 4, 3, 32, 32]), torch.Size([5, 1, 1, 32, 32]))
    """

    def __init__(
        self,
        source: SyntheticAV,
        input_spec: Mapping[str, InputSpec],
        *,
        segments: int,
        train: bool,
        subsegments: int = 2,
        augment: bool = True,
        max_shift: int | None = None,
        flow_method: FlowMethod = "tvl1",
        flow_size: int = FLOW_SIZE,
        transform: Callable[..., dict[str, Tensor]] | None = None,
        sample_like: Mapping[str, InputSpec] | None = None,
        featurised: Featurised | None = None,
    ) -> None:
        if segments < 1 or subsegments < 1:
            raise ConfigError(
                f"segments and subsegments must be >= 1; got {segments}, {subsegments}"
            )
        self.source, self.segments, self.train = source, int(segments), bool(train)
        self.subsegments = int(subsegments) if train else 1
        self.augment = bool(augment) and self.train
        self.max_shift = max_shift
        self.epoch = 0
        positions = self.segments * self.subsegments
        full = ClipTransform(input_spec, segments=positions, train=False, sample_like=sample_like)
        self.kinds = full.kinds  # modality -> rgb/flow/rgbdiff/audio (listings)
        self.producers = full.producers  # how each input takes a crop and flip
        if featurised is None:
            featurised = self._featurise(
                input_spec, full, positions, flow_method, flow_size, transform, sample_like
            )
        elif missing := [m for m in input_spec if m not in featurised.inputs]:
            raise ConfigError(f"featurised SyntheticAV inputs lack {missing}")
        self.inputs = {m: featurised.inputs[m] for m in input_spec if m in featurised.inputs}
        self.labels, self.evidence = featurised.labels, featurised.evidence

    def _featurise(
        self,
        input_spec: Mapping[str, InputSpec],
        full: ClipTransform,
        positions: int,
        flow_method: FlowMethod,
        flow_size: int,
        transform: Callable[..., dict[str, Tensor]] | None,
        sample_like: Mapping[str, InputSpec] | None,
    ) -> Featurised:
        """Render every video and make its inputs at the ``positions`` clip positions."""
        source, cfg = self.source, self.source.config
        audio_names = [m for m in input_spec if m in _AUDIO]
        visual_spec = {m: s for m, s in input_spec.items() if m not in _AUDIO}
        # The real pipeline's featuriser, in evaluation mode (deterministic); audio is done
        # here, batched over videos, with the same window and spectrogram as ClipTransform.
        fx = transform or (
            ClipTransform(
                visual_spec,
                segments=positions,
                train=False,
                flow_method=flow_method,
                flow_size=flow_size,
                sample_like=sample_like,
            )
            if visual_spec
            else None
        )
        indices = full.sample(cfg.frames, np.random.default_rng(0))
        any_t = next(iter(indices.values()))
        idx = indices[max(indices)]
        centres = segment_centres(any_t)
        frame_segs = segment_of_frames(idx, cfg)
        centre_segs = segment_of_frames(np.floor(centres), cfg)
        chunks: dict[str, list[Tensor]] = {m: [] for m in input_spec}
        pending: list[np.ndarray] = []
        labels, evidence = [], []
        for i in range(len(source)):
            plan = source.plan(i)
            audio = render_audio(plan, cfg) if audio_names else None
            if transform is None and audio is not None:
                pending.extend(
                    audio_window(audio, c / cfg.fps, sample_rate=cfg.sample_rate) for c in centres
                )
                if len(pending) >= 64 or i == len(source) - 1:  # keep raw windows few
                    batch = log_spectrogram(torch.from_numpy(np.stack(pending)))[:, None]
                    for m in audio_names:
                        chunks[m].append(F.adaptive_avg_pool2d(batch, input_spec[m].size))
                    pending = []
            if fx is not None:
                out = fx(
                    lambda ind, p=plan: render_frames(p, cfg, ind),
                    cfg.frames,
                    cfg.fps,
                    audio,
                    np.random.default_rng(0),
                )
                for m, x in out.items():
                    if m in chunks:
                        chunks[m].append(x.float() if m in _AUDIO else x.half())
            labels.append(plan.label)
            evidence.append(
                np.stack(
                    [plan.rgb_evidence[frame_segs].mean(1), plan.audio_evidence[centre_segs]],
                    axis=1,
                )
            )
        v = len(source)
        inputs = {m: torch.stack(chunks[m]) for m in visual_spec if chunks[m]}
        for m in audio_names:
            x = chunks[m]
            inputs[m] = (
                (
                    torch.stack(x)
                    if transform is not None
                    else torch.cat(x).reshape(v, positions, 1, 1, *input_spec[m].size)
                )
                if x
                else torch.empty(0)
            )
        return Featurised(
            {m: inputs[m] for m in input_spec if m in inputs},
            torch.tensor(labels, dtype=torch.int64),
            torch.tensor(np.array(evidence), dtype=torch.float32).reshape(v, positions, 2),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Choose the training positions of this epoch (reproducible per epoch)."""
        self.epoch = int(epoch)

    def positions(self, index: int) -> np.ndarray:
        """``(S,)`` stored clip positions that item ``index`` uses this epoch."""
        base = np.arange(self.segments) * self.subsegments
        if not self.train or self.subsegments == 1:
            return base
        rng = np.random.default_rng([self.source.seed, self.epoch, index])
        return base + rng.integers(0, self.subsegments, self.segments)

    def _augment(self, inputs: dict[str, Tensor], index: int) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.source.seed, self.epoch, index, 1])
        flip = bool(rng.random() < 0.5)
        shift = rng.random(2)  # fractions of the largest shift, mapped per modality size
        out = {}
        for m, x in inputs.items():
            producer = self.producers[m]
            if not producer.spatial:
                out[m] = x
                continue
            h, w = x.shape[-2:]
            most = self.max_shift if self.max_shift is not None else max(1, min(h, w) // 8)
            dy, dx = (int(round((2 * f - 1) * most)) for f in shift)
            rows = torch.arange(h).add(dy).clamp_(0, h - 1)
            cols = torch.arange(w).add(dx).clamp_(0, w - 1)
            if flip:
                cols = cols.flip(0)
            x = x[..., rows, :][..., cols]
            if flip and producer.x_channels is not None:
                ch = producer.x_channels
                x[..., ch, :, :] = -x[..., ch, :, :]
            out[m] = x
        return out

    def segment_evidence(self, index: int) -> Tensor:
        """``(S, 2)`` ground truth (RGB fraction, audio) of the segments item ``index`` returns."""
        return self.evidence[index, self.positions(index)]

    def __getitem__(self, index: int) -> tuple[dict[str, Tensor], int]:
        pos = torch.from_numpy(self.positions(index))
        inputs = {m: x[index, pos].float() for m, x in self.inputs.items()}
        if self.augment:
            inputs = self._augment(inputs, index)
        return inputs, int(self.labels[index])
