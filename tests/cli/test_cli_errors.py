"""Mistakes a new user made, each answered by one typed line that says what to do.

Every case runs the CLI and checks: a non-zero status, one ``adamml: error:`` line naming the
file and the fix, and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import adamml
from adamml.cli import main
from adamml.engine.checkpoint import FORMAT

CONFIG = {
    "model": "test_unimodal_rgb",
    "num_classes": 2,
    "data": {"train": "data/train.csv", "segments_train": 2, "segments_eval": 2},
    "schedule": {"warmup_epochs": 1, "joint_epochs": 0, "finetune_epochs": 0},
    "batch_size": 2,
    "seed": 0,
    "pretrain": "none",
}


def _manifest(folder: Path, classes: list[str]) -> Path:
    """A manifest whose rows use every class (the videos are never opened: the class check
    comes first)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    rows = "".join(f"v{i}.mp4,{c}\n" for i, c in enumerate(classes))
    path = folder / "train.csv"
    path.write_text("path,label\n" + rows)
    return path


def _config(tmp_path: Path, **over) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **over}))
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "adamml", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _one_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("adamml: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _checkpoint(path: Path, num_classes: int = 2, name: str = "test_unimodal_rgb") -> Path:
    model = adamml.create_model(name, num_classes=num_classes)
    torch.save(
        {
            "format": FORMAT,
            "model_name": name,
            "num_classes": num_classes,
            "model": model.state_dict(),
        },
        path,
    )
    return path


def test_train_with_more_classes_in_the_manifest_than_num_classes(tmp_path: Path) -> None:
    _manifest(tmp_path / "data", ["a", "b", "c"])
    done = _run(
        ["train", "--quiet", "--config", str(_config(tmp_path)), "--out", str(tmp_path / "run")]
    )
    assert done.returncode != 0
    _one_line(
        done.stderr,
        "ManifestError",
        "train.csv",
        "has 3 classes",
        "num_classes=2",
        "set num_classes: 3",
    )


def test_train_with_num_classes_larger_than_classes_txt(tmp_path: Path, capsys) -> None:
    _manifest(tmp_path / "data", ["a", "b"])
    config = _config(tmp_path, num_classes=5)
    assert main(["train", "--quiet", "--config", str(config), "--out", str(tmp_path / "run")]) != 0
    _one_line(capsys.readouterr().err, "has 2 classes", "num_classes=5", "set num_classes: 2")


def test_eval_on_a_manifest_with_other_classes_than_the_checkpoint(tmp_path: Path, capsys) -> None:
    manifest = _manifest(tmp_path / "data", ["a", "b", "c"])
    ckpt = _checkpoint(tmp_path / "best.pt", num_classes=2)
    assert (
        main(
            [
                "eval",
                "--quiet",
                "--checkpoint",
                str(ckpt),
                "--data",
                str(manifest),
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        != 0
    )
    _one_line(capsys.readouterr().err, "train.csv", "has 3 classes", "num_classes=2")


def test_a_pickled_whole_model_as_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(adamml.create_model("test_unimodal_rgb", num_classes=2), path)
    done = _run(["eval", "--checkpoint", str(path), "--data", "synthetic:2"])
    assert done.returncode != 0
    line = _one_line(done.stderr, "model.pt", "whole model", "state_dict()")
    assert "\x1b[" not in line and "weights_only=False" not in line


def test_metrics_json_as_checkpoint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"top1": 50.0}))
    assert main(["eval", "--checkpoint", str(path), "--data", "synthetic:2"]) != 0
    line = _one_line(capsys.readouterr().err, "metrics.json", "is a JSON file", "best.pt")
    assert "weights_only" not in line


def test_a_plain_state_dict_as_checkpoint(tmp_path: Path, capsys) -> None:
    path = tmp_path / "weights.pt"
    torch.save(adamml.create_model("test_unimodal_rgb", num_classes=2).state_dict(), path)
    assert main(["predict", "--checkpoint", str(path), str(tmp_path / "v.mp4")]) != 0
    _one_line(capsys.readouterr().err, "weights.pt", "plain state dict", "adamml train")


def test_init_from_another_model(tmp_path: Path, capsys) -> None:
    other = _checkpoint(tmp_path / "audio.pt", name="test_unimodal_audio")
    config = _config(
        tmp_path,
        data={"train": "synthetic:4", "segments_train": 2, "segments_eval": 2},
        init={"rgb": str(other)},
    )
    assert main(["train", "--quiet", "--config", str(config), "--out", str(tmp_path / "run")]) != 0
    _one_line(capsys.readouterr().err, "audio.pt", "from another model", "'rgb'")


@pytest.mark.parametrize(
    "inputs, needles",
    [
        ([torch.zeros(1)], ("ShapeError", "must be a dict", "got a list")),
        ("numpy", ("ShapeError", "numpy.ndarray", "torch.from_numpy")),
    ],
)
def test_model_inputs_that_are_not_tensors(inputs, needles) -> None:
    import numpy as np

    model = adamml.create_model("test_unimodal_rgb", num_classes=2).eval()
    if inputs == "numpy":
        inputs = {"rgb": np.zeros((1, 2, *model.input_spec["rgb"].shape), dtype="float32")}
    with pytest.raises(adamml.AdamMLError) as info:
        model(inputs)
    text = f"{type(info.value).__name__}: {info.value}"
    assert all(n in text for n in needles), text


def test_an_extra_modality_in_the_inputs_warns() -> None:
    model = adamml.create_model("test_unimodal_rgb", num_classes=2).eval()
    x = {m: torch.zeros(1, 2, *s.shape) for m, s in model.input_spec.items()}
    x["audio"] = torch.zeros(1, 2, 1, 1, 32, 32)
    with pytest.warns(UserWarning, match=r"\['audio'\], which this model does not use"):
        model(x)
    with pytest.raises(adamml.UnknownModalityError, match="did you mean 'rgb'"):
        model({**x, "rbg": x["rgb"]})
