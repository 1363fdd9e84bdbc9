"""Cost accounting: multiply-accumulates measured by running the modules (AdaMML Sec. 4, Tab. 1-3).

Two conventions, both in GMACs (1e9 multiply-accumulates), both measured with
``torch.utils.flop_counter.FlopCounterMode`` on what actually runs:

* ``"paper"``: convolutions only, plus each ``nn.LSTMCell`` step counted as
  ``4·hidden·(joint_dim + hidden)`` (the fed-back policy logits ignored, as each policy
  declares them with ``recurrent_feedback()``: 2M for `PolicyLSTM`, ``2**M`` for
  `JointGatePolicy`), as the reference's constants are (reference §7). FC layers, BatchNorm
  and pooling are not counted. ResNet-50 TSN on 8x3x224x224 gives 14.136, audio MobileNetV2
  0.3817.
* ``"all"``: everything that ran: every convolution, matmul and attention op
  (FlopCounterMode total / 2), plus normalisation (2 per element: scale and shift) and
  average pooling (1 per input element), as fvcore counts them; ResNet-50 TSN gives 14.25.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode

from .errors import AdamMLError, ConfigError

__all__ = [
    "CONVENTIONS",
    "CostTable",
    "measure_macs",
    "count_gflops",
    "measure_cost_table",
    "CostTableError",
]

CONVENTIONS = ("paper", "all")


class CostTableError(AdamMLError, KeyError):
    """Selection rates or decisions name modalities the cost table does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _numel_flops(scale: int) -> Callable[..., int]:
    def formula(x_shape: tuple[int, ...], *args: Any, out_shape: Any = None, **kw: Any) -> int:
        return 2 * scale * math.prod(x_shape)  # FLOPs = 2 x MACs, halved with the rest

    return formula


_aten = torch.ops.aten
_ALL_EXTRA = {
    _aten._native_batch_norm_legit_no_training: _numel_flops(2),
    _aten._native_batch_norm_legit: _numel_flops(2),
    _aten.native_batch_norm: _numel_flops(2),
    _aten.native_layer_norm: _numel_flops(2),
    _aten.native_group_norm: _numel_flops(2),
    _aten.mean: _numel_flops(1),
    _aten.adaptive_avg_pool2d: _numel_flops(1),
    _aten._adaptive_avg_pool2d: _numel_flops(1),
}


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ConfigError(f"convention must be one of {CONVENTIONS}; got {convention!r}")


def _ignored_lstm_inputs(root: nn.Module) -> dict[nn.Module, int]:
    """Fed-back logits per recurrent cell, as each policy declares them
    (``policy.recurrent_feedback()``, e.g. ``{lstm: 2M}`` for `PolicyLSTM`)."""
    out: dict[nn.Module, int] = {}
    for mod in root.modules():
        declared = getattr(mod, "recurrent_feedback", None)
        if callable(declared):
            out.update({cell: int(n) for cell, n in declared().items()})
    return out


@contextmanager
def _measuring(root: nn.Module, convention: str) -> Iterator[Callable[[], float]]:
    """Eval mode, no grad, parameters frozen (the FlopCounterMode quirk), then restored."""
    _check_convention(convention)
    was_training = [(m, m.training) for m in root.modules()]
    grads = [(p, p.requires_grad) for p in root.parameters()]
    root.eval()
    root.requires_grad_(False)
    lstm_macs: list[float] = []
    handles = []
    if convention == "paper":
        ignored = _ignored_lstm_inputs(root)
        for mod in root.modules():
            if isinstance(mod, nn.LSTMCell):
                joint = mod.input_size - ignored.get(mod, 0)

                def hook(m: nn.Module, args: tuple[Any, ...], out: Any, joint: int = joint) -> None:
                    rows = args[0].shape[0] if args[0].dim() == 2 else 1
                    lstm_macs.append(rows * 4 * m.hidden_size * (joint + m.hidden_size))

                handles.append(mod.register_forward_hook(hook))
    counter = FlopCounterMode(
        display=False, custom_mapping=_ALL_EXTRA if convention == "all" else {}
    )

    def result() -> float:
        if convention == "all":
            return counter.get_total_flops() / 2
        counts = counter.get_flop_counts().get("Global", {})
        conv = sum(v for k, v in counts.items() if "convolution" in str(k))
        return conv / 2 + sum(lstm_macs)

    from .backbones import fast  # the eval fast path's one-off probes must not be counted

    try:
        with torch.no_grad(), fast.plain_forward(), counter:
            yield result
    finally:
        for h in handles:
            h.remove()
        for m, flag in was_training:
            m.training = flag
        for p, flag in grads:
            p.requires_grad_(flag)


def measure_macs(
    module: nn.Module,
    *example_inputs: Any,
    convention: str = "paper",
    on_meta: bool = True,
    **kwargs: Any,
) -> float:
    """GMACs of one call ``module(*example_inputs, **kwargs)``, measured in eval mode.

    Args:
        module: any module (a backbone, a policy, a whole model).
        *example_inputs: its positional inputs.
        convention: ``"paper"`` (convolutions + LSTM cells, reference §7) or ``"all"``.
        on_meta: count on a copy on the ``meta`` device (shapes only, no arithmetic); False
            runs ``module`` itself.
        **kwargs: keyword inputs.

    Returns:
        Multiply-accumulates in units of 1e9 for the whole call (all samples in the batch).

    Raises:
        ConfigError: for an unknown convention.

    Example:
        >>> from adamml.backbones import create_backbone
        >>> bb = create_backbone("tiny_tsn", modality="rgb")
        >>> round(measure_macs(bb, torch.zeros(1, 4, 3, 32, 32)) * 1e3, 3)  # MMACs
        4.377
    """
    if on_meta:
        # count on a shape-only copy: no arithmetic runs, so full-size networks cost milliseconds
        module = copy.deepcopy(module).to("meta")
        for sub in module.modules():  # the copy must not fire the user's hooks
            sub._forward_hooks.clear()
            sub._forward_pre_hooks.clear()
        example_inputs, kwargs = tree_map(_to_meta, (example_inputs, kwargs))
    with _measuring(module, convention) as result:
        module(*example_inputs, **kwargs)
    return result() / 1e9


def _to_meta(x: Any) -> Any:
    return x.to("meta") if isinstance(x, Tensor) else x


def _batch_size(inputs: Any) -> int:
    values = inputs.values() if isinstance(inputs, Mapping) else [inputs]
    for v in values:
        shape = getattr(v, "shape", None)
        if shape is not None:
            return int(shape[0])
    raise ConfigError("count_gflops needs at least one input tensor (B, S, ...) to know B")


def count_gflops(
    model: nn.Module,
    inputs: Any,
    decisions: Tensor | None = None,
    convention: str = "paper",
    *,
    per_video: bool = False,
) -> float | Tensor:
    """Per-video GMACs of ``model(inputs, decisions=decisions)``, measured on what runs.

    The model runs in eval mode, so skipped segments are really skipped (the router gathers the
    selected ones) and the count is the cost of the decisions taken, policy included.

    Args:
        model: an [`AdaMML`][adamml.model.AdaMML] model (or any module taking
            ``(inputs, decisions=...)``).
        inputs: ``{modality: (B, S, T, C, H, W)}``.
        decisions: optional ``(B, S, M)`` forced decisions.
        convention: ``"paper"`` or ``"all"``.
        per_video: False: the batch total divided by B (a float); True: a ``(B,)`` tensor holding
            that average for every video (the counter sees the batch, not single videos; use
            ``model(inputs).gflops`` for the per-video cost table estimate).

    Returns:
        GMACs per video, averaged over the batch.

    Raises:
        ConfigError: for an unknown convention or inputs without a tensor.

    Example:
        >>> adamml.count_gflops(model, inputs)  # doctest: +SKIP
        145.17
    """
    _check_convention(convention)
    b = _batch_size(inputs)
    get_table = getattr(model, "get_cost_table", None)
    if callable(get_table):
        get_table("paper")  # measured once, outside this count
    with _measuring(model, convention) as result:
        model(inputs, decisions=decisions)
    avg = result() / 1e9 / b
    return torch.full((b,), avg) if per_video else avg


@dataclass(frozen=True)
class CostTable:
    """Per-segment GMACs of each part of a model, in one convention (AdaMML reference §7).

    Attributes:
        recognition: GMACs of one segment through each recognition backbone, in the order of
            ``model.modalities``.
        policy: GMACs of one segment through each policy feature extractor.
        policy_extra: GMACs of the rest of the policy per segment (LSTM cell in ``"paper"``;
            joint FCs, cell and heads in ``"all"``).
        convention: ``"paper"`` or ``"all"``.

    Example:
        >>> t = CostTable({"rgb": 14.136, "audio": 0.3817}, {"rgb": 0.3754, "audio": 0.3817},
        ...               0.0024)
        >>> round(t.per_video({"rgb": 1.0, "audio": 1.0}, segments=10) - 10 * t.policy_total, 2)
        145.18
    """

    recognition: dict[str, float]
    policy: dict[str, float] = field(default_factory=dict)
    policy_extra: float = 0.0
    convention: str = "paper"

    @property
    def policy_total(self) -> float:
        """GMACs of the policy per segment (charged on every segment, whatever it selects)."""
        return sum(self.policy.values()) + self.policy_extra

    @property
    def recognition_total(self) -> float:
        """GMACs of one segment through every recognition backbone (weighted-fusion baseline)."""
        return sum(self.recognition.values())

    def per_video(
        self, decisions: Tensor | Mapping[str, float], segments: int | None = None
    ) -> Tensor | float:
        """Per-video GMACs for given decisions or selection rates (reference §7 formula).

        ``sum_k recognition_k · (segments where k was selected) + S · policy_total``.

        Args:
            decisions: ``(B, S, M)`` 0/1 decisions (M in ``recognition`` order), or selection
                rates ``{modality: fraction in [0, 1]}``.
            segments: S; needed with rates, taken from ``decisions`` otherwise.

        Returns:
            ``(B,)`` tensor for decisions; a float for rates.

        Raises:
            CostTableError: if rates name unknown modalities or M does not match.
            ConfigError: if ``segments`` is missing with rates.
        """
        names = list(self.recognition)
        if isinstance(decisions, Tensor):
            if decisions.dim() != 3 or decisions.shape[-1] != len(names):
                raise CostTableError(
                    f"decisions must be (B, S, M={len(names)}) for {names}; "
                    f"got {tuple(decisions.shape)}"
                )
            w = torch.tensor(
                [self.recognition[m] for m in names], dtype=torch.float32, device=decisions.device
            )
            selected = (decisions.float() * w).sum(dim=(1, 2))
            return selected + decisions.shape[1] * self.policy_total
        unknown = sorted(set(decisions) - set(names))
        if unknown:
            raise CostTableError(f"selection rates for {unknown}, but the table has {names}")
        if segments is None:
            raise ConfigError("per_video with selection rates needs segments=S")
        rec = sum(self.recognition[m] * float(r) for m, r in decisions.items())
        return segments * (rec + self.policy_total)


def measure_cost_table(model: nn.Module, convention: str = "paper") -> CostTable:
    """Measure an [`AdaMML`][adamml.model.AdaMML] model's [`CostTable`][adamml.flops.CostTable].

    Each recognition backbone runs on one segment of ``model.specs[m].input_spec``, each policy
    extractor on one policy view, and the whole policy on one segment of every view; the
    policy's remainder is ``policy_extra``.

    Raises:
        ConfigError: for an unknown convention.
    """
    _check_convention(convention)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    rec = {}
    for m in model.modalities:
        x = torch.zeros(1, *model.specs[m].input_spec.shape, device=device)
        rec[m] = measure_macs(model.router.backbone(m), x, convention=convention)
    inputs = {m: torch.zeros(1, 1, *s.shape, device=device) for m, s in model.input_spec.items()}
    views = model.policy_views(inputs)
    pol = {
        m: measure_macs(net, views[m][:, 0], convention=convention)
        for m, net in model.policy_extractors().items()
    }
    whole = measure_macs(model.policy, views, convention=convention)
    extra = max(whole - sum(pol.values()), 0.0)
    return CostTable(rec, pol, extra, convention)
