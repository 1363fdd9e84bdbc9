"""Checkpoints: weights_only round trip, RNG states, atomic replace, readable errors."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from adamml.engine.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from adamml.errors import CheckpointError


def test_rng_round_trip_through_weights_only(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian state in play
    save_checkpoint({"rng": rng_state(), "x": torch.ones(2)}, tmp_path, "pass_0000.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(load_checkpoint(tmp_path / "last.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_last_pointer_and_pruning(tmp_path: Path) -> None:
    for i in range(4):
        save_checkpoint({"i": i}, tmp_path, f"pass_{i:04d}.pt", keep=2)
    assert sorted(p.name for p in tmp_path.glob("pass_*.pt")) == ["pass_0002.pt", "pass_0003.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["i"] == 3
    save_checkpoint({"i": 9}, tmp_path, "best.pt", update_last=False)
    assert load_checkpoint(tmp_path)["i"] == 3  # a folder means its last.pt


def test_failed_write_never_becomes_latest(tmp_path: Path, monkeypatch) -> None:
    save_checkpoint({"i": 0}, tmp_path, "pass_0000.pt")
    real = os.replace

    def broken(src, dst):
        if str(dst).endswith("pass_0001.pt"):
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        save_checkpoint({"i": 1}, tmp_path, "pass_0001.pt")
    assert load_checkpoint(tmp_path / "last.pt")["i"] == 0
    assert not (tmp_path / "pass_0001.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_files_raise_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an adamml training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint in folder"):
        load_checkpoint(tmp_path)
