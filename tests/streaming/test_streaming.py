"""`AdaMML.stream`: segment by segment equals the batch forward; early exit saves its cost."""

from __future__ import annotations

import pytest
import torch
from stream_helpers import inputs_for, mixed_policy, stream_over
from torch import Tensor, nn

import adamml
from adamml.errors import ConfigError, ShapeError
from adamml.fusion import Fusion
from adamml.streaming import EarlyExit, confidence


def test_learned_policies_mix_decisions_and_still_match() -> None:
    """Policies and fusions the registered models do not use (fc, joint_gate; fc2, max), with
    decisions that skip: the stream still gives the batch forward."""
    cases = [
        {"policy": "fc"},
        {"policy": "joint_gate"},
        {"policy": "joint_gate", "policy_args": {"mode": "all_or_nothing"}},
        {"fusion": "fc2"},
        {"fusion": "max"},
    ]
    for kwargs in cases:
        model = adamml.create_model("test_adamml_rgb_audio", num_classes=5, **kwargs).eval()
        x = inputs_for(model, 3, 4, seed=1)
        mixed_policy(model, x)
        with torch.no_grad():
            want = model(x)
        got = stream_over(model, x).output()
        assert 0.0 < float(want.decisions.mean()) < 1.0, kwargs
        if kwargs.get("policy_args"):  # the paper's joint gate: one decision for both
            assert torch.equal(want.decisions[..., 0], want.decisions[..., 1])
        assert torch.equal(got.decisions, want.decisions), kwargs
        torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(got.gflops, want.gflops.double(), rtol=1e-6, atol=1e-9)


def test_each_step_returns_the_prefix_prediction() -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=4).eval()
    x = inputs_for(model, 2, 3)
    mixed_policy(model, x)
    stream = model.stream()
    for t in range(3):
        step = stream.step({m: v[:, t] for m, v in x.items()})  # (B, T, C, H, W) segments
        with torch.no_grad():
            prefix = model({m: v[:, : t + 1] for m, v in x.items()})
        torch.testing.assert_close(step.logits, prefix.logits, rtol=0, atol=1e-5)
        assert torch.equal(step.decisions, prefix.decisions[:, t])
        torch.testing.assert_close(step.gflops, prefix.gflops.double(), rtol=1e-6, atol=1e-9)
        assert step.segments.tolist() == [t + 1, t + 1]


class _TemporalAttention(Fusion):
    """A fusion that mixes segments: each segment's output depends on all of them."""

    segmentwise = False

    def fuse(self, z: Tensor, u: Tensor) -> Tensor:
        fused = (z * u.unsqueeze(-1)).sum(dim=2)
        return fused + fused.mean(dim=1, keepdim=True)


def test_a_fusion_across_segments_and_a_policy_without_stream_mode_raise() -> None:
    model = adamml.create_model(
        "test_adamml_rgb_audio", num_classes=3, fusion=_TemporalAttention(("rgb", "audio"))
    )
    with pytest.raises(ConfigError, match="not a mean over segments"):
        model.stream()

    class Whole(nn.Module):  # decides from all segments at once; says nothing about streaming
        modalities = ("rgb", "audio")
        needs_views = False

        def forward(self, views):
            b, s = views["rgb"].shape[:2]
            return adamml.PolicyOutput(torch.ones(b, s, 2), None)

    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3, policy=Whole())
    with pytest.raises(ConfigError, match="stream_mode"):
        model.stream()


def test_a_seeded_random_policy_streams_reproducibly() -> None:
    model = adamml.create_model(
        "test_adamml_rgb_audio", num_classes=3, policy="random", policy_args={"seed": 3}
    ).eval()
    x = inputs_for(model, 2, 6)
    first, second = stream_over(model, x).decisions, stream_over(model, x).decisions
    assert torch.equal(first, second)
    assert not all(torch.equal(first[:, 0], first[:, t]) for t in range(1, 6))  # not restarted


def test_early_exit_counts_only_the_segments_used() -> None:
    """Threshold 0 with min_segments=2: every video stops after two segments; its prediction and
    cost are those of the batch forward on the first two segments, and nothing runs after."""
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=4).eval()
    x = inputs_for(model, 2, 5)
    mixed_policy(model, x)
    calls = {"policy": 0, "rgb": 0}
    model.policy.backbones["rgb"].register_forward_hook(
        lambda *a: calls.__setitem__("policy", calls["policy"] + 1)
    )
    model.router.backbone("rgb").register_forward_hook(
        lambda *a: calls.__setitem__("rgb", calls["rgb"] + 1)
    )
    stream = model.stream(early_exit=EarlyExit(0.0, min_segments=2))
    steps = [stream.step({m: v[:, t] for m, v in x.items()}) for t in range(5)]
    assert steps[1].active.tolist() == [False, False] and stream.done
    assert calls["policy"] == 2  # segments 3-5 never reach the policy
    with torch.no_grad():
        two = model({m: v[:, :2] for m, v in x.items()})
    last = steps[-1]
    assert last.segments.tolist() == [2, 2]
    torch.testing.assert_close(last.logits, two.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(last.gflops, two.gflops.double(), rtol=1e-6, atol=1e-9)
    with torch.no_grad():
        full = model(x)
    assert bool((last.gflops < full.gflops.double()).all())
    assert float(stream.decisions[:, 2:].abs().sum()) == 0.0


def test_early_exit_per_video_stops_only_the_confident_one() -> None:
    """A threshold at which the two videos exit after different numbers of segments: each
    video's prediction and cost are the batch forward's on the segments it used."""
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3).eval()
    x = inputs_for(model, 2, 5, seed=4)
    mixed_policy(model, x)
    with torch.no_grad():
        sure = torch.stack(
            [confidence(model({m: v[:, : t + 1] for m, v in x.items()}).logits) for t in range(5)],
            dim=1,
        )  # (B, S): the confidence after each prefix

    def exits(threshold: float) -> list[int]:
        return [next((t + 1 for t in range(5) if sure[b, t] >= threshold), 5) for b in range(2)]

    values = sure.flatten().sort().values
    midpoints = ((values[1:] + values[:-1]) / 2).tolist()  # no confidence sits on a threshold
    threshold = next(c for c in midpoints if len(set(exits(c))) == 2)
    stream = model.stream(early_exit=EarlyExit(threshold))
    for t in range(5):
        step = stream.step({m: v[:, t] for m, v in x.items()})
    used = step.segments.tolist()
    assert used == exits(threshold) and used[0] != used[1]
    for b in range(2):
        with torch.no_grad():
            prefix = model({m: v[b : b + 1, : used[b]] for m, v in x.items()})
        torch.testing.assert_close(step.logits[b : b + 1], prefix.logits, rtol=0, atol=1e-5)
        torch.testing.assert_close(step.gflops[b : b + 1], prefix.gflops.double())


def test_a_segment_source_is_asked_only_for_selected_segments() -> None:
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=3).eval()
    x = inputs_for(model, 2, 4)
    mixed_policy(model, x)
    asked: list[int] = []

    class Flow:  # one segment of flow, computed on request
        def __init__(self, t: int) -> None:
            self.t, self.shape = t, (2, 1, *model.input_spec["flow"].shape)

        def gather(self, b_idx: Tensor, s_idx: Tensor) -> Tensor:
            asked.extend(b_idx.tolist())
            return x["flow"][b_idx, s_idx + self.t]

    stream = model.stream()
    for t in range(4):
        stream.step({"rgb": x["rgb"][:, t], "rgbdiff": x["rgbdiff"][:, t], "flow": Flow(t)})
    with torch.no_grad():
        want = model(x)
    torch.testing.assert_close(stream.logits, want.logits, rtol=0, atol=1e-5)
    assert len(asked) == int(want.decisions[..., 1].sum()) < 8


def test_bad_steps_raise() -> None:
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3).eval()
    x = inputs_for(model, 2, 2)
    stream = model.stream()
    with pytest.raises(ShapeError, match="one segment"):
        stream.step(x)
    stream.step({m: v[:, 0] for m, v in x.items()})
    with pytest.raises(ShapeError, match="holds 2 videos"):
        stream.step({m: v[:1, 1] for m, v in x.items()})
    with pytest.raises(ShapeError, match="no segment"):
        model.stream().output()


def test_confidence_and_early_exit_rules() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]]))
    torch.testing.assert_close(confidence(logits, "prob"), torch.tensor([0.7, 0.4]).double())
    torch.testing.assert_close(confidence(logits, "margin"), torch.tensor([0.5, 0.05]).double())
    rule = EarlyExit(0.5, metric="margin", min_segments=2)
    assert rule.stops(logits, torch.tensor([2, 2])).tolist() == [True, False]
    assert rule.stops(logits, torch.tensor([1, 2])).tolist() == [False, False]
    for bad in ({"threshold": 1.5}, {"threshold": 0.5, "metric": "entropy"}):
        with pytest.raises(ConfigError):
            EarlyExit(**bad)
    with pytest.raises(ConfigError, match="min_segments"):
        EarlyExit(0.5, min_segments=0)


@pytest.mark.parametrize("policy", ["lstm", "fc", "joint_gate"])
def test_a_calibrated_policy_streams_with_its_thresholds(policy: str) -> None:
    """Thresholds set by `adamml.calibrate` move the stream's decisions as they move the batch
    forward's: the stream of a calibrated checkpoint still equals its batch forward."""
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=5, policy=policy).eval()
    x = inputs_for(model, 3, 4, seed=2)
    mixed_policy(model, x)
    with torch.no_grad():
        out = model(x)
        before = out.decisions
        # thresholds between two neighbouring margins, away from ties: RGB near the top (fewer
        # selected), audio near the bottom (more selected), whatever the initial weights
        margins = out.policy_logits[..., 1] - out.policy_logits[..., 0]  # (B, S, M)

        def between(k: int, q: float) -> float:
            d = margins[..., k].flatten().sort().values
            i = int(q * (len(d) - 2))
            return float(d[i] + d[i + 1]) / 2

        model.policy.set_thresholds({"rgb": between(0, 0.8), "audio": between(1, 0.2)})
        want = model(x)
    assert not torch.equal(before, want.decisions)  # the thresholds do change decisions
    got = stream_over(model, x).output()
    assert torch.equal(got.decisions, want.decisions)
    torch.testing.assert_close(got.logits, want.logits, rtol=0, atol=1e-5)
