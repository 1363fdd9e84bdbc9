"""LiteEval end to end: ``adamml train`` on SyntheticAV mp4s through the engine's stages
(warm-up, joint with the efficiency loss on its gate, fine-tune), then ``adamml eval`` at 10
segments: top-1, mAP and GFLOPs, the fine path charged only where the gate chose it."""

from __future__ import annotations

import json

import pytest
from mp4_helpers import eval_args, train_on_mp4

from adamml.cli import main

KEYS = {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("liteeval")
    # the recipe's pre-training of both parts runs, one epoch each
    out = train_on_mp4(root, "test_liteeval_rgb", {"rgb": 1.0})
    return root, out


def test_train_runs_every_stage_and_reports_top1_map_gflops(run) -> None:
    _, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert KEYS <= set(metrics)
    assert set(metrics["selection_rate"]) == {"rgb"}
    stages = {json.loads(line)["stage"] for line in (out / "log.jsonl").read_text().splitlines()}
    assert {"warmup", "joint", "finetune"} <= stages
    assert set(metrics["pretrain"]) == {"rgb", "policy.rgb"}


def test_eval_charges_the_fine_path_only_where_it_ran(run) -> None:
    import adamml
    from adamml.engine.instantiate import model_from_checkpoint

    root, out = run
    assert main(eval_args(root, out, "eval")) == 0
    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    assert KEYS <= set(metrics) and metrics["num_videos"] == 4
    model, _ = model_from_checkpoint(out / "best.pt")
    assert isinstance(model, adamml.LiteEval)
    table = model.cost_table
    rate = metrics["selection_rate"]["rgb"] / 100
    expected = 10 * (table.policy_total + rate * table.recognition["rgb"])
    assert metrics["gflops"] == pytest.approx(expected, rel=1e-3)


def test_predict_prints_the_gate_per_segment(run, capsys) -> None:
    root, out = run
    video = sorted((root / "data").glob("videos/val/*.mp4"))[0]
    assert main(["predict", str(video), "--checkpoint", str(out / "best.pt")]) == 0
    printed = capsys.readouterr().out
    assert all(f"segment {i}:" in printed for i in range(1, 11))
