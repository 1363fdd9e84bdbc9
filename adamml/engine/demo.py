"""The ``adamml demo`` entry point (placeholder until the demo is written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["run_demo"]


def run_demo(out_dir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Train and compare AdaMML and its baselines on synthetic data (not written yet).

    Raises:
        NotImplementedError: always, for now.
    """
    raise NotImplementedError("adamml demo is not available yet in this version")
