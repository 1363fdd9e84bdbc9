"""End to end on real files: SyntheticAV written as mp4 + AAC with a manifest, the tiny AdaMML
trained through every stage by ``adamml train``, evaluated twice by ``adamml eval`` and used by
``adamml predict`` on an mp4 file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adamml.cli import main

KEYS = {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    from adamml.data.synthetic import write_synthetic_av

    root = tmp_path_factory.mktemp("mp4run")
    train_csv = write_synthetic_av(root / "data", 8, num_val=4, seed=1)
    cfg = {
        "model": "test_adamml_rgb_audio",
        "num_classes": 6,
        "data": {
            "train": str(train_csv),
            "val": str(train_csv.parent / "val.csv"),
            "segments_train": 2,
            "segments_eval": 3,
        },
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
        "loss": {"cost_weights": {"rgb": 1.0, "audio": 0.05}, "gamma": 10.0},
        "batch_size": 4,
        "seed": 0,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = root / "run"
    assert main(["train", "--config", str(root / "config.yaml"), "--out", str(out), "--quiet"]) == 0
    return root, out


def test_train_writes_the_contract_metrics(run) -> None:
    _, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert KEYS <= set(metrics)
    assert set(metrics["selection_rate"]) == {"rgb", "audio"}
    assert metrics["num_videos"] == 4


def test_eval_twice_gives_the_same_metrics(run) -> None:
    root, out = run
    results = []
    for i in range(2):
        assert (
            main(
                [
                    "eval",
                    "--checkpoint",
                    str(out / "best.pt"),
                    "--data",
                    str(root / "data" / "val.csv"),
                    "--segments",
                    "10",
                    "--out",
                    str(root / f"eval{i}"),
                ]
            )
            == 0
        )
        results.append(json.loads((root / f"eval{i}" / "metrics.json").read_text()))
    assert KEYS <= set(results[0])
    assert results[0] == results[1]


def test_predict_on_an_mp4_draws_the_figure(run, capsys) -> None:
    root, out = run
    video = sorted((root / "data").glob("videos/val/*.mp4"))[0]
    figure = root / "decisions.png"
    assert (
        main(["predict", str(video), "--checkpoint", str(out / "best.pt"), "--figure", str(figure)])
        == 0
    )
    assert figure.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert all(f"segment {i}:" in printed for i in range(1, 11))  # 10 evaluation segments
