"""End to end on real files: SyntheticAV written as mp4 + AAC with a manifest, the tiny AdaMML
trained through every stage by ``adamml train``, evaluated twice by ``adamml eval`` and used by
``adamml predict`` on an mp4 file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mp4_helpers import eval_args, train_on_mp4

from adamml.cli import main

KEYS = {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mp4run")
    return root, train_on_mp4(root, "test_adamml_rgb_audio", {"rgb": 1.0, "audio": 0.05})


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
        assert main(eval_args(root, out, f"eval{i}")) == 0
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
