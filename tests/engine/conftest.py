"""Engine fixtures: the stand-in model on sys.path and a config writer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

BASE: dict[str, Any] = {
    "model": "standin:make_model",
    "num_classes": 3,
    "data": {
        "train": "synthetic:24",
        "val": "synthetic:12",
        "segments_train": 2,
        "segments_eval": 3,
    },
    "schedule": {"warmup_epochs": 1, "joint_epochs": 2, "finetune_epochs": 1},
    "batch_size": 6,
    "lr": 0.05,
    "seed": 0,
    # the engine tests pin the reference's schedule choices rather than the library defaults
    "optimizer": "sgd",
    "lr_schedule": "multistep",
    "tau_decay": 0.965,
    "finetune_from": "best",
    "pretrain": "none",
}


def merged(**over: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced and sections updated."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


@pytest.fixture
def write_config(tmp_path: Path):
    def write(**over: Any) -> Path:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(merged(**over)))
        return path

    return write


@pytest.fixture
def standin_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for subprocesses that import ``standin``."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env
