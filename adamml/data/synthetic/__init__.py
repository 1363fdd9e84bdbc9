"""SyntheticAV: a built-in procedural audio-visual dataset where adaptive selection matters.

AdaMML Figure 1 in miniature: per segment, the class is visible, audible, both or neither.
See ``docs/synthetic.md``.
"""

from __future__ import annotations

from .config import CATEGORY_NAMES, SHAPES, ClassInfo, SyntheticConfig, class_table
from .dataset import Featurised, SyntheticAV, SyntheticTensorDataset, SyntheticVideo
from .writer import write_synthetic_av

__all__ = [
    "SyntheticAV",
    "SyntheticVideo",
    "SyntheticTensorDataset",
    "Featurised",
    "SyntheticConfig",
    "ClassInfo",
    "class_table",
    "write_synthetic_av",
    "CATEGORY_NAMES",
    "SHAPES",
]
