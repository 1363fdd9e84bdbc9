"""LiteEval (Wu et al., NeurIPS 2019) assembled from adamml's blocks: a coarse LSTM over cheap
features of every segment, a fine LSTM over expensive ones, and a conditional gate that decides,
segment by segment, whether the expensive features are computed (AdaMML Tables 4-5 compare
with it).

```
views[m] (B,S,T',C,H',W') --extractor (cheap, low resolution)--> v_c (B,S,Dc)
h_f, c_f = 0
for t in 0..S-1:
    h_c, c_c = coarse_lstm(v_c[t], (h_f[:Hc], c_f[:Hc]))     the coarse LSTM resumes the fine one
    z_t      = gate_head([v_c[t], h_c])                        (B, 2) raw (skip, use) logits
    u_t      = GumbelGate(z_t)[..., 1]                         0/1, straight-through gradient
    v_f      = router(segment t, u_t)                          expensive features, selected only
    fine     = fine_lstm([v_c[t], v_f], (h_f, c_f))
    synced   = ([h_c, h_f[Hc:]], [c_c, c_f[Hc:]])              skipped: the fine state is synced
    h_f, c_f = u_t * fine + (1 - u_t) * synced
logits = classifier(h_f)                                      (B, K)
```

`LiteEval` is an [`AdaMML`][adamml.model.AdaMML] whose policy slot holds the coarse path
(`LiteEvalCoarse`: extractor, coarse LSTM, gate) and whose fusion slot holds the fine path's
recurrence (`LiteEvalFine`: fine LSTM, classifier), so the engine trains and evaluates it
like any AdaMML model: the coarse path is the policy half (Adam, CE + efficiency loss on the
gate's decisions), the fine backbone, fine LSTM and classifier the recognition half.
docs/components/liteeval.md says where this follows the LiteEval paper and where it chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from .errors import ConfigError, ShapeError
from .modalities import Modality
from .model import POLICY_PART, AdaMML
from .policies.base import check_views, init_use_bias
from .policies.gate import GumbelGate
from .precision import full_precision
from .types import ModelOutput, PolicyOutput

if TYPE_CHECKING:
    from .backbones.pretrained import Pretrained

__all__ = [
    "LiteEval",
    "LiteEvalCoarse",
    "LiteEvalFine",
    "FineState",
    "build_liteeval",
    "TINY_ARGS",
]

TINY_ARGS: Mapping[str, Any] = {"coarse_hidden": 16, "fine_hidden": 32}
"""The sizes of the ``test_liteeval_*`` twins (the full sizes are the recipe's
``policy_args``)."""


class FineState(NamedTuple):
    """The fine LSTM's state, carried from one segment to the next.

    Attributes:
        h: ``(B, Hf)`` hidden state.
        c: ``(B, Hf)`` cell state.
    """

    h: Tensor
    c: Tensor


class LiteEvalCoarse(nn.Module):
    """LiteEval's coarse path: a cheap extractor on every segment, the coarse LSTM and the
    conditional gate (LiteEval Sec. 3; AdaMML's policy slot).

    Args:
        modality: the modality it looks at (its policy view: low resolution, few frames).
        extractor: ``(N, T', C, H', W') -> (N, Dc)`` with ``num_features`` (a policy backbone,
            ``num_classes=0``).
        hidden_size: Hc, the coarse LSTM's width (at most the fine LSTM's).
        gate: the Gumbel gate; ``None`` makes ``GumbelGate(tau=5.0)``.
        init_use: start the gate so that the fine features are computed with this probability
            (as AdaMML's policies start near all-on); ``None`` keeps PyTorch's initialisation.

    Shape:
        ``views[m]: (B, S, T', C, H', W') -> PolicyOutput(decisions (B, S, 1),
        logits (B, S, 1, 2))`` when run alone (its forward starts every step from its own
        state, with no fine LSTM to resume: what `LiteEval` runs is `step`).

    Raises:
        ConfigError: for a bad size or an extractor without ``num_features``.
    """

    needs_views: bool = True
    stream_mode = None  # the gate reads the fine LSTM's state: LiteEval.forward drives it

    def __init__(
        self,
        modality: str,
        extractor: nn.Module,
        *,
        hidden_size: int = 512,
        gate: GumbelGate | None = None,
        init_use: float | None = 0.9,
    ) -> None:
        super().__init__()
        width = getattr(extractor, "num_features", None)
        if not isinstance(width, int) or width < 1:
            raise ConfigError(
                f"the coarse extractor {type(extractor).__name__} needs an integer "
                f"num_features >= 1; got {width!r}"
            )
        if int(hidden_size) < 1:
            raise ConfigError(f"coarse hidden_size must be >= 1; got {hidden_size!r}")
        self.modalities: tuple[str, ...] = (modality,)
        self.backbones = nn.ModuleDict({modality: extractor})
        self.feature_dim = int(width)
        self.hidden_size = int(hidden_size)
        self.lstm = nn.LSTMCell(self.feature_dim, self.hidden_size)
        self.head = nn.Linear(self.feature_dim + self.hidden_size, 2)
        init_use_bias([self.head], init_use)
        self.gate = gate if gate is not None else GumbelGate()

    def extractors(self) -> dict[str, nn.Module]:
        """``{modality: extractor}``: the ``policy.<m>`` part."""
        return dict(self.backbones)

    def recurrent_feedback(self) -> dict[nn.Module, int]:
        """No fed-back logits: the coarse LSTM's whole input is counted."""
        return {}

    def features(self, views: Mapping[str, Tensor]) -> Tensor:
        """The cheap features of every segment, ``(B, S, Dc)``, in one batched call."""
        (m,) = self.modalities
        x = check_views(views, self.modalities)[m]
        b, s = x.shape[:2]
        return self.backbones[m](x.flatten(0, 1)).view(b, s, -1)

    def step(self, feature: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """One segment: the coarse LSTM from ``state`` and the gate's raw logits.

        Args:
            feature: ``(B, Dc)`` cheap feature of the segment.
            state: ``(h, c)``, each ``(B, Hc)``.

        Returns:
            ``(h_c, c_c, logits (B, 2))``.
        """
        h, c = self.lstm(feature, state)
        return h, c, self.head(torch.cat([feature, h], dim=-1))

    def forward(self, views: Mapping[str, Tensor]) -> PolicyOutput:
        """The coarse path alone (no fine LSTM to resume): decisions from the cheap features."""
        feats = self.features(views)
        b = feats.shape[0]
        with full_precision(feats.device.type):
            feats = feats.float()
            h = c = feats.new_zeros(b, self.hidden_size)
            logits = []
            for t in range(feats.shape[1]):
                h, c, z = self.step(feats[:, t], (h, c))
                logits.append(z)
            z = torch.stack(logits, dim=1).unsqueeze(2)
            return PolicyOutput(self.gate(z)[..., 1], z)

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}, hidden_size={self.hidden_size}"


class LiteEvalFine(nn.Module):
    """LiteEval's fine path: the fine LSTM over ``[cheap, expensive]`` features, the state
    synchronisation on skipped segments, and the classifier on its last state (AdaMML's fusion
    slot; the expensive backbone is the router's).

    Args:
        modality: the recognised modality.
        coarse_dim: Dc, width of the cheap features.
        fine_dim: Df, width of the expensive features.
        hidden_size: Hf, the fine LSTM's width (>= the coarse LSTM's ``coarse_hidden``).
        coarse_hidden: Hc.
        num_classes: K.

    Shape:
        `step`: ``(B, Dc), (B, Df), (B, Hc) x 2, u (B,), FineState -> FineState``;
        `classify`: ``(B, Hf) -> (B, K)``.

    Raises:
        ConfigError: for bad sizes.
    """

    input_kind = "features"
    segmentwise = False  # one recurrence over the segments, not a per-segment fusion

    def __init__(
        self,
        modality: str,
        *,
        coarse_dim: int,
        fine_dim: int,
        hidden_size: int,
        coarse_hidden: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        if not 1 <= int(coarse_hidden) <= int(hidden_size):
            raise ConfigError(
                f"the fine LSTM (hidden_size={hidden_size}) must be at least as wide as the "
                f"coarse one ({coarse_hidden}): a skipped segment copies the coarse state into it"
            )
        self.modalities: tuple[str, ...] = (modality,)
        self.hidden_size, self.coarse_hidden = int(hidden_size), int(coarse_hidden)
        self.lstm = nn.LSTMCell(int(coarse_dim) + int(fine_dim), self.hidden_size)
        self.classifier = nn.Linear(self.hidden_size, int(num_classes))

    def init_state(self, like: Tensor) -> FineState:
        """Zero state for ``like.shape[0]`` videos, in float32 on ``like``'s device."""
        zeros = torch.zeros(like.shape[0], self.hidden_size, device=like.device)
        return FineState(zeros, zeros.clone())

    def coarse_state(self, state: FineState) -> tuple[Tensor, Tensor]:
        """The first Hc units of the fine state: where the coarse LSTM resumes."""
        return state.h[:, : self.coarse_hidden], state.c[:, : self.coarse_hidden]

    def step(
        self,
        coarse: Tensor,
        fine: Tensor,
        coarse_state: tuple[Tensor, Tensor],
        use: Tensor,
        state: FineState,
    ) -> FineState:
        """Update on one segment: the fine LSTM where ``use`` is 1, the synchronised copy of
        the coarse state where it is 0 (the blend carries the gate's gradient in training)."""
        k = self.coarse_hidden
        synced_h = torch.cat([coarse_state[0], state.h[:, k:]], dim=-1)
        synced_c = torch.cat([coarse_state[1], state.c[:, k:]], dim=-1)
        x = torch.cat([coarse, fine], dim=-1)
        if self.training:
            h, c = self.lstm(x, (state.h, state.c))
            u = use.unsqueeze(-1)
            return FineState(u * h + (1 - u) * synced_h, u * c + (1 - u) * synced_c)
        rows = (use > 0.5).nonzero(as_tuple=True)[0]  # evaluation: the cell runs on those only
        if rows.numel():
            h, c = self.lstm(x[rows], (state.h[rows], state.c[rows]))
            synced_h, synced_c = synced_h.index_copy(0, rows, h), synced_c.index_copy(0, rows, c)
        return FineState(synced_h, synced_c)

    def classify(self, h: Tensor) -> Tensor:
        """``(B, Hf) -> (B, K)`` logits from the fine LSTM's last hidden state."""
        return self.classifier(h)

    def forward(self, per_modality: Mapping[str, Tensor], decisions: Tensor) -> Tensor:
        """Not a per-segment fusion: `LiteEval` runs `step` inside its recurrence.

        Raises:
            ConfigError: always.
        """
        raise ConfigError(
            "LiteEvalFine is LiteEval's fine recurrence, not a fusion of segment outputs; "
            "call the LiteEval model itself"
        )


class _SegmentSlice:
    """Segment ``t`` of a ``SegmentSource`` as a one-segment source (the router gathers from
    it)."""

    def __init__(self, source: Any, t: int) -> None:
        self.source, self.t = source, t
        b, _, *rest = source.shape
        self.shape = (b, 1, *rest)

    def gather(self, batch_idx: Tensor, seg_idx: Tensor) -> Tensor:
        return self.source.gather(batch_idx, seg_idx + self.t)


class LiteEval(AdaMML):
    """LiteEval (Wu et al., NeurIPS 2019) in adamml: coarse-to-fine recognition with a
    conditional gate per segment (the method AdaMML Tables 4-5 compare with).

    Args:
        coarse: a `LiteEvalCoarse` (the policy slot).
        router: a [`ModalityRouter`][adamml.router.ModalityRouter] holding the expensive
            backbone of the one modality (with a classifier: it is pre-trained as a unimodal
            model; LiteEval reads its ``forward_features``).
        fine: a `LiteEvalFine` (the fusion slot).
        **kwargs: as [`AdaMML`][adamml.model.AdaMML] (``modality_specs``, ``cost_weights``,
            ``gamma``, ``precision``).

    In training every segment's expensive features are computed in one batch (as the router's
    training path) and the gate's decision blends the fine update with the synchronised copy;
    in evaluation segment t's expensive backbone runs only on the videos whose gate chose it
    (the router's sparse path, one call per segment, none when no video chose it).

    Shape:
        ``inputs[m]: (B, S, T, C, H, W)`` -> [`ModelOutput`][adamml.types.ModelOutput] with
        ``logits (B, K)``, ``decisions (B, S, 1)``, ``policy_logits (B, S, 1, 2)`` (the gate's
        raw logits), ``gflops (B,)`` (the coarse path on every segment, the fine path on the
        selected ones).

    Example:
        >>> import adamml, torch
        >>> model = adamml.create_model("test_liteeval_rgb", num_classes=5)
        >>> x = {"rgb": torch.randn(2, 3, *model.input_spec["rgb"].shape)}
        >>> model.eval()(x).decisions.shape
        torch.Size([2, 3, 1])
    """

    def __init__(
        self, coarse: LiteEvalCoarse, router: nn.Module, fine: LiteEvalFine, **kwargs: Any
    ) -> None:
        if not isinstance(coarse, LiteEvalCoarse) or not isinstance(fine, LiteEvalFine):
            raise ConfigError(
                "LiteEval takes a LiteEvalCoarse and a LiteEvalFine; got "
                f"{type(coarse).__name__} and {type(fine).__name__}"
            )
        super().__init__(coarse, router, fine, **kwargs)
        if coarse.hidden_size != fine.coarse_hidden:
            raise ConfigError(
                f"the coarse LSTM is {coarse.hidden_size} wide but the fine path syncs "
                f"{fine.coarse_hidden} units; give both the same coarse width"
            )

    def get_cost_table(self, convention: str = "paper") -> Any:
        """As [`AdaMML.get_cost_table`][adamml.model.AdaMML.get_cost_table], with the fine LSTM
        step charged to the fine path (it runs only where the expensive features do)."""
        if convention not in self._cost_tables:
            import dataclasses

            from .flops import measure_cost_table, measure_macs

            table = measure_cost_table(self, convention=convention)
            cell = self.fusion.lstm
            param = next(self.parameters())
            step = measure_macs(
                cell, torch.zeros(1, cell.input_size, device=param.device), convention=convention
            )
            m = self.modalities[0]
            self._cost_tables[convention] = dataclasses.replace(
                table, recognition={m: table.recognition[m] + step}
            )
        return self._cost_tables[convention]

    def fuse_segments(self, inputs: Mapping[str, Any], decisions: Tensor) -> Tensor:
        """Not available: LiteEval has no per-segment outputs to fuse (its classifier reads
        the fine LSTM's last state).

        Raises:
            ConfigError: always.
        """
        raise ConfigError(
            "LiteEval decides and recognises in one recurrence over the segments; it has no "
            "per-segment outputs (streaming, early exit and threshold calibration are AdaMML's)"
        )

    def _forward(
        self, canon: dict[str, Any], b: int, s: int, decisions: Tensor | None, device_type: str
    ) -> ModelOutput:
        coarse, fine = self.policy, self.fusion
        (m,) = self.modalities
        if decisions is not None and tuple(decisions.shape) != (b, s, 1):
            raise ShapeError(
                f"decisions must have shape (B, S, 1) = {(b, s, 1)} for LiteEval's one gate; "
                f"got {tuple(decisions.shape)}"
            )
        cheap = coarse.features(self.policy_views(canon))
        x = canon[m]
        every = None
        if self.training:  # every segment in one batch; the gate's decision blends below
            ones = cheap.new_ones(b, s, 1)
            every = self.router({m: x}, ones, features=True)[m]
        with full_precision(device_type):
            cheap = cheap.float()
            state = fine.init_state(cheap)
            uses, logits = [], []
            for t in range(s):
                h_c, c_c, z = coarse.step(cheap[:, t], fine.coarse_state(state))
                u = coarse.gate(z)[..., 1]
                if decisions is not None:
                    u = decisions[:, t, 0].to(u)
                if every is not None:
                    v_f = every[:, t]
                else:  # only the chosen videos' segment t runs (none: no call)
                    seg = x[:, t : t + 1] if isinstance(x, Tensor) else _SegmentSlice(x, t)
                    v_f = self.router({m: seg}, u.view(b, 1, 1), features=True)[m][:, 0]
                state = fine.step(cheap[:, t], v_f.float(), (h_c, c_c), u, state)
                uses.append(u)
                logits.append(z)
            out_logits = fine.classify(state.h)
        used = torch.stack(uses, dim=1).unsqueeze(-1)
        gflops = self.cost_table.per_video(used.detach())
        z = torch.stack(logits, dim=1).unsqueeze(2)
        return ModelOutput(out_logits, used, z, gflops.to(out_logits.device))


def build_liteeval(
    recipe: Any,
    *,
    num_classes: int,
    backbones: Mapping[str, str] | None = None,
    coarse_backbone: str | None = None,
    coarse_size: tuple[int, int] | None = None,
    coarse_hidden: int | None = None,
    fine_hidden: int | None = None,
    cost_weights: Mapping[str, float] | None = None,
    gamma: float = 10.0,
    tau: float = 5.0,
    init_use: float | None = 0.9,
    pretrained: Pretrained | Mapping[str, Pretrained] = False,
    precision: str = "fp32",
) -> LiteEval:
    """Assemble a `LiteEval` for ``recipe`` (one modality) from registered blocks: the
    modality's policy backbone as the cheap extractor, its recognition backbone in a
    [`ModalityRouter`][adamml.router.ModalityRouter] as the expensive one, a
    [`GumbelGate`][adamml.policies.GumbelGate].

    Args:
        recipe: a [`ModelRecipe`][adamml.zoo.ModelRecipe] with one modality; its ``tiny``
            selects the modality's tiny twin and small LSTMs; its ``policy_args`` hold the
            defaults of the keyword arguments below.
        num_classes: K.
        backbones: ``{modality: name}``: the expensive backbone (default: the modality's
            recognition backbone, TSN ResNet-50 for RGB).
        coarse_backbone: the cheap extractor (default: the modality's policy backbone,
            MobileNetV2 with temporal pooling).
        coarse_size: the cheap view's ``(H, W)`` (default: the recipe's, else the modality's
            policy size).
        coarse_hidden: the coarse LSTM's width Hc (default: the recipe's).
        fine_hidden: the fine LSTM's width Hf >= Hc (default: the recipe's).
        cost_weights: lambda of the efficiency loss on the gate's decisions (default: the
            modality's ``cost_weight``).
        gamma: the efficiency loss's gamma.
        tau: the gate's initial temperature.
        init_use: the gate's initial probability of computing the fine features.
        pretrained: where the two backbones' weights come from, as for AdaMML
            ([`weights_per_part`][adamml.zoo.weights_per_part]): one value for both, or
            ``{"rgb": ..., "policy.rgb": ...}`` (the expensive and the cheap one).
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Raises:
        ConfigError: for a recipe with more than one modality or bad sizes.
    """
    from .backbones import create_backbone, resolve_backbone_name
    from .modalities import get_modality
    from .router import ModalityRouter
    from .zoo import weights_per_part

    if len(recipe.modalities) != 1:
        raise ConfigError(f"LiteEval recognises one modality; the recipe has {recipe.modalities}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer; got {num_classes}")
    # the tiny twin: the modality's tiny policy view (not the full size's 112x112), narrow LSTMs
    defaults = dict(TINY_ARGS) if recipe.tiny else dict(recipe.policy_args)
    m = get_modality(recipe.modalities[0]).name
    spec: Modality = get_modality(m)
    if recipe.tiny and spec.tiny:
        spec = spec.replace(**spec.tiny)
    size = coarse_size or defaults.get("coarse_size")
    if size is not None and not spec.is_audio:
        spec = spec.replace(policy_size=tuple(size))
    chosen = {get_modality(k).name: v for k, v in (backbones or {}).items()}
    if set(chosen) - {m}:
        raise ConfigError(f"backbones names {sorted(chosen)}; LiteEval recognises only {m!r}")
    fine_name = resolve_backbone_name(
        chosen.get(m) or recipe.backbones.get(m) or spec.recognition_backbone
    )
    coarse_name = resolve_backbone_name(
        coarse_backbone or recipe.policy_backbones.get(m) or spec.policy_backbone
    )
    weights = weights_per_part(pretrained, (m,), (m,))
    expensive = create_backbone(
        fine_name, modality=spec, num_classes=num_classes, pretrained=weights[m]
    )
    cheap = create_backbone(
        coarse_name, modality=spec, num_classes=0, pretrained=weights[POLICY_PART + m]
    )
    hc = int(coarse_hidden or defaults.get("coarse_hidden", 512))
    hf = int(fine_hidden or defaults.get("fine_hidden", 2048))
    coarse = LiteEvalCoarse(m, cheap, hidden_size=hc, gate=GumbelGate(tau), init_use=init_use)
    fine = LiteEvalFine(
        m,
        coarse_dim=coarse.feature_dim,
        fine_dim=expensive.num_features,
        hidden_size=hf,
        coarse_hidden=hc,
        num_classes=num_classes,
    )
    model = LiteEval(
        coarse,
        ModalityRouter({m: expensive}),
        fine,
        modality_specs={m: spec},
        cost_weights=dict(cost_weights or {m: spec.cost_weight}),
        gamma=gamma,
        precision=precision,
    )
    model.components = {
        "adamml.modalities": (m,),
        "adamml.backbones": tuple(dict.fromkeys((fine_name, coarse_name))),
        "adamml.policies": (),
        "adamml.fusions": (),
    }
    return model
