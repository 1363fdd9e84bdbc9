"""A run killed (SIGKILL) in any stage of the recipe and resumed ends like an uninterrupted one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CONFIG = {
    "model": "test_adamml_rgb_audio",
    "num_classes": 3,
    "data": {
        "train": "synthetic:12",
        "val": "synthetic:6",
        "segments_train": 2,
        "segments_eval": 2,
    },
    "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
    "pretrain": {"epochs": 2},
    "batch_size": 6,
    "seed": 0,
    "keep_checkpoints": 10,
}


FAULTY = Path(__file__).with_name("faulty_adamml.py")


def _train(
    config: Path, out: Path, *, resume: bool = False, kill_at: int | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    launcher = ["-m", "adamml"] if kill_at is None else [str(FAULTY), str(kill_at)]
    # kill_at=0: an uninterrupted run that lists its file writes (see faulty_adamml.py)
    cmd = [
        sys.executable,
        *launcher,
        "train",
        "--quiet",
        "--config",
        str(config),
        "--out",
        str(out),
    ] + (["--resume"] if resume else [])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _comparable(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    for stage in metrics.get("pretrain", {}).values():
        stage.pop("folder")  # the run folders differ, nothing else may
    return metrics


@pytest.mark.slow
def test_kill_in_any_stage_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    ref = tmp_path / "ref"
    done = _train(config, ref, kill_at=0)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _comparable(ref)
    assert set(expected["pretrain"]) == {"rgb", "audio", "policy.rgb"}
    # every atomic file write counts; kill at the second write of the first stage (rgb), of the
    # second (audio) and of the main run (warm-up, joint, fine-tune), as the reference wrote them
    writes = [
        Path(line[len("adamml-write:") :])
        for line in done.stderr.splitlines()
        if line.startswith("adamml-write:")
    ]
    where: dict[int, str] = {}
    for stage, folder in (
        ("rgb", ref / "pretrain" / "rgb"),
        ("audio", ref / "pretrain" / "audio"),
        ("main", ref),
    ):
        inside = [i for i, w in enumerate(writes, 1) if w.parent == folder]
        assert len(inside) >= 2, (stage, writes)
        where[inside[1]] = stage
    for n, stage in where.items():
        out = tmp_path / f"killed{n}"
        killed = _train(config, out, kill_at=n)
        assert killed.returncode == -9, killed.stderr[-2000:]
        finished = [
            s
            for s in ("rgb", "audio", "policy.rgb")
            if (out / "pretrain" / s / "metrics.json").exists()
        ]
        if stage == "main":
            assert len(finished) == 3 and (out / "last.pt").exists()
        else:
            assert stage not in finished and (out / "pretrain" / stage).exists()
        assert not (out / "metrics.json").exists()
        resumed = _train(config, out, resume=True)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _comparable(out) == expected, n
