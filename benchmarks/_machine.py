"""What the benchmarks record about the machine they ran on."""

from __future__ import annotations

import platform

__all__ = ["cpu_model", "bf16_matrix_units"]


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
