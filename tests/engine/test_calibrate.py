"""Threshold calibration: replay matches evaluation, targets are met, checkpoints keep it."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import Tensor, nn

import adamml
from adamml.data.sources import build_dataset
from adamml.engine.calibrate import calibrate, save_calibrated
from adamml.engine.checkpoint import load_checkpoint, save_checkpoint
from adamml.engine.distributed import DistInfo
from adamml.engine.evaluate import evaluate
from adamml.engine.instantiate import model_from_checkpoint
from adamml.engine.loaders import make_loader
from adamml.engine.metrics import summarize
from adamml.engine.replay import collect_calibration_data, fusion_gflops, replay
from adamml.errors import CheckpointError, ConfigError
from adamml.types import PolicyOutput

SEGMENTS = 4


def tiny(policy: str = "lstm", **policy_args) -> nn.Module:
    torch.manual_seed(0)
    return adamml.create_model(
        "test_adamml_rgb_audio", num_classes=4, policy=policy, policy_args=policy_args
    ).eval()


def loader_for(model: nn.Module, n: int = 24, seed: int = 0):
    ds = build_dataset(
        f"synthetic:{n}",
        model.input_spec,
        segments=SEGMENTS,
        train=False,
        num_classes=4,
        seed=seed,
    )
    return make_loader(ds, batch_size=8, info=DistInfo(), train=False, seed=0)[0]


@pytest.fixture(scope="module")
def lstm_model() -> nn.Module:
    return tiny(init_use=None)


def test_replay_is_what_evaluation_measures(lstm_model) -> None:
    model, loader = lstm_model, loader_for(lstm_model)
    data = collect_calibration_data(model, loader)
    assert data.margins.shape == (24, SEGMENTS, 2) and data.features is not None
    # halfway between two neighbouring margins: a threshold equal to a margin would make the
    # test depend on rounding (the two passes may batch the policy's convolutions differently)
    rgb = data.margins[..., 0].flatten().sort().values
    k = rgb.numel() // 2
    t = torch.tensor([float(rgb[k - 1] + rgb[k]) / 2, 0.0])
    model.policy.set_thresholds(t)
    try:
        measured = summarize(evaluate(model, loader, DistInfo()))
    finally:
        model.policy.set_thresholds(torch.zeros(2))
    replayed = summarize(replay(model, data, t))
    assert 0 < replayed["selection_rate"]["rgb"] < 100
    for key in ("top1", "gflops", "selection_rate"):
        assert replayed[key] == pytest.approx(measured[key], rel=1e-5), key
    assert replayed["ce"] == pytest.approx(measured["ce"], rel=1e-4)


def test_plain_batches_without_indices(lstm_model) -> None:
    batches = [(inputs, target) for _, inputs, target in loader_for(lstm_model, n=8)]
    data = collect_calibration_data(lstm_model, batches)
    assert data.index.tolist() == list(range(8)) and data.outputs["rgb"].shape[:2] == (8, 4)


def test_calibration_hits_each_target(lstm_model) -> None:
    model, loader = lstm_model, loader_for(lstm_model)
    fusion = fusion_gflops(model, SEGMENTS)
    assert fusion == pytest.approx(SEGMENTS * model.cost_table.recognition_total)
    previous = None
    for share in (0.3, 0.5, 0.7):
        result = calibrate(model, loader, share * fusion)
        assert result.gflops == pytest.approx(share * fusion, rel=0.05)
        assert result.gflops <= share * fusion * (1 + 1e-9)  # the budget is a ceiling
        assert result.passes == 1 and result.gflops == pytest.approx(result.predicted_gflops)
        assert model.policy.threshold_dict() == result.thresholds
        # "cost": thresholds in proportion to GMACs, so audio (2 % of RGB) is nearly free
        assert abs(result.thresholds["audio"]) < abs(result.thresholds["rgb"])
        if previous is not None:  # a larger budget, lower thresholds
            assert result.thresholds["rgb"] <= previous["rgb"]
        previous = result.thresholds
        assert {"top1", "mAP", "selection_rate"} <= set(result.metrics)
    model.policy.set_thresholds(torch.zeros(2))


@pytest.mark.parametrize("policy", ["fc", "joint_gate"])
def test_other_policies_hit_a_target(policy: str) -> None:
    model = tiny(policy, init_use=None)
    target = 0.5 * fusion_gflops(model, SEGMENTS)
    result = calibrate(model, loader_for(model, n=16), target, rule="shared")
    assert result.gflops == pytest.approx(target, rel=0.05)
    assert result.thresholds["rgb"] == result.thresholds["audio"]  # one shared threshold


class DecisionFeedbackPolicy(nn.Module):
    """A PolicyLSTM that feeds back its decisions (+-5) instead of its logits, and whose margin
    for a modality rises by ``bonus`` after a segment that selected it: its later margins move
    with the thresholds by construction (whatever the initial weights), and it has no
    ``features``/``decide`` to replay."""

    bonus = 0.5

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.modalities = inner.modalities

    @property
    def thresholds(self) -> Tensor:
        return self.inner.thresholds

    def set_thresholds(self, values) -> None:
        self.inner.set_thresholds(values)

    def threshold_dict(self) -> dict[str, float]:
        return self.inner.threshold_dict()

    def extractors(self) -> dict[str, nn.Module]:
        return self.inner.extractors()

    def forward(self, views) -> PolicyOutput:
        p = self.inner
        feats = p.features(views)
        state = p.init_state(feats.shape[0], feats.device, feats.dtype)
        h, c, prev = state
        decisions, logits = [], []
        selected = feats.new_zeros(feats.shape[0], len(self.modalities))
        for t in range(feats.shape[1]):
            h, c = p.lstm(torch.cat([feats[:, t], prev], dim=-1), (h, c))
            raw = p._raw_logits(h)
            z = rearrange(raw, "b (m k) -> b m k", k=2)
            spread = (z[..., 1] - z[..., 0]).std()  # the bonus in units of this margin spread
            z = z + torch.stack([torch.zeros_like(selected), self.bonus * spread * selected], -1)
            d = p.gate(p._thresholded(z))[..., 1]
            selected = d
            prev = 5.0 * (2 * d - 1).repeat_interleave(2, dim=-1)
            decisions.append(d)
            logits.append(z)
        return PolicyOutput(torch.stack(decisions, 1), torch.stack(logits, 1))


def test_decision_feedback_is_iterated_to_the_target() -> None:
    base = tiny(init_use=None)
    model = adamml.AdaMML(
        DecisionFeedbackPolicy(base.policy), base.router, base.fusion, modality_specs=base.specs
    ).eval()
    target = 0.5 * fusion_gflops(model, SEGMENTS)
    result = calibrate(model, loader_for(model), target, tolerance=0.05, max_passes=6)
    assert result.passes > 1  # the first pass's margins did not predict the decisions
    assert result.gflops == pytest.approx(target, rel=0.05)


def test_unreachable_target_and_policies_without_thresholds() -> None:
    model = tiny()
    loader = loader_for(model, n=8)
    policy_only = SEGMENTS * model.cost_table.policy_total
    with pytest.raises(ConfigError, match="policy alone costs"):
        calibrate(model, loader, 0.5 * policy_only)
    with pytest.raises(ConfigError, match="target_gflops"):
        calibrate(model, loader, -1.0)
    with pytest.raises(ConfigError, match="thresholds"):
        calibrate(tiny("all"), loader, 1.0)


def test_calibrated_checkpoint_is_a_new_file_that_eval_loads(tmp_path, lstm_model) -> None:
    model = lstm_model
    original = save_checkpoint(
        {
            "model_name": "test_adamml_rgb_audio",
            "num_classes": 4,
            "model_args": {"policy_args": {"init_use": None}},
            "model": model.state_dict(),
            "optimizers": {},
        },
        tmp_path,
        "best.pt",
        update_last=False,
    )
    before = original.read_bytes()
    result = calibrate(model, loader_for(model, n=8), 0.5 * fusion_gflops(model, SEGMENTS))
    path = save_calibrated(original, model, result, data="synthetic:8")
    assert path.name == f"best.calibrated-{result.target_gflops:.4g}gflops.pt"
    assert original.read_bytes() == before
    ckpt = load_checkpoint(path)
    assert "optimizers" not in ckpt and ckpt["calibration"]["source"] == str(original)
    assert ckpt["calibration"]["thresholds"] == result.thresholds
    loaded, _ = model_from_checkpoint(path)
    assert loaded.policy.threshold_dict() == pytest.approx(result.thresholds)
    with pytest.raises(CheckpointError, match="original is kept"):
        save_calibrated(original, model, result, out=original)
    model.policy.set_thresholds(torch.zeros(2))
