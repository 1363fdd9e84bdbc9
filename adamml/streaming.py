"""Online inference: one segment at a time, with the running prediction and its cost.

AdaMML's policy is causal (an LSTM over segments, Sec. 3.2), and with a fusion that treats each
segment on its own the video logits are the mean of the segment logits, so a video can be
recognised while it is decoded (or recorded):

```
segment t inputs {m: (B, 1, T, C, H, W)}
  │  model.policy_views
  ▼
policy.step(views, state_{t-1}) ──► decisions (B, M), state_t        ("recurrent": PolicyLSTM)
policy(views)                   ──► decisions (B, 1, M)              ("independent": fc, all)
  │
  ▼
model.fuse_segments(inputs, decisions) ──► (B, 1, K) ──► running mean ──► logits so far (B, K)
cost so far += policy_total + sum_k recognition_k * u_k                 (per video, GMACs)
```

With [`EarlyExit`][adamml.streaming.EarlyExit] a video stops once its running prediction is
confident enough: it is no longer given to the policy or to any network, and its cost stops
growing. In evaluation mode, with deterministic decisions, the prediction after the last
segment equals ``model(inputs).logits`` on the whole video (to float rounding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .errors import ConfigError, ShapeError
from .precision import autocast, full_precision
from .types import ModelOutput

__all__ = [
    "VideoStream",
    "StreamStep",
    "EarlyExit",
    "EXIT_METRICS",
    "confidence",
    "segment_of",
]

EXIT_METRICS = ("prob", "margin")
"""What an early exit thresholds: the top-1 softmax probability, or the margin between the top-1
and the top-2 probabilities."""


def confidence(logits: Tensor, metric: str = "prob") -> Tensor:
    """How sure a prediction is: the top-1 softmax probability (``"prob"``) or the top-1 minus
    the top-2 probability (``"margin"``; the top-1 probability with one class).

    Args:
        logits: ``(B, K)``.
        metric: ``"prob"`` or ``"margin"``.

    Returns:
        ``(B,)`` float64 in [0, 1].

    Raises:
        ConfigError: for another metric.

    Example:
        >>> confidence(torch.tensor([[2.0, 0.0, 0.0]]), "margin").round(decimals=3)
        tensor([0.6650], dtype=torch.float64)
    """
    if metric not in EXIT_METRICS:
        raise ConfigError(f"early-exit metric must be one of {EXIT_METRICS}; got {metric!r}")
    probs = torch.softmax(logits.double(), dim=-1)
    top = probs.topk(min(2, probs.shape[-1]), dim=-1).values
    if metric == "prob" or top.shape[-1] == 1:
        return top[..., 0]
    return top[..., 0] - top[..., 1]


@dataclass(frozen=True)
class EarlyExit:
    """Stop a video once its running prediction is confident enough.

    Args:
        threshold: stop when the confidence (`confidence`) reaches it, in [0, 1].
        metric: ``"prob"`` (top-1 probability) or ``"margin"`` (top-1 minus top-2).
        min_segments: never stop before this many segments (>= 1).

    Raises:
        ConfigError: for a threshold outside [0, 1], an unknown metric or ``min_segments < 1``.

    Example:
        >>> EarlyExit(0.9, metric="margin", min_segments=2).min_segments
        2
    """

    threshold: float
    metric: str = "prob"
    min_segments: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise ConfigError(f"early-exit threshold must be in [0, 1]; got {self.threshold!r}")
        if self.metric not in EXIT_METRICS:
            raise ConfigError(
                f"early-exit metric must be one of {EXIT_METRICS}; got {self.metric!r}"
            )
        if int(self.min_segments) < 1:
            raise ConfigError(f"min_segments must be >= 1; got {self.min_segments!r}")

    def stops(self, logits: Tensor, segments: Tensor) -> Tensor:
        """``(B,)`` bool: which videos stop, given their running logits ``(B, K)`` and the
        segments each has used ``(B,)``."""
        sure = confidence(logits, self.metric) >= float(self.threshold)
        return sure & (segments.to(sure.device) >= int(self.min_segments))


class StreamStep(NamedTuple):
    """What [`VideoStream.step`][adamml.streaming.VideoStream.step] returns after one segment.

    Attributes:
        logits: ``(B, K)`` the running prediction: the mean of the fused segment logits of the
            segments each video has used (frozen once it stopped).
        decisions: ``(B, M)`` this segment's decisions (zeros for a video that had stopped).
        policy_logits: ``(B, M, 2)`` this segment's policy logits (zeros for a stopped video),
            or ``None`` for policies without logits.
        gflops: ``(B,)`` cost so far per video (paper convention, GMACs): the policy and the
            selected networks of every segment used, as the batch forward counts them.
        segments: ``(B,)`` segments each video has used.
        active: ``(B,)`` bool: the video takes further segments (False once it exited early).
    """

    logits: Tensor
    decisions: Tensor
    policy_logits: Tensor | None
    gflops: Tensor
    segments: Tensor
    active: Tensor


class _Segment:
    """Segment ``t`` of a `SegmentSource`, as a one-segment source (asked only if selected)."""

    def __init__(self, source: Any, t: int) -> None:
        self.source, self.t = source, int(t)
        shape = tuple(source.shape)
        self.shape = (shape[0], 1, *shape[2:])

    def gather(self, batch_idx: Tensor, seg_idx: Tensor) -> Tensor:
        return self.source.gather(batch_idx, seg_idx + self.t)


def segment_of(inputs: Mapping[str, Any], t: int) -> dict[str, Any]:
    """Segment ``t`` of whole-video inputs, for `VideoStream.step`: ``(B, S, ...)`` tensors
    sliced to ``(B, 1, ...)``, a `SegmentSource` (on-demand flow) wrapped so that only a
    selected segment is computed.

    Example:
        >>> x = {"rgb": torch.zeros(2, 5, 4, 3, 8, 8)}
        >>> one = segment_of(x, 3)  # {"rgb": (2, 1, 4, 3, 8, 8)}
    """
    return {
        m: x[:, t : t + 1] if isinstance(x, Tensor) else _Segment(x, t) for m, x in inputs.items()
    }


class _Rows:
    """Some rows of a one-segment `SegmentSource` (the videos still running)."""

    def __init__(self, source: Any, rows: Tensor) -> None:
        self.source, self.rows = source, rows
        self.shape = (int(rows.numel()), *tuple(source.shape)[1:])

    def gather(self, batch_idx: Tensor, seg_idx: Tensor) -> Tensor:
        return self.source.gather(self.rows.to(batch_idx.device)[batch_idx], seg_idx)


def _take_rows(x: Any, rows: Tensor) -> Any:
    return x[rows.to(x.device)] if isinstance(x, Tensor) else _Rows(x, rows)


def _index_state(state: Any, rows: Tensor) -> Any:
    if state is None:
        return None
    parts = [t[rows.to(t.device)] for t in state]
    return type(state)(*parts) if hasattr(state, "_fields") else type(state)(parts)


def _put_state(full: Any, part: Any, rows: Tensor, batch: int) -> Any:
    """``full`` with rows ``rows`` replaced by ``part`` (a new state of B rows)."""
    if full is None:
        full = [t.new_zeros((batch, *t.shape[1:])) for t in part]
    merged = [f.index_copy(0, rows.to(f.device), p.to(f.dtype)) for f, p in zip(full, part)]
    return type(part)(*merged) if hasattr(part, "_fields") else type(part)(merged)


class VideoStream:
    """Recognise videos segment by segment (online AdaMML); build it with `AdaMML.stream`.

    Each call of `step` takes the next segment of every video of the batch, runs the policy
    with its carried state (``PolicyLSTM.step``; a policy without recurrent state decides the
    segment on its own), runs only the recognition networks it selected and returns the
    running prediction, the segment's decisions and the cost so far, counted as the batch
    forward counts it (``model.cost_table``: the policy on every segment used plus each
    selected network).

    Args:
        model: an [`AdaMML`][adamml.AdaMML] (or a model with the same parts: ``policy``,
            ``fusion``, ``cost_table``, ``check_inputs``, ``policy_views``,
            ``fuse_segments``, ``modalities``, ``precision``).
        early_exit: stop each video once its running prediction is confident enough.
        generator: noise for sampling gates and random policies (a seeded random policy draws
            from a generator of its own seed, one per stream).

    Raises:
        ConfigError: if the fusion mixes segments (``fusion.segmentwise`` is False: the video
            logits are then not a mean over segments), or the policy does not declare a
            ``stream_mode`` (e.g. a plugin policy that looks at all segments at once).

    Attributes:
        logits: ``(B, K)`` the running prediction (``None`` before the first segment).
        decisions: ``(B, n, M)`` the decisions of the n segments so far (zeros after an exit).
        gflops: ``(B,)`` the cost so far.
        segments: ``(B,)`` segments each video used.
        active: ``(B,)`` bool, videos still running.

    Example:
        >>> import adamml, torch
        >>> model = adamml.create_model("test_adamml_rgb_audio", num_classes=4).eval()
        >>> x = {m: torch.randn(1, 3, *s.shape) for m, s in model.input_spec.items()}
        >>> stream = model.stream()
        >>> for t in range(3):
        ...     step = stream.step({m: v[:, t] for m, v in x.items()})
        >>> bool(torch.allclose(step.logits, model(x).logits, atol=1e-5))
        True
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        early_exit: EarlyExit | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        fusion, policy = model.fusion, model.policy
        if not getattr(fusion, "segmentwise", False):
            raise ConfigError(
                f"the fusion {type(fusion).__name__} does not fuse each segment on its own "
                "(fusion.segmentwise is not True), so the video logits are not a mean over "
                "segments and cannot be computed segment by segment; use a segment-wise "
                "fusion (learnable, average, classwise, max, fc2) to stream"
            )
        mode = getattr(policy, "stream_mode", None)
        if mode not in ("recurrent", "independent"):
            raise ConfigError(
                f"the policy {type(policy).__name__} does not say how it decides segment by "
                f"segment (stream_mode is {mode!r}); a policy streams with stream_mode "
                "'recurrent' (a step(views, state) method) or 'independent' (each segment "
                "decided on its own)"
            )
        if early_exit is not None and not isinstance(early_exit, EarlyExit):
            raise ConfigError(f"early_exit must be an EarlyExit; got {type(early_exit).__name__}")
        self.model = model
        self.early_exit = early_exit
        self.mode = mode
        if generator is None and callable(getattr(policy, "stream_generator", None)):
            generator = policy.stream_generator()
        self.generator = generator
        self._costs: tuple[Tensor, float] | None = None
        self.reset()

    def reset(self) -> VideoStream:
        """Forget every video: the next `step` starts new ones (returns self)."""
        self._state: Any = None
        self._sum: Tensor | None = None
        self.logits: Tensor | None = None
        self.gflops: Tensor | None = None
        self.segments: Tensor | None = None
        self.active: Tensor | None = None
        self._decisions: list[Tensor] = []
        self._policy_logits: list[Tensor | None] = []
        return self

    @property
    def decisions(self) -> Tensor | None:
        """``(B, n, M)`` decisions of the segments so far (``None`` before the first)."""
        return torch.stack(self._decisions, dim=1) if self._decisions else None

    @property
    def done(self) -> bool:
        """Whether every video has stopped (early exit); `step` then runs nothing."""
        return self.active is not None and not bool(self.active.any())

    def output(self) -> ModelOutput:
        """What the stream has so far, as the batch forward returns it: ``ModelOutput(logits
        (B, K), decisions (B, n, M), policy_logits (B, n, M, 2) | None, gflops (B,))``.

        Raises:
            ShapeError: before the first segment.
        """
        if self.logits is None or self.gflops is None:
            raise ShapeError("the stream has no segment yet; call step() first")
        logits = self._policy_logits
        stacked = None if any(z is None for z in logits) else torch.stack(logits, dim=1)  # type: ignore[arg-type]
        return ModelOutput(self.logits, self.decisions, stacked, self.gflops)

    # -- one segment ---------------------------------------------------------------------------
    def _one_segment(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """``{m: (B, 1, T, C, H, W)}``: a ``(B, T, C, H, W)`` tensor gets its S axis."""
        spec = getattr(self.model, "input_spec", {})
        out: dict[str, Any] = {}
        for m, x in inputs.items():
            want = getattr(spec.get(m), "shape", None)
            if isinstance(x, Tensor) and want is not None and x.dim() == len(want) + 1:
                x = x.unsqueeze(1)
            out[m] = x
        return out

    def _cost_weights(self, device: torch.device) -> tuple[Tensor, float]:
        if self._costs is None:
            table = self.model.cost_table
            w = torch.tensor([float(table.recognition[m]) for m in self.model.modalities])
            self._costs = (w, float(table.policy_total))
        w, policy = self._costs
        return w.to(device), policy

    def _decide(self, views: dict[str, Any], rows: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The policy on one segment of the running videos: ``(n, M)`` decisions and
        ``(n, M, 2)`` logits (or ``None``)."""
        policy = self.model.policy
        if self.mode == "recurrent":
            state = self._state if rows is None else _index_state(self._state, rows)
            decisions, logits, new = policy.step(views, state, generator=self.generator)
            if rows is None:
                self._state = new
            else:
                self._state = _put_state(self._state, new, rows, int(self.active.numel()))  # type: ignore[union-attr]
            return decisions, logits
        out = policy(views) if self.generator is None else policy(views, generator=self.generator)
        logits = None if out.logits is None else out.logits[:, 0]
        return out.decisions[:, 0], logits

    @torch.no_grad()
    def step(self, inputs: Mapping[str, Any]) -> StreamStep:
        """Take the next segment of every video.

        Args:
            inputs: one segment per modality of ``model.input_spec``: ``(B, T, C, H, W)`` or
                ``(B, 1, T, C, H, W)`` tensors, or one-segment `SegmentSource` objects
                (``shape (B, 1, T, C, H, W)``, e.g. on-demand flow: computed only if selected).
                A video that has stopped is ignored (its rows may hold anything).

        Returns:
            [`StreamStep`][adamml.streaming.StreamStep].

        Raises:
            ShapeError: for missing inputs, wrong shapes, more than one segment or a batch
                size that changes between steps.
        """
        model = self.model
        canon, b, s = model.check_inputs(self._one_segment(inputs))
        if s != 1:
            raise ShapeError(f"step() takes one segment per video; the inputs have S = {s}")
        if self.active is not None and int(self.active.numel()) != b:
            raise ShapeError(
                f"the stream holds {int(self.active.numel())} videos; this segment has B = {b} "
                "(reset() the stream to start other videos)"
            )
        device = next(
            (x.device for x in canon.values() if isinstance(x, Tensor)), torch.device("cpu")
        )
        if self.active is None:
            self.active = torch.ones(b, dtype=torch.bool, device=device)
            self.segments = torch.zeros(b, dtype=torch.long, device=device)
            self.gflops = torch.zeros(b, dtype=torch.float64, device=device)
        m = len(model.modalities)
        decisions = torch.zeros(b, m, device=device)
        policy_logits: Tensor | None = None
        active = self.active.clone()
        if not bool(active.any()):
            self._record(decisions, policy_logits)
            return self._result(decisions, policy_logits)
        rows = None if bool(active.all()) else active.nonzero(as_tuple=True)[0]
        with autocast(model.precision, device.type):
            part = canon if rows is None else {k: _take_rows(x, rows) for k, x in canon.items()}
            d, z = self._decide(model.policy_views(part), rows)
            d = d.float().to(device)
            if rows is None:
                decisions = d
            else:
                decisions[rows] = d
            if z is not None:
                policy_logits = torch.zeros(b, *z.shape[1:], device=device, dtype=z.dtype)
                policy_logits[rows if rows is not None else slice(None)] = z.to(device)
            # stopped videos have zero decisions: the sparse router never runs them
            segment = model.fuse_segments(canon, decisions.unsqueeze(1))[:, 0]
        with full_precision(device.type):
            segment = segment.float()
            if self._sum is None:
                self._sum = torch.zeros_like(segment)
            self._sum = torch.where(active.unsqueeze(-1), self._sum + segment, self._sum)
            self.segments = self.segments + active.long()  # type: ignore[operator]
            self.logits = self._sum / self.segments.clamp(min=1).unsqueeze(-1).to(self._sum)
        w, policy_cost = self._cost_weights(device)
        cost = (decisions.double() * w.double()).sum(dim=-1) + policy_cost
        self.gflops = self.gflops + torch.where(active, cost, torch.zeros_like(cost))  # type: ignore[operator]
        if self.early_exit is not None:
            self.active = active & ~self.early_exit.stops(self.logits, self.segments)
        self._record(decisions, policy_logits)
        return self._result(decisions, policy_logits)

    def _record(self, decisions: Tensor, policy_logits: Tensor | None) -> None:
        previous = self._policy_logits[-1] if self._policy_logits else None
        if policy_logits is None and previous is not None:  # every video had stopped
            policy_logits = torch.zeros_like(previous)
        self._decisions.append(decisions)
        self._policy_logits.append(policy_logits)

    def _result(self, decisions: Tensor, policy_logits: Tensor | None) -> StreamStep:
        if self.logits is None:  # every video stopped before any segment: impossible
            raise ShapeError("the stream has no prediction yet")
        return StreamStep(
            self.logits,
            decisions,
            policy_logits,
            self.gflops,  # type: ignore[arg-type]
            self.segments,  # type: ignore[arg-type]
            self.active,  # type: ignore[arg-type]
        )

    def run(self, segments: Sequence[Mapping[str, Any]]) -> StreamStep:
        """`step` through ``segments`` (stopping when every video has exited); the last step.

        Raises:
            ShapeError: for no segments.
        """
        last: StreamStep | None = None
        for seg in segments:
            last = self.step(seg)
            if self.done:
                break
        if last is None:
            raise ShapeError("run() needs at least one segment")
        return last
