"""The paper-table harness (adamml.experiments.tables): rows run through the experiments'
one runner, finished rows are reused, a folder holding another config is refused."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_rows_side_by_side_wait_for_their_starts_and_equal_one_thread_runs(
    tmp_path, monkeypatch
) -> None:
    """``jobs=2``: a row initialised from another waits for it (the workers get the rows'
    needs), in one-thread workers, with the numbers of a one-thread run of the same rows."""
    import torch

    from adamml.engine import workers

    calls: list[tuple[list[str], dict]] = []
    real = workers.run_in_workers

    def spy(tasks, jobs, after):
        calls.append(([name for name, _ in tasks], after))
        return real(tasks, jobs, after=after)

    monkeypatch.setattr(workers, "run_in_workers", spy)
    rows = [
        Run("a", "A", "unimodal_rgb"),
        Run("b", "B", "unimodal_rgb"),
        Run("c", "C", "unimodal_rgb", init={"rgb": "a"}),
        Run("d", "D", "unimodal_rgb", init={"rgb": "c/pretrain/x"}),  # a folder in c's run
    ]
    configs = {
        "a": RAW,
        "b": {**RAW, "seed": 1},
        "c": {**RAW, "init": {"rgb": str(tmp_path / "two" / "a" / "best.pt")}},
        "d": {**RAW, "seed": 2},
    }
    two = run_rows(rows, configs, tmp_path / "two", quiet=True, jobs=2)
    # d starts from a folder in c's pre-training stages: they run as a task of their own
    pre = "pretraining stages of c"
    assert calls == [
        (
            [pre, "a", "b", "c", "d"],
            {pre: set(), "a": set(), "b": set(), "c": {"a", pre}, "d": {pre}},
        )
    ]
    assert list(two) == ["a", "b", "c", "d"]
    assert (tmp_path / "two" / "c" / "metrics.json").is_file()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        configs["c"] = {**RAW, "init": {"rgb": str(tmp_path / "one" / "a" / "best.pt")}}
        one = run_rows(rows, configs, tmp_path / "one", quiet=True)
    finally:
        torch.set_num_threads(threads)
    for key in one:
        assert {k: two[key][k] for k in ("top1", "mAP", "gflops")} == {
            k: one[key][k] for k in ("top1", "mAP", "gflops")
        }, key
    with pytest.raises(
        ValueError, match=r"rows wait for rows that are not in the table: {.d.: \[.x.\]}"
    ):
        run_rows([Run("d", "D", "unimodal_rgb", init={"rgb": "x"})], {"d": RAW}, tmp_path, jobs=2)


def test_a_table_shares_its_synthetic_inputs_on_disk_and_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adamml.data.synthetic.source import DISK_CACHE_ENV
    from adamml.experiments.tables import shared_synthetic_inputs

    monkeypatch.delenv(DISK_CACHE_ENV, raising=False)
    folder = tmp_path / ".syntheticav-cache"
    with shared_synthetic_inputs(folder):
        assert os.environ[DISK_CACHE_ENV] == str(folder)
        folder.mkdir(parents=True)
    assert DISK_CACHE_ENV not in os.environ and not folder.exists()
    with pytest.raises(RuntimeError), shared_synthetic_inputs(folder):  # a failed table:
        folder.mkdir(parents=True)
        raise RuntimeError("a row failed")
    assert folder.exists() and DISK_CACHE_ENV not in os.environ  # kept for the rerun
    monkeypatch.setenv(DISK_CACHE_ENV, str(tmp_path / "mine"))  # the user's folder wins
    with shared_synthetic_inputs(folder):
        assert os.environ[DISK_CACHE_ENV] == str(tmp_path / "mine")


def test_rows_with_stages_of_their_own_run_them_as_an_early_task() -> None:
    """An AdaMML row started from unimodal rows still pre-trains its policy's extractors; those
    stages need no other row, so they run as a task of their own while the unimodal rows
    train (Table 7's mini: 563 s -> see docs/examples.md), not after them."""
    from adamml.experiments.tables import _has_stages

    base = {k: v for k, v in RAW.items() if k not in ("model", "pretrain")}  # a whole config
    init = {"rgb": "u/rgb/best.pt", "audio": "u/audio/best.pt"}
    adamml = Run("a", "A", "adamml_rgb_audio", init={"rgb": "u_rgb", "audio": "u_audio"})
    raw = {**base, "model": "test_adamml_rgb_audio", "init": init}
    assert _has_stages(adamml, raw)
    every = {**init, "policy.rgb": "p.pt", "policy.audio": "q.pt"}
    assert not _has_stages(adamml, {**raw, "init": every})
    assert not _has_stages(adamml, {**raw, "pretrain": "none"})
    assert not _has_stages(adamml, {**raw, "pretrain": {"mode": "none"}})
    assert not _has_stages(adamml, {**raw, "pretrain": {"policy": False}})  # extractors as built
    fusion = Run("f", "F", "fusion_rgb_audio", init={"rgb": "u_rgb", "audio": "u_audio"})
    assert not _has_stages(fusion, {**base, "model": "test_fusion_rgb_audio", "init": init})
    assert _has_stages(fusion, {**base, "model": "test_fusion_rgb_audio"})  # no init: stages
    unimodal = {**base, "model": "test_unimodal_rgb"}
    assert not _has_stages(Run("u", "U", "unimodal_rgb"), unimodal)
