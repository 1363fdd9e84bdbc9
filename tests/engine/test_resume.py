"""Kill a training run (SIGKILL) at several moments, resume it, and get the same metrics.json
as an uninterrupted run; a half-written checkpoint is never visible as the latest."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adamml.engine.checkpoint import load_checkpoint

TRAIN = [sys.executable, "-m", "adamml", "train", "--quiet"]


FAULTY = Path(__file__).with_name("faulty_adamml.py")


def _train(
    config: Path, out: Path, env: dict, resume: bool = False, kill_at: int | None = None, **kw
) -> subprocess.Popen:
    start = (
        TRAIN
        if kill_at is None
        else [sys.executable, str(FAULTY), str(kill_at), "train", "--quiet"]
    )
    cmd = start + ["--config", str(config), "--out", str(out)] + (["--resume"] if resume else [])
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]


def _visible_checkpoint_is_complete(out: Path) -> None:
    if (out / "last.pt").exists():
        load_checkpoint(out / "last.pt")  # raises on a partial file


def _kill_when(proc: subprocess.Popen, out: Path, n_checkpoints: int | None, delay: float) -> None:
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < 60:
        done = len(list(out.glob("pass_*.pt"))) if out.exists() else 0
        if (n_checkpoints is not None and done >= n_checkpoints) or (
            n_checkpoints is None and time.monotonic() - start > delay
        ):
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=180)


@pytest.mark.dist
def test_resume_after_sigkill_matches_uninterrupted(
    tmp_path: Path, write_config, standin_env
) -> None:
    config = write_config(keep_checkpoints=10)
    ref = tmp_path / "ref"
    _finish(_train(config, ref, standin_env))
    expected = (ref / "metrics.json").read_text()

    # killed while the 3rd checkpoint file is being renamed into place, then killed again
    # after a random delay, then resumed to the end
    out = tmp_path / "killed"
    proc = _train(config, out, standin_env, kill_at=3)
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    _visible_checkpoint_is_complete(out)
    assert not (out / "metrics.json").exists()
    rng = random.Random(0)
    _kill_when(_train(config, out, standin_env, resume=True), out, None, rng.uniform(1.5, 3.0))
    _visible_checkpoint_is_complete(out)
    _finish(_train(config, out, standin_env, resume=True))
    assert (out / "metrics.json").read_text() == expected
    # the resumed run's log reads as one run
    assert (out / "log.jsonl").read_text() == (ref / "log.jsonl").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resume_after_many_random_kills(
    tmp_path: Path, write_config, standin_env, seed: int
) -> None:
    config = write_config(alternation="iteration")
    ref = tmp_path / "ref"
    _finish(_train(config, ref, standin_env))
    out = tmp_path / "killed"
    rng = random.Random(seed)
    _kill_when(_train(config, out, standin_env), out, rng.randint(1, 3), 0)
    for _ in range(3):
        _visible_checkpoint_is_complete(out)
        _kill_when(_train(config, out, standin_env, resume=True), out, None, rng.uniform(0.5, 4))
    _visible_checkpoint_is_complete(out)
    _finish(_train(config, out, standin_env, resume=True))
    assert (out / "metrics.json").read_text() == (ref / "metrics.json").read_text()
