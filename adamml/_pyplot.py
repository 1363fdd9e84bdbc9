"""matplotlib's pyplot on the non-interactive Agg backend, imported only when a figure is drawn
(matplotlib takes a second to import; training and inference never need it)."""

from __future__ import annotations

from typing import Any

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (figures go to files; no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
