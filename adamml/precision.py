"""Numeric precision of a forward pass: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).

The expensive convolutions run in the reduced precision; what decides (the policy's joint
layers, LSTM and gate logits) and what fuses (the late fusion and the video logits) stays in
float32, so reduced precision does not flip decisions on clear-cut segments
(docs/speed.md measures how often it does at all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .errors import ConfigError

__all__ = ["PRECISIONS", "check_precision", "autocast", "full_precision"]

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""Precision names and their dtypes."""


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of `PRECISIONS`.

    Raises:
        ConfigError: naming the accepted values.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


@contextlib.contextmanager
def autocast(precision: str, device_type: str) -> Iterator[None]:
    """``torch.autocast`` to ``precision`` on ``device_type`` (nothing for ``"fp32"``).

    Example:
        >>> with autocast("bf16", "cpu"):
        ...     torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    check_precision(precision)
    if precision == "fp32" or device_type not in ("cpu", "cuda", "xpu", "mps"):
        yield
        return
    with torch.autocast(device_type, dtype=PRECISIONS[precision]):
        yield


def full_precision(device_type: str) -> contextlib.AbstractContextManager[None]:
    """A block where autocast is off (inputs must then be cast to float32 by the caller)."""
    if device_type not in ("cpu", "cuda", "xpu", "mps"):
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)
