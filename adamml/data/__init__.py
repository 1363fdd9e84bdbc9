"""Data pipeline: decoding, sampling, features, optical flow and datasets (AdaMML appendix B)."""

from __future__ import annotations
