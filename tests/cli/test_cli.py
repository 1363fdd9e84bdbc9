"""The CLI: train/eval/predict/list in-process, one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adamml.cli import main

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))

CONFIG = {
    "model": "standin:make_model",
    "num_classes": 3,
    "data": {
        "train": "synthetic:12",
        "val": "synthetic:6",
        "segments_train": 2,
        "segments_eval": 3,
    },
    "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
    "batch_size": 6,
    "lr": 0.05,
    "seed": 0,
    "pretrain": "none",
}


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(out),
                "--quiet",
                "schedule.finetune_epochs=0",
            ]
        )
        == 0
    )
    return out


def test_train_eval_twice_identical_and_predict(trained: Path, tmp_path: Path, capsys) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {"top1", "top5", "mAP", "selection_rate", "gflops", "num_videos"} <= set(metrics)
    outs = []
    for i in range(2):
        assert (
            main(
                [
                    "eval",
                    "--checkpoint",
                    str(trained / "best.pt"),
                    "--data",
                    "synthetic:6",
                    "--segments",
                    "3",
                    "--out",
                    str(tmp_path / f"e{i}"),
                    "--quiet",
                ]
            )
            == 0
        )
        outs.append((tmp_path / f"e{i}" / "metrics.json").read_text())
    assert outs[0] == outs[1]
    fig = tmp_path / "d.png"
    assert (
        main(
            [
                "predict",
                "synthetic:2,index=1",
                "--checkpoint",
                str(trained / "last.pt"),
                "--segments",
                "3",
                "--topk",
                "2",
                "--figure",
                str(fig),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "segment 3:" in text and "2. " in text and fig.stat().st_size > 1000


@pytest.mark.parametrize(
    "what, expected",
    [
        ("models", "adamml_rgb_audio"),
        ("modalities", "rgb"),
        ("backbones", "resnet50_tsn"),
        ("policies", "lstm"),
        ("fusions", "learnable"),
        ("sources", "manifest"),
    ],
)
def test_every_list_names_its_builtins(what: str, expected: str, capsys) -> None:
    assert main(["list", what]) == 0
    assert expected in capsys.readouterr().out.split()


def test_list_without_a_kind_lists_the_models(capsys) -> None:
    assert main(["list"]) == 0
    assert "test_adamml_rgb_audio" in capsys.readouterr().out.split()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--config", "/nonexistent.yaml"], "does not exist"),
        (["eval", "--checkpoint", "/nonexistent.pt", "--data", "synthetic:2"], "does not exist"),
        (["predict", "x.mp4", "--checkpoint", "/nonexistent.pt"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_without_traceback(argv, match, capsys) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if match:
        assert match in err


def test_bad_override_and_module_entry_point(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "adamml",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "o"),
            "lr=-1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("adamml: error: ConfigError:")


def test_demo_calls_run_demo(monkeypatch, tmp_path: Path) -> None:
    import adamml.experiments.demo as demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda out, **kw: seen.append(out) or {})
    assert main(["demo", "--out", str(tmp_path)]) == 0 and seen == [str(tmp_path)]
