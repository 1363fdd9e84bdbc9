"""`adamml.engine.workers`: independent runs in forked one-thread CPU processes."""

from __future__ import annotations

import os
import time

import pytest
import torch

from adamml.engine.workers import (
    WorkerError,
    check_jobs,
    in_background,
    in_worker,
    run_in_workers,
)
from adamml.errors import ConfigError


def _where() -> tuple[int, int, bool]:
    return os.getpid(), torch.get_num_threads(), in_worker()


def test_tasks_run_in_one_thread_workers_and_come_back_by_name() -> None:
    out = run_in_workers([("a", _where), ("b", _where), ("c", lambda: sum(range(10)))], jobs=2)
    assert set(out) == {"a", "b", "c"} and out["c"] == 45
    for name in ("a", "b"):
        pid, threads, flagged = out[name]
        assert pid != os.getpid() and threads == 1 and flagged
    assert not in_worker()  # the parent is not a worker
    # one job (or one task) runs here, in order
    assert run_in_workers([("a", _where)], jobs=2)["a"][0] == os.getpid()
    assert run_in_workers([("a", _where), ("b", _where)], jobs=1)["b"][0] == os.getpid()


def _fails() -> None:
    raise ValueError("bad input in stage b")


def test_a_failing_task_is_named_with_its_traceback_and_the_others_finish() -> None:
    with pytest.raises(WorkerError) as err:
        run_in_workers([("a", lambda: 1), ("b", _fails), ("c", lambda: 3)], jobs=2)
    text = str(err.value)
    assert "'b' failed in a worker process" in text
    assert "ValueError: bad input in stage b" in text and "_fails" in text  # the traceback


def _mark(path, needs=None):
    def run():
        if needs is not None and not needs.is_file():
            raise AssertionError(f"started before {needs.name} ended")
        time.sleep(0.2)
        path.write_text("done")
        return path.name

    return run


def test_a_task_starts_after_the_tasks_it_needs(tmp_path) -> None:
    a, b, c, d = (tmp_path / n for n in "abcd")
    tasks = [("c", _mark(c, needs=a)), ("d", _mark(d, needs=c)), ("a", _mark(a)), ("b", _mark(b))]
    after = {"c": ["a"], "d": ["c"]}
    assert run_in_workers(tasks, jobs=2, after=after) == {n: n for n in "abcd"}
    for p in (a, b, c, d):
        p.unlink()
    # one job runs them here in an order that respects the needs
    assert list(run_in_workers(tasks, jobs=1, after=after)) == ["a", "b", "c", "d"]


def test_a_task_whose_need_failed_does_not_run(tmp_path) -> None:
    ran = tmp_path / "ran"
    tasks = [("a", _fails), ("b", _mark(ran)), ("c", lambda: 3)]
    with pytest.raises(WorkerError) as err:
        run_in_workers(tasks, jobs=2, after={"b": {"a"}})
    assert "'b' did not run: it needs 'a'" in str(err.value)
    assert "ValueError: bad input in stage b" in str(err.value) and not ran.exists()


def test_needs_that_cannot_be_met_are_refused_before_anything_runs() -> None:
    with pytest.raises(ValueError, match="not given: \\['x'\\]"):
        run_in_workers([("a", lambda: 1)], jobs=2, after={"a": ["x"]})
    with pytest.raises(ValueError, match="circle"):  # a circle among the tasks waiting for a
        run_in_workers(
            [("a", lambda: 1), ("b", lambda: 2), ("c", lambda: 3)],
            jobs=2,
            after={"b": ["a", "c"], "c": ["b"]},
        )
    with pytest.raises(ValueError, match="circle"):
        run_in_workers([("a", lambda: 1), ("b", lambda: 2)], jobs=2, after={"a": ["b"], "b": ["a"]})


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    start = time.perf_counter()
    with pytest.raises(WorkerError, match="stopped without a result"):
        run_in_workers([("a", lambda: os._exit(3)), ("b", lambda: 2)], jobs=2)
    assert time.perf_counter() - start < 60


def test_in_background_runs_beside_the_block() -> None:
    with in_background("side", _where) as job:
        here = os.getpid()
    pid, threads, flagged = job.result()
    assert pid != here and threads == 1 and flagged
    with in_background("side", _fails) as job:
        pass
    with pytest.raises(WorkerError, match="'side' failed in a worker process: ValueError"):
        job.result()
    # fork=False: the same code path, run here when the result is asked for
    with in_background("side", _where, fork=False) as job:
        pass
    assert job.result()[0] == os.getpid()


def test_an_error_in_the_block_stops_the_background_worker() -> None:
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="here"):
        with in_background("slow", lambda: time.sleep(120)):
            raise RuntimeError("here")
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5, "2"])
def test_bad_jobs_are_refused(jobs) -> None:
    with pytest.raises(ConfigError, match="jobs must be a positive integer"):
        check_jobs(jobs)


def test_the_trainer_refuses_jobs_on_a_gpu_or_under_torchrun(tmp_path) -> None:
    from adamml.engine.config import TrainConfig
    from adamml.engine.distributed import DistInfo
    from adamml.engine.trainer import Trainer

    cfg = TrainConfig.from_dict(
        {"model": "test_adamml_rgb_audio", "num_classes": 3, "data": {"train": "syntheticav:4"}}
    )
    with pytest.raises(ConfigError, match="forked CPU processes.*on 'cuda' use jobs=1"):
        Trainer(cfg, tmp_path, info=DistInfo(device=torch.device("cuda")), jobs=2)
    with pytest.raises(ConfigError, match="with torchrun use jobs=1"):
        Trainer(cfg, tmp_path, info=DistInfo(rank=0, world_size=2), jobs=2)
