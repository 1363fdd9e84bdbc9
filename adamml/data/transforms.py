"""`ClipTransform`: from a frame getter and an audio track to the model's input dict.

AdaMML appendix B and reference §8: S segments of T frames (stride 4); RGB scaled, cropped,
flipped and ImageNet-normalised; RGB difference as 5 stacked frame differences (15 channels);
optical flow as 5 interleaved x/y pairs (10 channels); audio as the 256x256 log-spectrogram of
the 1.28 s around each segment's centre frame. One crop/flip is drawn per clip and shared by the
visual modalities (``independent_augment=True`` draws one per modality, as the reference does).

Input specs smaller than the paper's are produced by scaling: visual crops equal the spec size
(shorter side ``size * 256 / 224``), and the 256x256 spectrogram is reduced to the spec's
``(F, W)`` by adaptive average pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..modalities import InputSpec
from .audio import audio_window, log_spectrogram
from .flow import FLOW_SIZE, FlowMethod, check_flow_method
from .flowclip import FlowRequest, compute_fields, flow_pairs, flow_segments
from .sampling import sample_segments, segment_centres
from .spatial import EVAL_SPATIAL, SpatialParams, apply_spatial, draw_spatial

__all__ = ["ClipTransform", "IMAGENET_MEAN", "IMAGENET_STD", "modality_kind"]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_KINDS = {"rgb": "rgb", "flow": "flow", "rgbdiff": "rgbdiff", "audio": "audio", "sound": "audio"}
FrameGetter = Callable[[Sequence[int]], np.ndarray]


def modality_kind(key: str, spec: InputSpec) -> str:
    """Which built-in pipeline produces ``spec`` (``rgb``, ``flow``, ``rgbdiff`` or ``audio``)."""
    for name in (spec.modality, key):
        if name in _KINDS:
            return _KINDS[name]
    raise ConfigError(
        f"no data pipeline for modality {key!r} (spec modality "
        f"{spec.modality!r}); known: rgb, flow, rgbdiff, audio (sound)"
    )


def _normalise_rgb(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


class ClipTransform:
    """Produce one video's inputs, exactly the shapes of ``input_spec``.

    Args:
        input_spec: modality -> [`InputSpec`][adamml.modalities.InputSpec] (``model.input_spec``).
        segments: S.
        train: random sampling and augmentation (True) or deterministic evaluation.
        independent_augment: draw crop/flip per modality (reference) instead of once per clip.
        flow_method: how flow is computed from frames (see `optical_flow`).
        flow_reduced: reduced TV-L1 settings.
        flow_size: shorter side of the frames flow is computed on; the flow is then
            scaled/cropped like the RGB frames.
        flow_on_demand: return a [`FlowRequest`][adamml.data.flowclip.FlowRequest] for ``flow``
            instead of a tensor (see `OnDemandFlow`); stored flow (``flow=`` in the call) is
            always read eagerly.
        flow_device: where ``raft_small`` computes eager flow (the CPU by default).
        rgbdiff_uint8: map RGB differences to uint8 with truncation as the reference does
            (``floor((d + 255) * 255 / 510)``); default keeps float ``(d + 255) / 510``.
        stride: temporal stride between sampled frames (4).
        frame_subsets: ``{modality: frame positions}``: produce only those of a segment's T
            sampled frames (RGB and RGB difference), e.g. the frames a policy's view keeps.

    Shape:
        visual ``(S, T, C, H, W)`` (``T = len(frame_subsets[m])`` where given); audio
        ``(S, 1, 1, F, W)``.

    Example:
        >>> from adamml.modalities import InputSpec
        >>> spec = {"rgb": InputSpec((4, 3, 32, 32), "rgb"),
        ...         "audio": InputSpec((1, 1, 32, 32), "audio")}
        >>> tf = ClipTransform(spec, segments=3, train=False)
        >>> frames = lambda idx: np.zeros((len(idx), 48, 64, 3), np.uint8)
        >>> out = tf(frames, 30, 30.0, None, np.random.default_rng(0))
        >>> out["rgb"].shape, out["audio"].shape
        (torch.Size([3, 4, 3, 32, 32]), torch.Size([3, 1, 1, 32, 32]))
    """

    def __init__(
        self,
        input_spec: Mapping[str, InputSpec],
        *,
        segments: int,
        train: bool,
        independent_augment: bool = False,
        flow_method: FlowMethod = "tvl1",
        flow_reduced: bool = False,
        flow_size: int = FLOW_SIZE,
        flow_on_demand: bool = False,
        rgbdiff_uint8: bool = False,
        stride: int = 4,
        flow_device: torch.device | str = "cpu",
        frame_subsets: Mapping[str, Sequence[int]] | None = None,
    ) -> None:
        if segments < 1:
            raise ConfigError(f"segments must be >= 1, got {segments}")
        self.input_spec = dict(input_spec)
        self.kinds = {k: modality_kind(k, s) for k, s in self.input_spec.items()}
        self.segments, self.train, self.stride = segments, train, stride
        self.independent_augment = independent_augment
        self.flow_method = check_flow_method(flow_method, "flow_method")
        self.flow_reduced, self.flow_size = flow_reduced, flow_size
        self.flow_device = torch.device(flow_device)
        self.frame_subsets = {k: tuple(int(t) for t in v) for k, v in (frame_subsets or {}).items()}
        for key in self.frame_subsets:
            if self.kinds.get(key) not in ("rgb", "rgbdiff"):
                raise ConfigError(
                    f"frame_subsets names {key!r}; only RGB and RGB-difference "
                    f"inputs can be produced for some frames (kinds: {self.kinds})"
                )
        self.flow_on_demand, self.rgbdiff_uint8 = flow_on_demand, rgbdiff_uint8
        # Stacked frames per sampled frame: flow C/2 pairs, RGB difference C/3 differences.
        per = {"flow": 2, "rgbdiff": 3}
        self.consecutive = max(
            [
                self.input_spec[k].channels // per[kind]
                for k, kind in self.kinds.items()
                if kind in per
            ]
            or [1]
        )

    def sample(self, num_frames: int, rng: np.random.Generator) -> dict[int, np.ndarray]:
        """``(S, T)`` indices for each distinct T among the modalities (same region draws)."""
        frames = sorted(
            {s.frames for k, s in self.input_spec.items() if self.kinds[k] != "audio"}
        ) or [8]
        seed = int(rng.integers(2**62))
        return {
            t: sample_segments(
                num_frames,
                self.segments,
                t,
                train=self.train,
                rng=np.random.default_rng(seed),
                stride=self.stride,
                consecutive=self.consecutive,
            )
            for t in frames
        }

    def __call__(
        self,
        get_frames: FrameGetter,
        num_frames: int,
        fps: float,
        audio: np.ndarray | None,
        rng: np.random.Generator,
        *,
        flow: Callable[[Sequence[int]], np.ndarray] | None = None,
    ) -> dict[str, Tensor | FlowRequest]:
        """One clip's inputs.

        Args:
            get_frames: indices -> ``(n, H, W, 3)`` uint8 RGB frames, in the order asked.
            num_frames: frames in the video.
            fps: the video's frame rate (aligns audio windows to frames).
            audio: ``(n,)`` float32 mono at 24 kHz, or ``None`` (zeros spectrogram).
            rng: all random draws come from it.
            flow: optional stored flow: pair starts -> ``(n, H, W, 2)`` float pixels (offline
                extraction); otherwise flow is computed from frames.

        Returns:
            modality -> tensor (or `FlowRequest` for on-demand flow).
        """
        num_frames = max(int(num_frames), 1)
        indices = self.sample(num_frames, rng)
        shared = draw_spatial(rng) if self.train else EVAL_SPATIAL
        params = {
            k: (draw_spatial(rng) if self.train and self.independent_augment else shared)
            for k in self.input_spec
        }
        needed: set[int] = set()
        for key, kind in self.kinds.items():
            idx = indices.get(self.input_spec[key].frames)
            if kind == "rgb":
                needed.update(idx.reshape(-1).tolist())
            elif kind == "rgbdiff" or (kind == "flow" and flow is None and not self.flow_on_demand):
                stack = self.input_spec[key].channels // (3 if kind == "rgbdiff" else 2)
                steps = np.arange(stack + 1)
                needed.update(np.clip(idx[..., None] + steps, 0, num_frames - 1).ravel().tolist())
        order = np.array(sorted(needed), dtype=np.int64)
        raw = get_frames(order.tolist()) if len(order) else None
        take = lambda ix: raw[np.searchsorted(order, ix)]  # noqa: E731
        # every decoded frame is scaled and cropped once per (size, augmentation), then shared
        # by the modalities that use it (RGB and the RGB differences read the same frames)
        scaled: dict[tuple[tuple[int, int], SpatialParams], np.ndarray] = {}

        def spatial(ix: np.ndarray, size: tuple[int, int], p: SpatialParams) -> np.ndarray:
            if (size, p) not in scaled:
                scaled[(size, p)] = apply_spatial(raw, size, p)
            return scaled[(size, p)][np.searchsorted(order, ix)]

        out: dict[str, Tensor | FlowRequest] = {}
        for key, spec in self.input_spec.items():
            kind, p = self.kinds[key], params[key]
            if kind == "audio":
                any_t = next(iter(indices.values()))
                out[key] = self._audio(audio, segment_centres(any_t) / fps, spec)
                continue
            idx = indices[spec.frames]
            if key in self.frame_subsets:
                idx = idx[:, list(self.frame_subsets[key])]
            if kind == "rgb":
                out[key] = self._rgb(spatial(idx.reshape(-1), spec.size, p), spec, idx.shape[1])
            elif kind == "rgbdiff":
                out[key] = self._rgbdiff(spatial, idx, num_frames, spec, p)
            else:
                out[key] = self._flow(take, get_frames, flow, idx, num_frames, spec, p)
        return out

    def _rgb(self, frames: np.ndarray, spec: InputSpec, t: int) -> Tensor:
        x = _normalise_rgb(frames)
        x = torch.from_numpy(x).reshape(self.segments, t, *spec.size, 3)
        return x.permute(0, 1, 4, 2, 3).contiguous()

    def _rgbdiff(
        self,
        spatial: Callable[..., np.ndarray],
        idx: np.ndarray,
        num_frames: int,
        spec: InputSpec,
        p: SpatialParams,
    ) -> Tensor:
        n = spec.channels // 3
        ix = np.clip(idx[..., None] + np.arange(n + 1), 0, num_frames - 1)  # (S, T, n+1)
        f = spatial(ix.reshape(-1), spec.size, p).astype(np.float32)
        f = f.reshape(*ix.shape, *spec.size, 3)
        d = f[:, :, 1:] - f[:, :, :-1]  # (S, T, n, h, w, 3)
        if self.rgbdiff_uint8:
            v = np.floor((d + 255.0) * 255.0 / 510.0) / 255.0
        else:
            v = (d + 255.0) / 510.0
        v = (v - IMAGENET_MEAN) / IMAGENET_STD
        x = torch.from_numpy(v.astype(np.float32)).permute(0, 1, 2, 5, 3, 4)
        return x.reshape(self.segments, idx.shape[1], 3 * n, *spec.size).contiguous()

    def _flow(
        self,
        take: Callable[[np.ndarray], np.ndarray],
        get_frames: FrameGetter,
        stored: Callable[[Sequence[int]], np.ndarray] | None,
        idx: np.ndarray,
        num_frames: int,
        spec: InputSpec,
        p: SpatialParams,
    ) -> Tensor | FlowRequest:
        n = spec.channels // 2
        if self.flow_on_demand and stored is None:
            return FlowRequest(
                get_frames,
                num_frames,
                idx,
                n,
                spec.size,
                p,
                self.flow_method,
                self.flow_reduced,
                self.flow_size,
            )
        pairs = flow_pairs(idx, n, num_frames)
        starts = np.unique(pairs).tolist()
        if stored is not None:
            fields = dict(zip(starts, stored(starts)))
        else:
            fields = compute_fields(
                lambda ix: take(np.asarray(ix)),
                starts,
                num_frames,
                method=self.flow_method,
                reduced=self.flow_reduced,
                flow_size=self.flow_size,
                device=self.flow_device,
            )
        return flow_segments(fields.__getitem__, pairs, spec.size, p)

    def _audio(self, audio: np.ndarray | None, centres: np.ndarray, spec: InputSpec) -> Tensor:
        if audio is None or np.size(audio) == 0:
            return torch.zeros(self.segments, *spec.shape)
        waves = np.stack([audio_window(audio, float(c)) for c in centres])
        spec_img = log_spectrogram(torch.from_numpy(waves))  # (S, 256, 256)
        if tuple(spec_img.shape[-2:]) != spec.size:
            spec_img = F.adaptive_avg_pool2d(spec_img[:, None], spec.size)[:, 0]
        return spec_img.reshape(self.segments, *spec.shape)
