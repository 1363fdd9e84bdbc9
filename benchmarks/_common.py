"""What the benchmarks share: the machine they ran on and how they time things."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

__all__ = ["cpu_model", "bf16_matrix_units", "best_seconds"]


def _cpuinfo(key: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (or what ``platform`` knows)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def bf16_matrix_units() -> list[str]:
    """The CPU flags that give bf16 matrix instructions (``amx_bf16``, ``avx512_bf16``)."""
    flags = (_cpuinfo("flags") or "").split()
    return [f for f in ("amx_bf16", "avx512_bf16") if f in flags]


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls, after one warm-up call (caches, oneDNN
    primitives and the backbones' inference copies are built there)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
