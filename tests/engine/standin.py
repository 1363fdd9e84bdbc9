"""A tiny model with AdaMML's output contract, for engine tests that must not depend on the
real blocks (``model: standin:make_model`` with ``tests/engine`` on ``PYTHONPATH``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from adamml.modalities import InputSpec
from adamml.model import freeze_norm_and_dropout
from adamml.policies.gate import GumbelGate, set_decision_mode
from adamml.types import ModelOutput, PolicyOutput

SPECS = {"rgb": InputSpec((2, 3, 6, 6), "rgb"), "audio": InputSpec((1, 1, 6, 6), "audio")}
COST = {"rgb": 1.0, "audio": 0.05}


class Backbone(nn.Module):
    """Mean over frames, flatten, optional BatchNorm, linear head: (N, T, C, H, W) -> (N, K)."""

    def __init__(self, spec: InputSpec, num_classes: int, bn: bool) -> None:
        super().__init__()
        t, c, h, w = spec.shape
        self.norm = nn.BatchNorm1d(c * h * w) if bn else nn.Identity()
        self.head = nn.Linear(c * h * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(x.mean(1).flatten(1)))


class Policy(nn.Module):
    """Linear scores per modality and segment + a GumbelGate; ``learned=False`` is all-on."""

    def __init__(self, modalities: tuple[str, ...], learned: bool) -> None:
        super().__init__()
        self.modalities = modalities
        self.needs_views = learned
        if learned:
            self.feats = nn.ModuleDict(
                {m: nn.Linear(SPECS[m].channels * 36, 4) for m in modalities}
            )
            self.head = nn.Linear(4 * len(modalities), 2 * len(modalities))
            self.gate = GumbelGate(tau=5.0)

    def forward(self, views: dict[str, Tensor]) -> PolicyOutput:
        ref = next(iter(views.values()))
        b, s = ref.shape[:2]
        if not self.needs_views:
            return PolicyOutput(torch.ones(b, s, len(self.modalities)), None)
        f = torch.cat([self.feats[m](views[m].mean(2).flatten(2)) for m in self.modalities], -1)
        logits = self.head(torch.relu(f)).view(b, s, len(self.modalities), 2)
        return PolicyOutput(self.gate(logits)[..., 1], logits)


class Router(nn.Module):
    def __init__(self, backbones: dict[str, nn.Module]) -> None:
        super().__init__()
        self.backbones = nn.ModuleDict(backbones)
        self.modalities = tuple(backbones)


class StandIn(nn.Module):
    """policy -> masked per-modality logits -> learnable weighted sum -> mean over segments."""

    def __init__(self, num_classes: int, modalities: tuple[str, ...], learned: bool, bn: bool):
        super().__init__()
        self.modalities = modalities
        self.policy = Policy(modalities, learned)
        self.router = Router({m: Backbone(SPECS[m], num_classes, bn) for m in modalities})
        self.fusion = nn.Linear(len(modalities), 1, bias=False)
        nn.init.constant_(self.fusion.weight, 1.0)
        self.cost_weights = {m: COST[m] for m in modalities}

    # the training protocol (`adamml.AdaMML.recognition_parameters`, `set_phase`)
    def recognition_parameters(self) -> list[nn.Parameter]:
        return [*self.router.parameters(), *self.fusion.parameters()]

    def policy_parameters(self) -> list[nn.Parameter]:
        return list(self.policy.parameters())

    def set_phase(
        self, phase: str, *, freeze_statistics: bool = True, policy_decisions: str = "sample"
    ) -> StandIn:
        self.train()
        train_policy = phase == "policy"
        for p in self.recognition_parameters():
            p.requires_grad_(not train_policy)
        for p in self.policy_parameters():
            p.requires_grad_(train_policy)
        for part in [self.router, self.fusion] if train_policy else [self.policy]:
            if freeze_statistics:
                freeze_norm_and_dropout(part)
        if not train_policy:
            set_decision_mode(self.policy, policy_decisions)
        return self

    @property
    def part_names(self) -> tuple[str, ...]:
        """The parts protocol (`adamml.AdaMML.part_names`): one per recognition backbone."""
        return tuple(self.modalities)

    def load_part_state(self, name: str, state: dict[str, Tensor], *, what: str = "") -> None:
        prefix = f"router.backbones.{name}."
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        self.router.backbones[name].load_state_dict(picked or state)

    @property
    def input_spec(self) -> dict[str, InputSpec]:
        return {m: SPECS[m] for m in self.modalities}

    def forward(self, inputs: dict[str, Tensor], decisions: Tensor | None = None) -> ModelOutput:
        pol = self.policy({m: inputs[m] for m in self.modalities})
        d = pol.decisions if decisions is None else decisions.to(pol.decisions)
        b, s = d.shape[:2]
        per = torch.stack(
            [
                self.router.backbones[m](inputs[m].flatten(0, 1)).view(b, s, -1)
                for m in self.modalities
            ],
            -1,
        ) * d.unsqueeze(2)
        seg = (per * self.fusion.weight.view(1, 1, 1, -1)).sum(-1)
        cost = torch.tensor([COST[m] for m in self.modalities])
        gflops = (d.detach() * cost).sum((1, 2)) + 0.01 * s
        return ModelOutput(seg.mean(1), d, pol.logits, gflops)


def make_model(
    num_classes: int, modalities: str = "rgb,audio", learned: bool = True, bn: bool = False
) -> StandIn:
    """The stand-in factory (``model: standin:make_model``)."""
    return StandIn(num_classes, tuple(modalities.split(",")), learned, bn)
