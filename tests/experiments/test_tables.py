"""The paper-table harness (adamml.experiments.tables): rows run through the experiments'
one runner, finished rows are reused, a folder holding another config is refused."""

from __future__ import annotations

import pytest

from adamml.experiments.tables import Run, run_rows

RAW = {
    "model": "test_unimodal_rgb",
    "num_classes": 2,
    "data": {"train": "synthetic:8", "val": "synthetic:4", "segments_train": 2, "segments_eval": 2},
    "schedule": {"epochs": 1},
    "batch_size": 4,
    "pretrain": "none",
    "seed": 0,
}


def test_rows_run_once_and_are_reused(tmp_path, capsys) -> None:
    rows = [Run("unimodal_rgb", "RGB", "unimodal_rgb")]
    first = run_rows(rows, {"unimodal_rgb": RAW}, tmp_path, quiet=True)
    assert first["unimodal_rgb"]["num_videos"] == 4
    again = run_rows(rows, {"unimodal_rgb": RAW}, tmp_path, quiet=True)
    assert again == first and "reused" in capsys.readouterr().out
    other = {**RAW, "seed": 1}
    with pytest.raises(SystemExit, match="another config"):
        run_rows(rows, {"unimodal_rgb": other}, tmp_path, quiet=True)
