"""``adamml calibrate`` and ``adamml eval --sweep`` in-process, on a tiny checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import adamml
from adamml.cli import main
from adamml.engine.checkpoint import load_checkpoint, save_checkpoint
from adamml.engine.instantiate import model_from_checkpoint
from adamml.engine.sweep import read_run_metrics
from adamml.errors import ConfigError

DATA = ["--data", "synthetic:16", "--segments", "4", "--quiet"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    args = {"policy_args": {"init_use": None}}  # margins on both sides of 0
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=4, **args)
    folder = tmp_path_factory.mktemp("run")
    return save_checkpoint(
        {
            "model_name": "test_adamml_rgb_audio",
            "num_classes": 4,
            "model_args": args,
            "model": model.state_dict(),
            "config": {"seed": 0},
        },
        folder,
        "best.pt",
        update_last=False,
    )


def test_calibrate_writes_a_new_checkpoint_at_the_target(checkpoint: Path, capsys) -> None:
    before = checkpoint.read_bytes()
    out = checkpoint.parent / "half.pt"
    argv = ["calibrate", "--checkpoint", str(checkpoint), "--target-gflops", "50%"]
    assert main([*argv, *DATA, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "50.0 % of fusion's" in printed and f"wrote {out}" in printed
    assert checkpoint.read_bytes() == before  # the original is kept
    record = load_checkpoint(out)["calibration"]
    assert record["gflops"] == pytest.approx(0.5 * record["fusion_gflops"], rel=0.05)
    assert record["data"] == "synthetic:16" and record["source"] == str(checkpoint)
    model, _ = model_from_checkpoint(out)
    assert model.policy.threshold_dict() == pytest.approx(record["thresholds"])
    # eval reads the thresholds: the same GFLOPs on the same videos
    assert main(["eval", "--checkpoint", str(out), *DATA, "--out", str(out.parent / "ev")]) == 0
    metrics = json.loads((out.parent / "ev" / "metrics.json").read_text())
    assert metrics["gflops"] == pytest.approx(record["gflops"], rel=1e-6)


def test_calibrate_errors_are_one_line(checkpoint: Path, capsys) -> None:
    argv = ["calibrate", "--checkpoint", str(checkpoint), *DATA]
    assert main([*argv, "--target-gflops", "a lot"]) == 2
    assert "--target-gflops must be" in capsys.readouterr().err
    assert main([*argv, "--target-gflops", "50%", "--out", str(checkpoint)]) == 2
    assert "original is kept" in capsys.readouterr().err
    assert main([*argv, "--target-gflops", "0.1%"]) == 2
    assert "policy alone costs" in capsys.readouterr().err


def test_eval_sweep_writes_the_curve_and_its_csv(checkpoint: Path, tmp_path: Path) -> None:
    other = tmp_path / "lambda_0.5"
    other.mkdir()
    (other / "metrics.json").write_text(json.dumps({"gflops": 0.01, "top1": 40.0}))
    out = tmp_path / "ev"
    argv = ["eval", "--checkpoint", str(checkpoint), *DATA, "--out", str(out), "--sweep"]
    assert main([*argv, "--sweep-points", "7", "--compare", str(other)]) == 0
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert 2 <= len(rows) <= 7
    assert set(rows[0]) >= {"scale", "t_rgb", "t_audio", "gflops", "top1", "mAP"}
    gflops = [float(r["gflops"]) for r in rows]
    assert gflops == sorted(gflops) and gflops[0] < gflops[-1]


def test_compare_runs_are_read_and_named(tmp_path: Path) -> None:
    run = tmp_path / "lambda_0.5"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"gflops": 0.01, "top1": 40.0}))
    found = read_run_metrics([str(run), f"retrained={run / 'metrics.json'}"])
    assert [label for label, _ in found] == ["lambda_0.5", "retrained"]
    with pytest.raises(ConfigError, match="no metrics.json"):
        read_run_metrics([str(tmp_path / "missing")])
