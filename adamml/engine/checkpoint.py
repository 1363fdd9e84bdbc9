"""Atomic training checkpoints that resume exactly, loaded with ``weights_only=True``.

A checkpoint is written to a hidden temporary file in the same folder, flushed and fsynced,
then renamed into place with ``os.replace``; only then is ``last.pt`` re-pointed (a hard link,
itself swapped in atomically). A reader therefore never sees a half-written file as the latest,
whatever moment the writer is killed at. RNG states are stored as tensors and plain values so
the safe unpickler accepts them (the reference used pickled objects and no seeds; §10).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "rng_state",
    "set_rng_state",
    "atomic_write_bytes",
    "FORMAT",
    "read_torch_file",
]

FORMAT = "adamml-train-v1"
LAST = "last.pt"


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU, and CUDA when present) RNG states as safe values."""
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what [`rng_state`][adamml.engine.checkpoint.rng_state] returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["name"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, writer: Any) -> Path:
    """Write a file atomically: ``writer(fileobj)`` fills a temp file that then replaces ``path``.

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _replace_into_place(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _replace_into_place(tmp: str, path: Path) -> None:
    """Rename a complete temp file onto ``path`` (one function, so that the resume tests can
    kill the process at this moment by patching it; see ``tests/engine/faulty_adamml.py``)."""
    os.replace(tmp, path)


def save_checkpoint(
    state: dict[str, Any],
    folder: str | Path,
    name: str,
    *,
    update_last: bool = True,
    keep: int | None = None,
) -> Path:
    """Save ``state`` as ``folder/name`` atomically and point ``last.pt`` at it.

    Args:
        state: plain values and tensors (see [`TrainState`][adamml.engine.trainer.Trainer]).
        folder: the run's checkpoint folder.
        name: file name such as ``pass_0003.pt`` or ``best.pt``.
        update_last: re-point ``last.pt`` once the file is complete.
        keep: keep only this many ``pass_*.pt`` files (the newest); ``None`` keeps all.

    Returns:
        The written path.
    """
    folder = Path(folder)
    state = {"format": FORMAT, **state}
    path = atomic_write_bytes(folder / name, lambda fh: torch.save(state, fh))
    if update_last:
        link_tmp = folder / f".{LAST}.{os.getpid()}.tmp"
        if link_tmp.exists():
            link_tmp.unlink()
        try:
            os.link(path, link_tmp)
        except OSError:  # file systems without hard links: copy, still swapped in atomically
            shutil.copyfile(path, link_tmp)
        os.replace(link_tmp, folder / LAST)
        _fsync_dir(folder)
    if keep is not None:
        passes = sorted(folder.glob("pass_*.pt"))
        for old in passes[: max(0, len(passes) - keep)]:
            old.unlink()
    return path


def latest_checkpoint(folder: str | Path) -> Path | None:
    """``folder/last.pt`` if it exists, else ``None``."""
    path = Path(folder) / LAST
    return path if path.is_file() else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by [`save_checkpoint`][adamml.engine.checkpoint.save_checkpoint]
    with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: if the file is missing, unreadable or not an adamml training checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        last = latest_checkpoint(path)
        if last is None:
            raise CheckpointError(f"no checkpoint in folder {str(path)!r} (expected {LAST})")
        path = last
    state = read_torch_file(path, map_location=map_location)  # names a missing file
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(_not_training_checkpoint(path, state))
    return state


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read_torch_file(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with a failure named for what the file is.

    Raises:
        CheckpointError: for a JSON file (``metrics.json``), a whole pickled model
            (``torch.save(model)``), or a damaged or foreign file; never torch's advice to pass
            ``weights_only=False``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        # torch.load raises many types for a damaged, foreign or empty file: UnpicklingError
        # for what weights_only refuses, RuntimeError for a bad zip, EOFError for an empty file,
        # IndexError/KeyError from its unpickler for bytes that only look like a pickle. The
        # try holds only the torch.load call, so no bug of ours is hidden; the type is named.
        raise CheckpointError(_unreadable(path, err)) from None


def _unreadable(path: Path, err: BaseException) -> str:
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if head[:1] in (b"{", b"["):
        return (
            f"{str(path)!r} is a JSON file (metrics.json or a config?), not a checkpoint; "
            "pass a run's best.pt or last.pt, or the run folder"
        )
    text = _ANSI.sub("", str(err))
    pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if pickled:
        return (
            f"{str(path)!r} holds a pickled Python object ({pickled.group(1)}), such as a "
            "whole model saved with torch.save(model); adamml reads only tensors: save "
            "model.state_dict() instead, or use a checkpoint written by adamml train"
        )
    reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    first = reason.group(1) if reason else (text.strip().splitlines() or [""])[0]
    first = first.strip().split(". ")[0]
    reason_text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return (
        f"cannot read checkpoint {str(path)!r}: not a PyTorch checkpoint, or a damaged one "
        f"({reason_text})"
    )


def _not_training_checkpoint(path: Path, state: Any) -> str:
    if (
        isinstance(state, dict)
        and state
        and all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        return (
            f"{str(path)!r} is a plain state dict, not an adamml training checkpoint (it has "
            "no model name); eval and predict need a checkpoint written by adamml train, a "
            "state dict can only initialise a part (init: {rgb: ...})"
        )
    found = state.get("format") if isinstance(state, dict) else None
    return (
        f"{str(path)!r} is not an adamml training checkpoint (format {found!r}; expected "
        f"{FORMAT!r})"
    )
