"""A progress bar shows a run; it does not change it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import merged

from adamml.engine import TrainConfig, Trainer


def _train(out: Path, show_progress: bool) -> list[dict]:
    cfg = TrainConfig.from_dict(
        merged(model="test_adamml_rgb_audio", workers=1, schedule={"joint_epochs": 1})
    )
    Trainer(cfg, out, show_progress=show_progress).run()
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_a_progress_bar_does_not_change_training(tmp_path: Path, monkeypatch) -> None:
    """tqdm.auto's class (tqdm's asyncio one) called iter() on the DataLoader in its
    constructor: a second loader iterator per pass, its workers started twice and one more
    draw from the global RNG, so the same config trained differently with and without bars."""
    from torch.utils.data import DataLoader

    started = []
    original = DataLoader.__iter__

    def counting_iter(self):
        started.append(self)
        return original(self)

    monkeypatch.setattr(DataLoader, "__iter__", counting_iter)
    with_bars = _train(tmp_path / "bars", show_progress=True)
    iterators_with_bars = len(started)
    started.clear()
    torch.manual_seed(123)  # the global RNG's state before a run must not matter either
    without = _train(tmp_path / "plain", show_progress=False)
    assert iterators_with_bars == len(started)  # one loader iterator per pass, bars or not
    assert with_bars == without  # every pass's record, losses and rates included
