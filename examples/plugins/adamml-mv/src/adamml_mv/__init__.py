"""adamml-mv: H.264 motion vectors as an adamml modality (``mv``).

The decoder already computed them; reading them costs a decode without RGB conversion, and
their stack of 5 dx/dy fields per frame is shaped like optical flow. The modality, its backbones
and its models reach adamml through entry points (see ``pyproject.toml``).
"""

from __future__ import annotations

from .modality import MV
from .vectors import (
    NoMotionVectorsError,
    has_motion_vectors,
    rasterise_motion_vectors,
    read_motion_vectors,
)

__all__ = [
    "MV",
    "NoMotionVectorsError",
    "has_motion_vectors",
    "rasterise_motion_vectors",
    "read_motion_vectors",
]
__version__ = "0.1.0"
