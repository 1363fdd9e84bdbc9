"""The learning issue's acceptance on the real data path: a plain config (no init) trained with
``adamml train`` on written SyntheticAV mp4 files runs the pre-training stages and ends with an
AdaMML that meets the three relations against fusion and a random policy at its cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from adamml.cli import main
from adamml.experiments.compare import derived_config


def _train(raw: dict, folder: Path, out: Path) -> dict:
    config = folder / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_plain_config_on_mp4_files_meets_the_relations(tmp_path: Path) -> None:
    from adamml.data.synthetic.writer import write_synthetic_av

    data = tmp_path / "data"
    write_synthetic_av(data, 240, num_val=144, num_test=240, num_classes=6, seed=0)
    plain = {
        "model": "test_adamml_rgb_audio",
        "num_classes": 6,
        "data": {"train": "data/train.csv", "val": "data/val.csv", "test": "data/test.csv"},
        "schedule": {"warmup_epochs": 3, "joint_epochs": 8, "finetune_epochs": 3},
        "seed": 0,
    }
    adamml = _train(plain, tmp_path, tmp_path / "adamml")
    assert set(adamml["pretrain"]) == {"rgb", "audio", "policy.rgb"}
    init = {
        part: str(Path(s["folder"]) / "best.pt")
        for s in adamml["pretrain"].values()
        for part in s["parts"]
        if not part.startswith("policy.")
    }
    fusion = _train(derived_config(plain, "fusion", init=init), tmp_path, tmp_path / "fusion")
    p = {m: r / 100.0 for m, r in adamml["selection_rate"].items()}
    random = _train(
        derived_config(plain, "random", init=init, random_p=p), tmp_path, tmp_path / "random"
    )
    assert adamml["top1"] >= fusion["top1"] - 2.0
    assert adamml["gflops"] <= 0.6 * fusion["gflops"]
    assert adamml["top1"] >= random["top1"] + 5.0
