"""A per-sample gate in your own model: run an expensive branch only where it helps.

Not AdaMML: an MLP classifier with a cheap branch (one linear layer) and an expensive branch
(a three-layer MLP, ~300x the multiply-adds), and a per-sample ``adamml.GumbelGate`` that
decides whether to run the expensive one, trained with ``adamml.EfficiencyLoss`` and
``adamml.TemperatureSchedule``::

    x (B, D) ──> policy: Linear -> GumbelGate ──> u (B,) in {0, 1}
             ├─> cheap: Linear ────────> p_cheap (B, K) ──┐  training: both run,
             └─> expensive: MLP ───────> p_exp   (B, K) ──┴─> p = u p_exp + (1 - u) p_cheap
                                                              eval: each sample runs one

The task (``make_task``): eight Gaussian features, each pushed 0.5 away from zero. Where
``x[3] < 0`` the label is ``x[0] > 0``, a linear function: the cheap branch suffices. Where
``x[3] > 0`` it is ``x[1] * x[2] > 0``, an XOR that no linear layer computes: these samples
*need* the expensive branch. The gate sees ``x`` and must learn to run the expensive branch on
the second half only.

What makes the gate learn (measured on seeds 0-9 at 600 steps; the table is in
``docs/components/own-model.md``):

- **Mix the branches in probability space**, ``p = u p_exp + (1 - u) p_cheap``, and take the
  cross-entropy of ``p``. The decision's gradient is ``-(p_exp[y] - p_cheap[y]) / p[y]``: how
  much likelier the right class is with the expensive branch, at most 1 where the gate runs
  it. Mixing logits (``u z_exp + (1 - u) z_cheap``) makes it ``(softmax - onehot) . (z_exp -
  z_cheap)``, which grows with the logit margins as the branches train: the gate stayed on
  for every sample on 10 seeds of 10.
- **Warm up the branches first** (100 steps, each branch's own cross-entropy on every sample,
  the gate idle), as AdaMML starts from pre-trained parts. Otherwise the cheap branch only sees
  what the untrained gate sends it, can settle on a near-constant answer, and the gate learns
  to route around it (2 seeds of 10 kept the expensive branch on 75-85 % of the samples that
  do not need it).
- **Start near always-on, with small margins**: a bias on the policy's *use* logit
  (``init_use=0.9``; 0.5 works as well) and scaled-down weights. The straight-through
  gradient ``p (1 - p) / tau`` vanishes at large margins: ``init_use=0.999`` failed on every
  seed.
- **A cost weight that matters**: with ``penalty="mean"`` each use costs ``cost_weight``
  (0.3 here; 0.3-1.5 all worked, 0.1 left the gate on for most samples in 600 steps). The
  blockdrop penalty also worked at 0.3 (up to 10 % use where not needed); its square has zero
  gradient at zero use, and "mean" is the simpler choice for a per-sample gate.
- **Clip the policy's gradient** (norm 1), a safety net: where the gate skipped a sample the
  cheap branch gets confidently wrong, ``1 / p_cheap[y]`` is huge, and one such step fills
  Adam's second-moment estimate so the gate stops moving for hundreds of steps. Without
  warm-up, clipping took the seeds that learn from 6 to 8 of 10; with warm-up it changed
  nothing measurable.
- **Temperature**: a hard gate's tau changes no decision, only the gradient's size and which
  samples get one; with Adam it hardly matters here (tau fixed at 5 or at 1 worked as well as
  the paper's schedule, 5.0 x0.965 per epoch after warm-up, used here).
- **The gate compares confidence, not correctness**: the expensive branch is skipped where the
  cheap one is about as sure. Without the 0.5 gap (inputs on the decision boundary) the gate
  kept the expensive branch on about half the samples that do not need it, at the always-run
  model's accuracy (96.3 %).

Run (about 10 s on a 2-core CPU, half of it the first optimizer step importing torch._dynamo)::

    python examples/own_model_gate.py --seed 0 --steps 600
    python examples/own_model_gate.py --mix logits   # the failure: the gate stays on
"""

from __future__ import annotations

import argparse
import math
import time
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adamml import EfficiencyLoss, GumbelGate, TemperatureSchedule

FEATURES, CLASSES, HIDDEN = 8, 2, 64
MIXES = ("probs", "logits")


class Task(NamedTuple):
    """Inputs ``x (N, D)``, labels ``y (N,)``, and ``need (N,)``: the label is the XOR."""

    x: Tensor
    y: Tensor
    need: Tensor


def make_task(n: int, *, generator: torch.Generator, gap: float = 0.5) -> Task:
    """Half the samples need the expensive branch (an XOR label), half do not (a linear one)."""
    x = torch.randn(n, FEATURES, generator=generator)
    x = x + gap * x.sign()  # no sample sits on a decision boundary
    need = x[:, 3] > 0
    y = torch.where(need, x[:, 1] * x[:, 2] > 0, x[:, 0] > 0).long()
    return Task(x, y, need)


class GateOutput(NamedTuple):
    """``log_probs (B, K)`` and ``use (B,)``, the 0./1. decisions to run the expensive branch."""

    log_probs: Tensor
    use: Tensor


class GatedMLP(nn.Module):
    """A cheap and an expensive branch, and a per-sample gate choosing between them.

    Args:
        init_use: the gate's starting probability of running the expensive branch.
        tau: the GumbelGate's starting temperature.
        mix: ``"probs"`` (what works) or ``"logits"`` (the failure, for comparison).
    """

    def __init__(self, *, init_use: float = 0.9, tau: float = 5.0, mix: str = "probs") -> None:
        super().__init__()
        if mix not in MIXES:
            raise ValueError(f"mix must be one of {MIXES}; got {mix!r}")
        self.mix = mix
        self.cheap = nn.Linear(FEATURES, CLASSES)
        self.expensive = nn.Sequential(
            nn.Linear(FEATURES, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, CLASSES),
        )
        self.policy = nn.Linear(FEATURES, 2)  # (skip, use) logits
        self.gate = GumbelGate(tau=tau)
        with torch.no_grad():  # small margins, biased towards use
            self.policy.weight.mul_(0.1)
            self.policy.bias.copy_(torch.tensor([0.0, math.log(init_use / (1 - init_use))]))

    def forward(self, x: Tensor, *, always_run: bool = False) -> GateOutput:
        """``x (B, D) -> GateOutput(log_probs (B, K), use (B,))``."""
        if always_run:
            use = x.new_ones(x.shape[0])
        else:
            use = self.gate(self.policy(x))[:, 1]  # (B,), straight-through gradient
        if not self.training:  # really skip: each sample runs one branch
            on = use > 0.5
            log_probs = x.new_empty(x.shape[0], CLASSES)
            log_probs[on] = self.expensive(x[on]).log_softmax(-1)
            log_probs[~on] = self.cheap(x[~on]).log_softmax(-1)
            return GateOutput(log_probs, use)
        u = use.unsqueeze(-1)
        if self.mix == "logits":
            logits = u * self.expensive(x) + (1 - u) * self.cheap(x)
            return GateOutput(logits.log_softmax(-1), use)
        p = u * self.expensive(x).softmax(-1) + (1 - u) * self.cheap(x).softmax(-1)
        return GateOutput(p.clamp_min(1e-12).log(), use)

    def macs(self) -> tuple[int, int, int]:
        """Multiply-adds per sample of the policy, the cheap and the expensive branch."""

        def count(m: nn.Module) -> int:
            return sum(
                layer.weight.numel() for layer in m.modules() if isinstance(layer, nn.Linear)
            )

        return count(self.policy), count(self.cheap), count(self.expensive)


def train(
    model: GatedMLP,
    task: Task,
    *,
    steps: int,
    generator: torch.Generator,
    always_run: bool = False,
    cost_weight: float = 0.3,
    warmup: int = 100,
    clip: float | None = 1.0,
    batch_size: int = 256,
    lr: float = 1e-2,
) -> None:
    """``warmup`` steps of each branch's own cross-entropy, then ``steps - warmup`` of the
    gated model's cross-entropy + ``EfficiencyLoss(penalty="mean")``; Adam, and tau decays
    once per epoch after warm-up. ``always_run`` trains the same way with the gate fixed on."""
    efficiency = EfficiencyLoss({"expensive": cost_weight}, penalty="mean")
    schedule = TemperatureSchedule(start=model.gate.temperature, decay=0.965)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    steps_per_epoch = max(1, len(task.y) // batch_size)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(task.y), (batch_size,), generator=generator)
        x, y = task.x[idx], task.y[idx]
        if step < warmup:
            loss = F.cross_entropy(model.cheap(x), y) + F.cross_entropy(model.expensive(x), y)
        else:
            out = model(x, always_run=always_run)
            loss = F.nll_loss(out.log_probs, y)
            if not always_run:  # use is (B,): one cost weight, so no M axis is needed
                loss = loss + efficiency(out.log_probs, out.use, y)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.policy.parameters(), clip)
        optimizer.step()
        if step >= warmup and (step + 1 - warmup) % steps_per_epoch == 0:
            schedule.step()
            schedule.apply(model)


@torch.no_grad()
def evaluate(model: GatedMLP, task: Task, *, always_run: bool = False) -> dict[str, float]:
    """In %: ``accuracy``; ``use_need`` and ``use_no_need``, how often the expensive branch ran
    on samples that need it and on those that do not; ``skipped``; and ``relative_cost``, the
    multiply-adds (policy included) relative to always running the expensive branch."""
    model.eval()
    out = model(task.x, always_run=always_run)
    policy, cheap, expensive = model.macs()
    used = out.use.mean().item()
    cost = expensive if always_run else policy + used * expensive + (1 - used) * cheap
    return {
        "accuracy": 100 * (out.log_probs.argmax(-1) == task.y).float().mean().item(),
        "use_need": 100 * out.use[task.need].mean().item(),
        "use_no_need": 100 * out.use[~task.need].mean().item(),
        "skipped": 100 * (1 - used),
        "relative_cost": 100 * cost / expensive,
    }


def run(
    seed: int = 0,
    steps: int = 600,
    *,
    always_run: bool = False,
    cost_weight: float = 0.3,
    warmup: int = 100,
    mix: str = "probs",
    clip: float | None = 1.0,
    init_use: float = 0.9,
) -> dict[str, float]:
    """Train on 4096 samples, evaluate on 4096 others; returns ``evaluate``'s numbers."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_set = make_task(4096, generator=generator)
    test_set = make_task(4096, generator=generator)
    model = GatedMLP(init_use=init_use, mix=mix)
    train(
        model,
        train_set,
        steps=steps,
        generator=generator,
        always_run=always_run,
        cost_weight=cost_weight,
        warmup=warmup,
        clip=clip,
    )
    return evaluate(model, test_set, always_run=always_run)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Train the gated model and an always-run one the same way; print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600, help="training steps, warm-up included")
    parser.add_argument("--warmup", type=int, default=100, help="steps before the gate trains")
    parser.add_argument("--cost-weight", type=float, default=0.3, help="lambda per use")
    parser.add_argument("--mix", choices=MIXES, default="probs", help="how the branches mix")
    parser.add_argument("--no-clip", action="store_true", help="do not clip the policy gradient")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    gated = run(
        args.seed,
        args.steps,
        cost_weight=args.cost_weight,
        warmup=args.warmup,
        mix=args.mix,
        clip=None if args.no_clip else 1.0,
    )
    always = run(args.seed, args.steps, always_run=True, warmup=args.warmup)
    print(f"{'':<11}{'accuracy':>9}{'use|need':>10}{'use|no need':>13}{'skipped':>9}{'cost':>7}")
    for name, r in (("gated", gated), ("always-run", always)):
        print(
            f"{name:<11}{r['accuracy']:>8.1f}%{r['use_need']:>9.1f}%{r['use_no_need']:>12.1f}%"
            f"{r['skipped']:>8.1f}%{r['relative_cost']:>6.1f}%"
        )
    print(
        "use = runs of the expensive branch; cost = multiply-adds vs always-run "
        f"({time.perf_counter() - start:.1f} s)"
    )
    return {"gated": gated, "always_run": always}


if __name__ == "__main__":
    main()
