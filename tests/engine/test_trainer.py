"""Trainer end to end on the stand-in model: logs, metrics, warm-up policy, fine-tune restart,
init from unimodal checkpoints, NaN guard, deterministic evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import merged

from adamml.engine import TrainConfig, Trainer
from adamml.engine import trainer as trainer_mod
from adamml.engine.checkpoint import load_checkpoint
from adamml.engine.runlog import NonFiniteLossError
from adamml.errors import CheckpointError, ConfigError

KEYS = {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}


def run(tmp_path: Path, name: str = "run", **over) -> tuple[dict, Path]:
    out = tmp_path / name
    metrics = Trainer(TrainConfig.from_dict(merged(**over)), out, show_progress=False).run()
    return metrics, out


def test_full_schedule_writes_everything(tmp_path: Path) -> None:
    metrics, out = run(tmp_path)
    assert KEYS <= set(metrics) and metrics["num_videos"] == 12
    assert json.loads((out / "metrics.json").read_text())["top1"] == metrics["top1"]
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["pass"] for r in records] == list(range(6))
    joint = [r for r in records if r["stage"] == "joint" and "tau" in r]
    assert [round(r["tau"], 6) for r in joint] == [round(5 * 0.965, 6), round(5 * 0.965**2, 6)]
    assert all(r["train"]["eff"] == 0 for r in records if r["phase"] == "recognition")
    assert all(r["train"]["eff"] > 0 for r in records if r["phase"] == "policy")
    header = (out / "log.csv").read_text().splitlines()[0]
    for col in (
        "train/loss",
        "val/top1",
        "val/mAP",
        "val/selection_rate/rgb",
        "val/gflops",
        "tau",
        "lr/recognition",
        "lr/policy",
    ):
        assert col in header
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert {"best.pt", "best_joint.pt", "last.pt", "decisions.npz"} <= {
        p.name for p in out.iterdir()
    }
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["model_name"] == "standin:make_model" and ckpt["num_classes"] == 3
    assert any(k.endswith("gate.tau") for k in ckpt["model"])  # temperature is a buffer


def test_warmup_all_forces_every_modality(tmp_path: Path) -> None:
    _, out = run(tmp_path, warmup_policy="all", schedule={"joint_epochs": 0, "finetune_epochs": 0})
    rec = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert rec["train"]["selection_rate"] == {"rgb": 100.0, "audio": 100.0}


def test_alternation_per_iteration(tmp_path: Path) -> None:
    metrics, out = run(tmp_path, alternation="iteration")
    assert KEYS <= set(metrics)


def test_finetune_surfaces_a_broken_best_checkpoint(tmp_path: Path, monkeypatch) -> None:
    real = Trainer._start_stage

    def corrupt_then_start(self, p):
        if p.stage == "finetune":
            (self.out / "best_joint.pt").write_bytes(b"broken")
        return real(self, p)

    monkeypatch.setattr(Trainer, "_start_stage", corrupt_then_start)
    with pytest.raises(CheckpointError, match="best_joint.pt"):
        run(tmp_path)


def test_finetune_from_last_continues_joint_weights_and_selects_among_finetune(
    tmp_path: Path, monkeypatch
) -> None:
    real = Trainer._start_stage
    seen = {}

    def corrupt_then_start(self, p):
        if p.stage == "finetune":
            (self.out / "best_joint.pt").write_bytes(b"broken")  # must not be read
            before = {k: v.clone() for k, v in self.model.state_dict().items()}
            real(self, p)
            after = self.model.state_dict()
            seen["same"] = all(torch.equal(before[k], after[k]) for k in before)
            return None
        return real(self, p)

    monkeypatch.setattr(Trainer, "_start_stage", corrupt_then_start)
    metrics, out = run(tmp_path, finetune_from="last", schedule={"finetune_epochs": 2})
    assert seen["same"]  # fine-tuning starts from the last joint weights
    assert load_checkpoint(out / "best.pt")["stage"] == "finetune"
    assert metrics["weights"] == "best"
    with pytest.raises(ConfigError, match="finetune_from"):
        TrainConfig.from_dict(merged(finetune_from="first"))


def test_nan_guard_names_stage_epoch_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(
        trainer_mod, "classification_loss", lambda logits, target: logits.sum() * float("nan")
    )
    with pytest.raises(NonFiniteLossError, match=r"stage 'warmup', epoch 0, step 0"):
        run(tmp_path)


def test_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    run(tmp_path, schedule={"joint_epochs": 0, "finetune_epochs": 0})
    with pytest.raises(ConfigError, match="--resume"):
        run(tmp_path, schedule={"joint_epochs": 0, "finetune_epochs": 0})


def test_init_from_unimodal_checkpoint(tmp_path: Path) -> None:
    uni = dict(
        model_args={"modalities": "rgb", "learned": False},
        schedule={"epochs": 1},
        data={"val": None},
    )
    _, out = run(tmp_path, "uni", **uni)
    src = load_checkpoint(out / "last.pt")["model"]
    cfg = TrainConfig.from_dict(merged(init={"rgb": str(out / "last.pt")}))
    t = Trainer(cfg, tmp_path / "multi", show_progress=False)
    got = t.model.router.backbones["rgb"].state_dict()
    assert all(torch.equal(got[k], src[f"router.backbones.rgb.{k}"]) for k in got)
    bad = TrainConfig.from_dict(merged(init={"flow": str(out / "last.pt")}))
    with pytest.raises(ConfigError, match="flow"):
        Trainer(bad, tmp_path / "x", show_progress=False)
