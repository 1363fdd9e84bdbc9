"""The GFLOPs target (`adamml.engine.budget`): the controller's update, its checks, its state in
checkpoints and logs, and a resumed run that equals an uninterrupted one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import merged

from adamml.engine import TrainConfig, Trainer
from adamml.engine import trainer as trainer_mod
from adamml.engine.budget import (
    ALPHA,
    DOWN,
    R_GAIN,
    R_MAX,
    S_MAX,
    S_MIN,
    CostController,
    batch_cost,
    check_target,
)
from adamml.engine.checkpoint import load_checkpoint
from adamml.errors import ConfigError
from adamml.flops import CostTable


def test_update_is_dual_ascent_in_log_space_on_the_smoothed_error() -> None:
    c = CostController(2.0, step=0.1)
    assert c.scale == 1.0
    assert c.update(3.0) == pytest.approx(math.exp(0.1 * 0.5))  # 50 % over: e = 0.5
    # 100x over: clipped to +100 %, smoothed: e = 0.5 + ALPHA * (1 - 0.5)
    e = 0.5 + ALPHA * 0.5
    assert c.update(200.0) == pytest.approx(math.exp(0.05 + 0.1 * e))
    # under the target, s falls DOWN times faster than it rises
    down = CostController(2.0, step=0.1)
    assert down.update(0.0) == pytest.approx(math.exp(-0.1 * DOWN))
    for _ in range(1000):
        c.update(0.0)
    assert c.scale == pytest.approx(S_MIN) and c.error == pytest.approx(-1.0)
    for _ in range(1000):
        c.update(10.0)
    assert c.scale == pytest.approx(S_MAX) and c.error == pytest.approx(1.0)


def test_state_round_trip_and_pass_record() -> None:
    c = CostController(1.0, step=0.2)
    c.update(1.5)
    c.update(2.0)
    rec = c.record({"rgb": 0.15, "audio": 0.0075})
    s = math.exp(0.2 * 0.5 + 0.2 * (0.5 + ALPHA * 0.5))
    assert rec["scale"] == pytest.approx(s) and rec["target_gflops"] == 1.0
    assert rec["lambda"] == pytest.approx({"rgb": 0.15 * s, "audio": 0.0075 * s})
    assert rec["gflops"] == pytest.approx(1.75)
    assert "gflops" not in c.record({"rgb": 1.0})  # a pass without policy batches
    d = CostController(1.0, step=0.2)
    d.load_state_dict(c.state_dict())
    assert (d.scale, d.error, d.updates) == (c.scale, c.error, c.updates)
    for g in (0.5, 0.2, 3.0):
        assert d.update(g) == c.update(g)


def test_batch_cost_prices_the_expected_decisions_at_eval_segments() -> None:
    table = CostTable({"rgb": 1.0, "audio": 0.1}, {"rgb": 0.01}, 0.0)
    # (skip, use) logits: use probabilities sigmoid(use - skip)
    logits = torch.tensor(
        [
            [[[0.0, 1.0], [0.0, 2.0]], [[1.0, 1.0], [-1.0, 3.0]]],
            [[[2.0, 0.0], [5.0, 0.0]], [[2.0, 1.0], [0.3, 0.2]]],
        ]
    )  # (B=2, S=2, M=2, 2)
    p = torch.sigmoid(logits[..., 1] - logits[..., 0])
    model = SimpleNamespace(cost_table=table)
    sampled = torch.ones(2, 2, 2)  # what was sampled does not matter
    out = SimpleNamespace(policy_logits=logits, decisions=sampled, gflops=torch.zeros(2))
    per_batch = float((p * torch.tensor([1.0, 0.1])).sum()) + 2 * 2 * 0.01
    assert batch_cost(out, model, segments=2) == pytest.approx(per_batch)
    assert batch_cost(out, model, segments=10) == pytest.approx(per_batch * 5)
    # no cost table or logits: the sampled decisions' out.gflops
    plain = SimpleNamespace(policy_logits=None, decisions=sampled, gflops=torch.tensor([3.0, 1.0]))
    assert batch_cost(plain, SimpleNamespace(), segments=4) == pytest.approx(8.0)


def test_calibration_maps_training_cost_to_validation_cost() -> None:
    c = CostController(1.0, step=0.1)
    assert c.calibrate(2.0) is None  # no policy pass recorded yet
    c.update(1.5)
    c.update(2.5)
    c.record({"rgb": 1.0})  # the pass measured 2.0 on average, validation sees 1.0
    r = c.calibrate(1.0)
    assert r == pytest.approx(0.5**R_GAIN)  # part of the way from 1 to 0.5
    assert c.calibrate(1.0) is None  # one calibration per policy pass
    c.update(1.0 / r)  # on target once calibrated: the smoothed error decays toward 0
    assert c.error == pytest.approx((1 - ALPHA) * (0.5 + ALPHA * 0.5))
    c.record({"rgb": 1.0})
    assert c.calibrate(100.0) == pytest.approx(R_MAX)  # clipped


def test_check_target_names_the_reachable_range() -> None:
    model = SimpleNamespace(cost_table=CostTable({"rgb": 1.0, "audio": 0.1}, {"rgb": 0.05}, 0.0))
    check_target(5.0, model, 10, has_policy=True)
    with pytest.raises(ConfigError, match=r"not below the cost .* \(11\.5 GFLOPs"):
        check_target(12.0, model, 10, has_policy=True)
    with pytest.raises(ConfigError, match=r"not above the policy's own cost \(0\.5 GFLOPs"):
        check_target(0.4, model, 10, has_policy=True)
    with pytest.raises(ConfigError, match="learned policy"):
        check_target(5.0, model, 10, has_policy=False)


@pytest.mark.parametrize(
    "loss, match",
    [
        ({"target_gflops": 0}, "loss.target_gflops"),
        ({"target_gflops": -1.0}, "loss.target_gflops"),
        ({"target_gflops": float("nan")}, "loss.target_gflops"),
        ({"target_step": 0}, "loss.target_step"),
        ({"penalty": "squared"}, "loss.penalty"),
    ],
)
def test_config_rejects_bad_budget_keys(loss, match) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig.from_dict(merged(loss=loss))


def test_trainer_refuses_a_target_without_a_learned_policy(tmp_path: Path) -> None:
    cfg = TrainConfig.from_dict(merged(loss={"target_gflops": 1.0}, model_args={"learned": False}))
    with pytest.raises(ConfigError, match="learned policy"):
        Trainer(cfg, tmp_path / "run", show_progress=False)
    zero = merged(loss={"target_gflops": 1.0, "cost_weights": {"rgb": 0.0, "audio": 0.0}})
    with pytest.raises(ConfigError, match="all 0"):
        Trainer(TrainConfig.from_dict(zero), tmp_path / "run", show_progress=False)


def _run(out: Path, **over) -> dict:
    cfg = TrainConfig.from_dict(merged(**over))
    return Trainer(cfg, out, show_progress=False, resume=(out / "last.pt").exists()).run()


BUDGET = {"loss": {"target_gflops": 0.5, "target_step": 0.2, "target_calibrate": False}}


def test_scale_is_logged_checkpointed_and_resumed_exactly(tmp_path: Path, monkeypatch) -> None:
    ref = tmp_path / "ref"
    metrics = _run(ref, **BUDGET)
    records = [json.loads(x) for x in (ref / "log.jsonl").read_text().splitlines()]
    scales = [r["budget"]["scale"] for r in records]
    policy = [r for r in records if r["phase"] == "policy"]
    assert scales[0] == 1.0 and all("gflops" in r["budget"] for r in policy)
    assert all("gflops" not in r["budget"] for r in records if r["phase"] != "policy")
    assert len(set(scales)) > 1  # the policy passes moved it; the others keep it
    header = (ref / "log.csv").read_text().splitlines()[0]
    for col in ("budget/scale", "budget/lambda/rgb", "budget/gflops", "budget/calibration"):
        assert col in header
    assert metrics["budget"]["scale"] == scales[-1] and metrics["budget"]["target_gflops"] == 0.5
    state = load_checkpoint(ref / "last.pt")["budget"]
    assert state["log_scale"] == pytest.approx(math.log(scales[-1]))

    # stop right after the checkpoint of the first joint policy pass, then resume
    calls = {"n": 0}
    real = trainer_mod.barrier

    def stop_after(info) -> None:
        calls["n"] += 1
        real(info)
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "barrier", stop_after)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _run(out, **BUDGET)
    monkeypatch.setattr(trainer_mod, "barrier", real)
    assert load_checkpoint(out / "last.pt")["budget"]["updates"] > 0
    _run(out, **BUDGET)
    assert (out / "metrics.json").read_text() == (ref / "metrics.json").read_text()
    assert (out / "log.jsonl").read_text() == (ref / "log.jsonl").read_text()


def test_without_a_target_nothing_changes(tmp_path: Path) -> None:
    _run(tmp_path / "plain")
    records = [json.loads(x) for x in (tmp_path / "plain" / "log.jsonl").read_text().splitlines()]
    assert not any("budget" in r for r in records)
    assert load_checkpoint(tmp_path / "plain" / "last.pt")["budget"] is None


def _policy_records(out: Path) -> list[dict]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["phase"] == "policy"]


def test_two_targets_order_the_cost_and_move_the_scale(tmp_path: Path) -> None:
    # the stand-in costs 3.18 per video with everything on (3 segments), 0.03 with nothing
    runs = {}
    for target in (0.5, 2.8):
        _run(
            tmp_path / str(target),
            policy_lr=0.01,
            data={"train": "synthetic:48"},
            schedule={"warmup_epochs": 1, "joint_epochs": 5, "finetune_epochs": 0},
            loss={"target_gflops": target, "target_step": 0.2, "target_calibrate": False},
        )
        runs[target] = _policy_records(tmp_path / str(target))
    low, high = runs[0.5], runs[2.8]
    # the first policy pass costs about 1.7 for both: over the low target, under the high one
    assert low[0]["budget"]["scale"] > 1.0 > high[0]["budget"]["scale"]
    assert max(r["budget"]["scale"] for r in low) > 3 * max(r["budget"]["scale"] for r in high)
    for r_low, r_high in list(zip(low, high))[2:]:
        assert r_low["budget"]["gflops"] < 0.5 * r_high["budget"]["gflops"]
        assert r_low["val"]["gflops"] < r_high["val"]["gflops"]


def test_stages_and_baselines_without_a_policy_drop_the_target() -> None:
    import adamml
    from adamml.engine.recipe import pretraining_plan
    from adamml.experiments.compare import derived_config

    raw = {
        "model": "test_adamml_rgb_audio",
        "num_classes": 3,
        "data": {"train": "synthetic:12"},
        "loss": {"target_gflops": 0.02, "cost_scale": 0.2},
    }
    cfg = TrainConfig.from_dict(raw)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    stages = pretraining_plan(cfg, model)
    assert stages and all(s.config.loss.target_gflops is None for s in stages)
    assert all(s.config.loss.cost_scale == 0.2 for s in stages)
    for method in ("fusion", "random"):
        loss = derived_config(raw, method)["loss"]
        assert "target_gflops" not in loss and loss["cost_scale"] == 0.2
    assert derived_config(raw, "adamml")["loss"]["target_gflops"] == 0.02


def test_a_run_with_a_target_ends_calibrated_on_it(tmp_path: Path) -> None:
    """``loss.target_calibrate`` (the default): the final model's thresholds are calibrated on
    the validation videos, so two targets each land within 10 % there, whatever the controller
    reached; ``calibrated.pt`` holds the thresholds and ``metrics.json`` both costs."""
    import adamml
    from adamml.engine.calibrate import fusion_gflops
    from adamml.engine.distributed import DistInfo
    from adamml.engine.evaluate import evaluate, load_for_evaluation
    from adamml.engine.metrics import summarize

    model = adamml.create_model("test_adamml_rgb_audio", num_classes=3)
    fusion = fusion_gflops(model, 4)
    val = "syntheticav:16,split=val"
    got = {}
    for share in (0.3, 0.6):
        out = tmp_path / str(share)
        cfg = TrainConfig.from_dict(
            {
                "model": "test_adamml_rgb_audio",
                "num_classes": 3,
                "data": {
                    "train": "syntheticav:24",
                    "val": val,
                    "segments_train": 2,
                    "segments_eval": 4,
                },
                "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 0},
                "batch_size": 8,
                "pretrain": "none",
                "seed": 0,
                "loss": {"target_gflops": share * fusion},
            }
        )
        metrics = Trainer(cfg, out, show_progress=False).run()
        record = metrics["budget"]["thresholds"]
        assert record["checkpoint"] == "calibrated.pt"
        assert abs(record["val_gflops"] / (share * fusion) - 1) <= 0.10, record
        # the checkpoint evaluates to the same validation cost
        net, loader = load_for_evaluation(out / "calibrated.pt", val, segments=4, seed=0)
        again = summarize(evaluate(net, loader, DistInfo()))
        assert again["gflops"] == pytest.approx(record["val_gflops"], rel=1e-6)
        assert net.policy.threshold_dict() == pytest.approx(record["thresholds"])
        got[share] = record["val_gflops"]
    assert got[0.3] < got[0.6]


def test_a_policy_without_thresholds_warns_and_keeps_the_controllers_cost(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="target_calibrate: calibration needs a learned policy"):
        metrics = _run(tmp_path / "run", loss={"target_gflops": 0.5, "target_step": 0.2})
    assert "thresholds" not in metrics["budget"]
    assert not (tmp_path / "run" / "calibrated.pt").exists()
