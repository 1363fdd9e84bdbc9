"""Run logs: TensorBoard events, ``log.csv`` and ``log.jsonl`` per pass, progress bars and a
NaN/inf guard. Only rank 0 writes (the others get a disabled logger)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import AdamMLError

__all__ = ["RunLogger", "NonFiniteLossError", "check_finite", "progress", "flatten"]


class NonFiniteLossError(AdamMLError, FloatingPointError):
    """A loss became NaN or infinite; the message names the stage, epoch and step."""


def check_finite(value: float, *, stage: str, epoch: int, step: int, what: str = "loss") -> None:
    """Stop with a clear error if ``value`` is NaN or infinite.

    Raises:
        NonFiniteLossError: naming the stage, epoch and step, with hints.
    """
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{what} is {value} in stage {stage!r}, epoch {epoch}, step {step}; lower the "
            "learning rate (lr / policy_lr), set optim.clip_grad_norm, or check the inputs"
        )


def progress(
    iterable: Iterable[Any], *, enabled: bool, desc: str, total: int | None = None
) -> Iterator[Any]:
    """A tqdm bar on rank 0; ``disable=None`` keeps it quiet when stderr is not a TTY.

    The plain ``tqdm`` class, not ``tqdm.auto``'s: that one is tqdm's asyncio class, whose
    constructor already calls ``iter(iterable)``, so a DataLoader was started twice per pass
    (its workers too) and a progress bar changed the run (one more draw from the global RNG).
    """
    if not enabled:
        return iter(iterable)
    from tqdm import tqdm

    return iter(
        tqdm(iterable, desc=desc, total=total, disable=None, leave=False, dynamic_ncols=True)
    )


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"selection_rate": {"rgb": 50}}`` -> ``{"selection_rate/rgb": 50}``."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "/"))
        else:
            out[name] = value
    return out


class RunLogger:
    """Appends one record per pass to ``log.jsonl`` and ``log.csv`` and scalars to TensorBoard.

    On resume, records of passes at or after the resumed pass are dropped first, so a resumed
    run's logs read as if it had never stopped.

    Args:
        folder: the run folder; ``None`` (other ranks) disables everything.
        resume_from_pass: first pass this process will run.
        tensorboard: write event files under ``folder/tb``.
    """

    def __init__(
        self, folder: str | Path | None, *, resume_from_pass: int = 0, tensorboard: bool = True
    ) -> None:
        self.folder = None if folder is None else Path(folder)
        self._tb: Any = None
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.folder / "log.jsonl"
        self.csv = self.folder / "log.csv"
        kept = [r for r in self.records() if int(r.get("pass", 0)) < resume_from_pass]
        self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self._write_csv(kept)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = kept[-1]["step"] + 1 if kept else 0
            self._tb = SummaryWriter(str(self.folder / "tb"), purge_step=purge)

    def records(self) -> list[dict[str, Any]]:
        """Every record in ``log.jsonl`` so far."""
        if self.folder is None or not self.jsonl.exists():
            return []
        return [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]

    def _write_csv(self, records: list[dict[str, Any]]) -> None:
        rows = [flatten(r) for r in records]
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        with open(self.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    def log(self, record: Mapping[str, Any]) -> None:
        """Record one pass: keys such as ``pass``, ``stage``, ``epoch``, ``step``, ``loss``,
        ``val/top1``, ``selection_rate``, ``gflops``, ``tau``, ``lr/...``."""
        if self.folder is None:
            return
        record = dict(record)
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        self._write_csv(self.records())  # columns can grow (validation appears later)
        if self._tb is not None:
            step = int(record.get("step", 0))
            for key, value in flatten(record).items():
                if isinstance(value, (int, float)) and key not in ("pass", "step", "epoch"):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
