"""What several CLI tests share: a tiny model trained by ``adamml train`` on SyntheticAV mp4s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adamml.cli import main


def train_on_mp4(root: Path, model: str, cost_weights: dict[str, float], **extra: Any) -> Path:
    """Write 8 training and 4 validation SyntheticAV mp4s under ``root/data``, train ``model``
    through every stage (one epoch each, the recipe's pre-training stages included, 2 training /
    3 validation segments; ``extra`` config keys added) into ``root/run`` and return that
    folder."""
    from adamml.data.synthetic import write_synthetic_av

    train_csv = write_synthetic_av(root / "data", 8, num_val=4, seed=1)
    cfg: dict[str, Any] = {
        "model": model,
        "num_classes": 6,
        "data": {
            "train": str(train_csv),
            "val": str(train_csv.parent / "val.csv"),
            "segments_train": 2,
            "segments_eval": 3,
        },
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
        "loss": {"cost_weights": cost_weights, "gamma": 10.0},
        "pretrain": {"epochs": 1},
        "batch_size": 4,
        "seed": 0,
        **extra,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = root / "run"
    assert main(["train", "--config", str(root / "config.yaml"), "--out", str(out), "--quiet"]) == 0
    return out


def eval_args(root: Path, out: Path, folder: str, segments: int = 10) -> list[str]:
    """``adamml eval`` of ``out/best.pt`` on ``root``'s validation mp4s into ``root/folder``."""
    return [
        "eval",
        "--checkpoint",
        str(out / "best.pt"),
        "--data",
        str(root / "data" / "val.csv"),
        "--segments",
        str(segments),
        "--out",
        str(root / folder),
    ]
