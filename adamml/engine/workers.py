"""Independent runs at once: forked CPU worker processes with one torch thread each.

A small model on a CPU gains little from a second torch thread and nearly twice from a second
process: one training step of the demo's RGB network took 59.9 ms with one thread and 54.8 ms
with two (1.09x), while two one-thread processes side by side took 64.3 ms each (1.86x the
steps per second; 2-core Intel Xeon, 2026-12-03, `benchmarks/jobs.py`). The trainer's
pre-training stages (`adamml.engine.recipe.run_pretraining`) and a comparison's baselines
(`adamml.experiments.compare`) are independent runs, so they can go side by side.

```
parent (one torch thread) ── featurise the data ── fork ──► worker 1: task, task, ...
                                                       └──► worker 2: task, ...
                      each worker takes the next task from a queue; results come back pickled
```

Workers are forked, so they share what the parent already holds (imported modules, in-memory
datasets) instead of building it again, and they run one torch thread: after a parent has used
several OpenMP threads, a forked child that starts several of its own hangs (GNU OpenMP is not
fork-safe), while one thread is safe. Every run seeds itself (`Trainer`), so a run's numbers
do not depend on whether it ran in a worker or in the parent, only on the thread count.
CPU only: a process that has started CUDA cannot fork workers that use it.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import AdamMLError, ConfigError

__all__ = [
    "WorkerError",
    "available_cores",
    "check_jobs",
    "in_worker",
    "run_in_workers",
    "in_background",
    "Background",
]

_IN_WORKER = False


class WorkerError(AdamMLError, RuntimeError):
    """A task failed in a worker process; the message names it and carries its traceback."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_worker() -> bool:
    """Whether this process is one of `run_in_workers`' or `in_background`'s workers (they
    keep quiet: no progress bars)."""
    return _IN_WORKER


def check_jobs(jobs: int) -> int:
    """``jobs`` validated; 1 (run in this process) where forking is not possible.

    Raises:
        ConfigError: ``jobs`` is not a positive integer, or is above 1 after CUDA started.
    """
    import multiprocessing as mp

    import torch

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer; got {jobs!r}")
    if jobs == 1:
        return 1
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise ConfigError(
            f"jobs={jobs} runs independent runs in forked CPU processes, and this process has "
            "started CUDA, which forked processes cannot use; use jobs=1 on a GPU"
        )
    if "fork" not in mp.get_all_start_methods():
        import warnings

        warnings.warn(
            f"jobs={jobs}: this platform cannot fork processes; running one at a time",
            UserWarning,
            stacklevel=3,
        )
        return 1
    return jobs


def _child(run: Callable[[], Any], send: Any) -> None:
    """The body of a worker: one torch thread, quiet, and the result or the error back."""
    global _IN_WORKER
    import torch

    _IN_WORKER = True
    torch.set_num_threads(1)
    try:
        send(("ok", run()))
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _queue_worker(tasks: Any, results: Any, runs: Sequence[Callable[[], Any]]) -> None:
    while True:
        index = tasks.get()
        if index is None:
            return
        _child(runs[index], lambda value, i=index: results.put((i, value)))


def run_in_workers(
    tasks: Sequence[tuple[str, Callable[[], Any]]],
    jobs: int,
    *,
    after: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """Run ``tasks`` (``(name, callable)``) in up to ``jobs`` forked worker processes.

    A task starts once the tasks it comes ``after`` have ended well, in a free worker; of the
    tasks that may start, the one that most others wait for (directly or not) goes first, then
    the earliest in ``tasks``, so put the longest first.

    Args:
        tasks: names and zero-argument callables; results must be picklable.
        jobs: worker processes (`check_jobs`); 1, or a single task, runs here, one at a time in
            that order.
        after: ``{name: names of the tasks it needs}`` (e.g. a run that starts from another's
            checkpoint); a task whose needed task failed does not run.

    Returns:
        ``{name: result}``.

    Raises:
        ValueError: ``after`` names a task that is not in ``tasks``, or goes in a circle.
        WorkerError: a task raised (every failure, with its traceback, once every task that
            could run has ended).
    """
    names = [name for name, _ in tasks]
    needs = _needs_of(names, after or {})
    rank = _rank(names, needs)
    jobs = min(check_jobs(jobs), len(tasks))
    if jobs <= 1:
        run_of = dict(tasks)
        return {name: run_of[name]() for name in sorted(names, key=rank.__getitem__)}
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    queue, results = ctx.Queue(), ctx.Queue()
    runs = [run for _, run in tasks]
    procs = [ctx.Process(target=_queue_worker, args=(queue, results, runs)) for _ in range(jobs)]
    for p in procs:
        p.start()
    out: dict[str, Any] = {}
    failures: list[str] = []
    waiting, busy = list(names), 0
    try:
        while True:
            done = set(out)
            ready = [n for n in waiting if needs[n] <= done]
            for name in sorted(ready, key=lambda n: rank[n][1:])[: jobs - busy]:
                waiting.remove(name)
                queue.put(names.index(name))
                busy += 1
            if busy == 0:
                break
            index, (status, value) = _get(results, procs)
            busy -= 1
            name = names[index]
            if status == "ok":
                out[name] = value
            else:
                failures.append(f"{name!r} failed in a worker process: {value}")
        for name in waiting:  # a task they need failed
            missing = ", ".join(repr(n) for n in sorted(needs[name] - set(out)))
            failures.append(f"{name!r} did not run: it needs {missing}, which did not end well")
    finally:
        for _ in range(jobs):
            queue.put(None)
        _stop(procs)
    if failures:
        raise WorkerError("\n".join(failures))
    return out


def _needs_of(names: Sequence[str], after: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    needs = {name: set(after.get(name, ())) for name in names}
    unknown = {n for n in after if n not in needs} | {d for ds in needs.values() for d in ds}
    unknown -= set(names)
    if unknown:
        raise ValueError(f"tasks wait for tasks that are not given: {sorted(unknown)}")
    return needs


def _rank(names: Sequence[str], needs: Mapping[str, set[str]]) -> dict[str, tuple[int, int, int]]:
    """A sort key per task: (depth in the dependency order, minus how many tasks wait for it
    directly or not, position): the order of a one-at-a-time run; of the tasks that may start,
    the last two decide. Raises ValueError for a circle."""
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def level(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in visiting:
            raise ValueError(f"tasks wait for each other in a circle, through {name!r}")
        visiting.add(name)
        depth[name] = 1 + max((level(d) for d in needs[name]), default=-1)
        visiting.discard(name)
        return depth[name]

    waiters: dict[str, set[str]] = {}

    def waiting_for(name: str) -> set[str]:
        if name not in waiters:
            direct = {n for n in names if name in needs[n]}
            waiters[name] = direct.union(*(waiting_for(n) for n in direct))
        return waiters[name]

    for name in names:  # every circle raises here, before waiting_for follows the edges back
        level(name)
    return {n: (depth[n], -len(waiting_for(n)), i) for i, n in enumerate(names)}


def _get(results: Any, procs: Sequence[Any]) -> Any:
    """The next result; a worker that died without one (killed, out of memory) is an error."""
    import queue as queue_module

    while True:
        try:
            return results.get(timeout=1.0)
        except queue_module.Empty:
            codes = [p.exitcode for p in procs]
            if any(c not in (None, 0) for c in codes) or all(c is not None for c in codes):
                raise WorkerError(
                    f"a worker process stopped without a result (exit codes {codes}; a "
                    "negative code is the signal that ended it, -9 often the out-of-memory "
                    "killer; 0 a result that could not be pickled)"
                ) from None


def _stop(procs: Sequence[Any]) -> None:
    for p in procs:
        p.join(timeout=5.0)
        if p.is_alive():
            p.terminate()
            p.join()


class Background:
    """A task running in one forked worker (`in_background`)."""

    def __init__(self, name: str, proc: Any, conn: Any) -> None:
        self.name, self._proc, self._conn = name, proc, conn
        self._result: tuple[str, Any] | None = None

    def wait(self) -> None:
        """Wait for the task to end (its errors are raised by `result`)."""
        if self._result is None:
            try:
                self._result = self._conn.recv()
            except EOFError:
                self._proc.join()
                self._result = (
                    "error",
                    f"its process stopped without a result (exit code {self._proc.exitcode})",
                )
            self._proc.join()

    def result(self) -> Any:
        """Wait for the task and return its result.

        Raises:
            WorkerError: the task raised, or its process died without a result.
        """
        self.wait()
        assert self._result is not None
        status, value = self._result
        if status != "ok":
            raise WorkerError(f"{self.name!r} failed in a worker process: {value}")
        return value


@contextmanager
def in_background(name: str, run: Callable[[], Any], *, fork: bool = True) -> Iterator[Any]:
    """Run ``run`` in a forked worker while the ``with`` block runs here; the yielded handle's
    ``result()`` waits for it and returns its result or raises its error. The block's end waits
    for the worker; an error in the block stops it.

    With ``fork=False``, or where the platform cannot fork (`check_jobs`), ``run`` runs here
    when ``result()`` is called (the same code path without a worker).
    """
    if not fork or check_jobs(2) == 1:
        yield _Deferred(name, run)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(run, send.send))
    proc.start()
    send.close()  # the parent's copy: recv() then sees EOF if the worker dies
    handle = Background(name, proc, receive)
    try:
        yield handle
    except BaseException:
        proc.terminate()
        proc.join()
        raise
    handle.wait()


class _Deferred:
    def __init__(self, name: str, run: Callable[[], Any]) -> None:
        self.name, self._run = name, run

    def result(self) -> Any:
        return self._run()
