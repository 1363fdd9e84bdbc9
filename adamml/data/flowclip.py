"""Flow inputs for a clip, computed only where needed: `FlowRequest` and `OnDemandFlow`.

In AdaMML-RGBDiff (Table 2) the policy looks at RGB difference and the recognition network uses
optical flow only on the segments the policy selects. `OnDemandFlow` is a SegmentSource
(DEVELOPING.md, router): ``.shape`` is ``(B, S, T, 10, H, W)`` and ``gather(batch_idx, seg_idx)``
computes flow for just those ``(video, segment)`` pairs, with a per-pair cache and a counter of
flow fields actually computed (``pairs_computed``). `AdaMML` asks it for the policy's frames only
(``select_frames``) when the policy itself looks at flow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .decode import takes_short
from .flow import FLOW_SIZE, FlowMethod, normalise_flow, optical_flow_batch
from .producers import SegmentRequest
from .spatial import SpatialParams, apply_spatial, resize_short

__all__ = ["FlowRequest", "OnDemandFlow", "flow_pairs", "flow_segments"]

FrameGetter = Callable[[Sequence[int]], np.ndarray]
FieldGetter = Callable[[Sequence[int]], np.ndarray]


def flow_pairs(indices: np.ndarray, consecutive: int, num_frames: int) -> np.ndarray:
    """First frames of the flow pairs each sampled frame stacks: ``k, k+1, ..., k+consecutive-1``.

    Returns:
        ``(..., consecutive)`` int64, clamped so that pair ``(p, p + 1)`` stays in the video (for a
        one-frame video every pair is ``(0, 0)``, zero flow).
    """
    p = indices[..., None] + np.arange(consecutive, dtype=np.int64)
    return np.clip(p, 0, max(num_frames - 2, 0))


_PAIRS_PER_CALL = 16
"""Pairs per `optical_flow_batch` call for the OpenCV methods in `compute_fields`."""


def compute_fields(
    get_frames: FrameGetter,
    starts: Sequence[int],
    num_frames: int,
    *,
    method: FlowMethod,
    reduced: bool,
    flow_size: int,
    device: torch.device | str | None = None,
) -> dict[int, np.ndarray]:
    """Flow fields ``(H, W, 2)`` for pairs ``(p, p + 1)``, frames resized to ``flow_size``.

    One decode for all the frames the pairs need and one
    [`optical_flow_batch`][adamml.data.flow.optical_flow_batch] call (one network call for
    ``raft_small``, on ``device``).
    """
    starts = sorted(set(int(s) for s in starts))
    if not starts:
        return {}
    ends = [min(s + 1, num_frames - 1) for s in starts]
    need = sorted(set(starts) | set(ends))
    if takes_short(get_frames):  # resized as decoded: no full-size copy of the frames
        frames = get_frames(need, short=flow_size)  # type: ignore[call-arg]
    else:
        frames = resize_short(get_frames(need), flow_size)
    pos = {k: i for i, k in enumerate(need)}
    # the OpenCV methods run pair by pair: a few pairs per call keep the copies of the frames
    # and the stacked fields small; RAFT gets every pair in one batched call
    step = len(starts) if method == "raft_small" else _PAIRS_PER_CALL
    fields: dict[int, np.ndarray] = {}
    for i in range(0, len(starts), step):
        part, part_ends = starts[i : i + step], ends[i : i + step]
        out = optical_flow_batch(
            frames[[pos[s] for s in part]],
            frames[[pos[e] for e in part_ends]],
            method=method,
            reduced=reduced,
            device=device,
        )
        fields.update(zip(part, out))
    return fields


def flow_segments(
    fields: Callable[[int], np.ndarray],
    pairs: np.ndarray,
    size: tuple[int, int],
    params: SpatialParams,
) -> Tensor:
    """Stack, augment and normalise flow for segments.

    Args:
        fields: pair start -> ``(H, W, 2)`` float flow in pixels.
        pairs: ``(S, T, P)`` pair starts (P = consecutive).
        size: crop ``(h, w)``.
        params: the clip's spatial augmentation (flip negates x).

    Returns:
        ``(S, T, 2P, h, w)`` float32, channels interleaved x1, y1, ..., xP, yP.
    """
    s, t, p = pairs.shape
    # each distinct field cropped once (stacks of neighbouring frames share pairs), before any
    # stacking: the full fields of a clip are hundreds of MB
    starts, inverse = np.unique(pairs.reshape(-1), return_inverse=True)
    crops = [apply_spatial(fields(int(k))[None], size, params, is_flow=True)[0] for k in starts]
    uniq = torch.from_numpy(normalise_flow(np.stack(crops))).permute(0, 3, 1, 2)  # (U, 2, h, w)
    slots = uniq.index_select(0, torch.from_numpy(inverse.reshape(-1)))  # one contiguous copy
    return slots.reshape(s, t, 2 * p, *size)  # channels x1, y1, x2, y2, ...


@dataclass
class FlowRequest(SegmentRequest):
    """What is needed to compute one video's flow input later.

    Attributes:
        get_frames: frame getter of the video (e.g. ``VideoReader(path).get_frames``; picklable).
        num_frames: frames in the video.
        indices: ``(S, T)`` sampled frame indices.
        consecutive: flow pairs stacked per sampled frame (5).
        size: crop ``(h, w)``.
        params: spatial augmentation shared with the clip's other modalities.
        method, reduced, flow_size: flow algorithm settings (see `optical_flow`).
    """

    get_frames: FrameGetter
    num_frames: int
    indices: np.ndarray
    consecutive: int
    size: tuple[int, int]
    params: SpatialParams
    method: FlowMethod = "tvl1"
    reduced: bool = False
    flow_size: int = FLOW_SIZE

    @classmethod
    def batch(cls, requests: Sequence[Any], *, device: torch.device | str = "cpu") -> OnDemandFlow:
        """One `OnDemandFlow` for a batch of requests."""
        return OnDemandFlow(requests, device=device)

    def pairs(self) -> np.ndarray:
        """``(S, T, consecutive)`` flow pair starts."""
        return flow_pairs(self.indices, self.consecutive, self.num_frames)


class OnDemandFlow:
    """A SegmentSource that computes optical flow only for the segments asked for.

    AdaMML-RGBDiff (Table 2): the policy looks at RGB difference and flow is computed only
    where the policy selected it. ``gather`` computes, per video, the missing flow pairs of all
    the segments asked for in one decode and one flow call, and caches fields and segments, so
    asking twice computes nothing new. ``select_frames`` gives some frames of every segment
    (a policy view that looks at flow needs frames 0, 2, 4, ... only).

    Args:
        requests: one [`FlowRequest`][adamml.data.flowclip.FlowRequest] per video of the batch.
        device: device of the tensors returned (and where ``raft_small`` runs); move it with
            ``.to(device)`` as a tensor (``adamml.engine.evaluate.to_device`` does).

    Attributes:
        shape: ``(B, S, T, C, H, W)``.
        device: where returned tensors live.
        pairs_computed: flow fields computed so far (cached pairs are not recomputed).

    Raises:
        ValueError: for an empty ``requests``.

    Example:
        >>> src = OnDemandFlow(requests)  # doctest: +SKIP
        >>> src.gather(torch.tensor([0, 0, 1]), torch.tensor([2, 5, 7])).shape  # doctest: +SKIP
        torch.Size([3, 8, 10, 224, 224])
    """

    def __init__(
        self, requests: Sequence[FlowRequest], *, device: torch.device | str = "cpu"
    ) -> None:
        if not requests:
            raise ValueError("OnDemandFlow needs at least one FlowRequest")
        self.requests = list(requests)
        r0 = self.requests[0]
        s, t = r0.indices.shape
        self.shape = (len(self.requests), s, t, 2 * r0.consecutive, *r0.size)
        self.device = torch.device(device)
        self.pairs_computed = 0
        self._fields: dict[tuple[int, int], np.ndarray] = {}
        self._segments: dict[tuple[int, int], Tensor] = {}

    def to(self, device: torch.device | str) -> OnDemandFlow:
        """Return tensors on ``device`` from now on (the cache is kept); returns ``self``."""
        self.device = torch.device(device)
        return self

    def _ensure_fields(self, b: int, pairs: np.ndarray) -> None:
        """Compute the fields of video ``b``'s pair starts ``pairs`` that are not cached."""
        req = self.requests[b]
        todo = [int(k) for k in np.unique(pairs) if (b, int(k)) not in self._fields]
        new = compute_fields(
            req.get_frames,
            todo,
            req.num_frames,
            method=req.method,
            reduced=req.reduced,
            flow_size=req.flow_size,
            device=self.device,
        )
        self.pairs_computed += len(new)
        self._fields.update({(b, k): f for k, f in new.items()})

    def _build(self, b: int, pairs: np.ndarray) -> Tensor:
        """``(n, T', C, H, W)`` flow of pair starts ``(n, T', P)`` of video ``b`` (CPU)."""
        self._ensure_fields(b, pairs)
        req = self.requests[b]
        return flow_segments(lambda k: self._fields[(b, k)], pairs, req.size, req.params)

    def gather(self, batch_idx: Tensor | Sequence[int], seg_idx: Tensor | Sequence[int]) -> Tensor:
        """Flow for the given ``(video, segment)`` pairs.

        Returns:
            ``(n, T, C, H, W)`` float32 on ``self.device``.
        """
        bs = torch.as_tensor(batch_idx).reshape(-1).tolist()
        ss = torch.as_tensor(seg_idx).reshape(-1).tolist()
        if not bs:
            return torch.zeros(0, *self.shape[2:], device=self.device)
        missing: dict[int, list[int]] = {}
        for b, s in zip(bs, ss):
            if (b, s) not in self._segments and s not in missing.setdefault(b, []):
                missing[b].append(s)
        for b, segs in missing.items():
            if segs:
                built = self._build(b, self.requests[b].pairs()[segs])
                self._segments.update({(b, s): x for s, x in zip(segs, built)})
        return torch.stack([self._segments[(b, s)] for b, s in zip(bs, ss)]).to(self.device)

    def select_frames(self, frame_idx: Sequence[int]) -> Tensor:
        """Frames ``frame_idx`` of every segment of every video (e.g. a policy's view).

        Only the flow pairs those frames stack are computed (and cached for ``gather``).

        Returns:
            ``(B, S, len(frame_idx), C, H, W)`` float32 on ``self.device``.
        """
        t_idx = [int(t) for t in frame_idx]
        out = []
        for b, req in enumerate(self.requests):
            pairs = req.pairs()[:, t_idx]  # (S, T', P)
            done = [(b, s) in self._segments for s in range(self.shape[1])]
            out.append(
                torch.stack([self._segments[(b, s)][t_idx] for s in range(self.shape[1])])
                if all(done)
                else self._build(b, pairs)
            )
        return torch.stack(out).to(self.device)

    def computed(self, b: int, s: int) -> Tensor | None:
        """Segment ``s`` of video ``b`` if ``gather`` computed it already, else ``None``
        (computes nothing; e.g. for drawing only what the model used)."""
        return self._segments.get((b, s))

    def materialise(self) -> Tensor:
        """Every segment, ``(B, S, T, C, H, W)`` (computes what is not cached)."""
        b, s = self.shape[:2]
        grid = torch.cartesian_prod(torch.arange(b), torch.arange(s))
        return self.gather(grid[:, 0], grid[:, 1]).reshape(self.shape)
