"""Optical flow: TV-L1 (paper) or faster OpenCV methods, TSN quantisation, normalisation.

AdaMML appendix B computes TV-L1 flow on the 256-short-side frames and bounds it to [-20, 20].
TSN stores each field as two greyscale images, ``uint8(round((f + 20) * 255 / 40))``; the
reference loader divides by 255 and normalises with mean 0.5, std 0.226 (reference §8). With
float flow that is exactly ``f / (40 * 0.226)``, which is what `normalise_flow` applies to
both stored (dequantised) and freshly computed flow, so offline and on-demand flow agree up to
the quantisation step (0.157 px).

Methods (`FlowMethod`, the one list of names): ``tvl1`` (the paper's), ``farneback`` and ``dis``
(OpenCV, one pair at a time on the CPU) and ``raft_small`` (torchvision's RAFT-small, a network
meant for GPUs that takes all pairs of a request in one batched call; see `adamml.data.raft`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, get_args

import cv2
import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "FlowMethod",
    "FLOW_METHODS",
    "check_flow_method",
    "optical_flow",
    "optical_flow_batch",
    "FlowOptions",
    "quantise_flow",
    "dequantise_flow",
    "normalise_flow",
    "FLOW_BOUND",
    "FLOW_STD",
    "FLOW_SIZE",
]

FlowMethod = Literal["tvl1", "farneback", "dis", "raft_small"]
FLOW_METHODS: tuple[str, ...] = get_args(FlowMethod)
"""Every flow method name, in `FlowMethod` order (config and CLI choices come from here)."""
FLOW_BOUND = 20.0
FLOW_STD = 0.226  # mean(0.229, 0.224, 0.225), the reference's flow std on [0, 1] values
FLOW_SIZE = 256  # shorter side of the frames flow is computed on (appendix B)

_ALGOS: dict[tuple[str, bool], Any] = {}


def check_flow_method(method: object, what: str = "flow method") -> str:
    """Return ``method`` if it is one of `FLOW_METHODS`.

    Raises:
        ConfigError: naming ``what`` (e.g. the config key) and the known methods.

    Example:
        >>> check_flow_method("dis")
        'dis'
    """
    if method not in FLOW_METHODS:
        raise ConfigError(f"{what} must be one of {', '.join(FLOW_METHODS)}; got {method!r}")
    return str(method)


def _algorithm(method: str, reduced: bool) -> Any:
    key = (method, reduced)
    if key not in _ALGOS:
        if method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise ConfigError(
                    "TV-L1 flow needs opencv-contrib (pip install "
                    "opencv-contrib-python-headless); or use method='dis'"
                )
            algo = cv2.optflow.DualTVL1OpticalFlow_create()
            if reduced:  # ~4x faster, dependency notes §3
                algo.setScalesNumber(3)
                algo.setWarpingsNumber(3)
                algo.setEpsilon(0.02)
                algo.setInnerIterations(10)
                algo.setOuterIterations(5)
        elif method == "dis":
            algo = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        elif method == "farneback":
            algo = None
        else:
            check_flow_method(method)
            raise ConfigError(f"flow method {method!r} has no OpenCV algorithm")
        _ALGOS[key] = algo
    return _ALGOS[key]


def _gray(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


class FlowOptions(TypedDict, total=False):
    """The keyword arguments of `optical_flow_batch` (``method``, ``reduced``, ``bound``,
    ``device``; all optional), which `optical_flow` passes on."""

    method: FlowMethod
    reduced: bool
    bound: float
    device: torch.device | str | None


def optical_flow(prev: np.ndarray, nxt: np.ndarray, **options: Unpack[FlowOptions]) -> np.ndarray:
    """Dense flow from ``prev`` to ``nxt``, clipped to ``[-bound, bound]``: `optical_flow_batch`
    on one pair.

    Args:
        prev: ``(H, W, 3)`` uint8 RGB or ``(H, W)`` uint8 grey frame.
        nxt: the next frame, like ``prev``.
        **options: those of
            [`optical_flow_batch`][adamml.data.flow.optical_flow_batch]: ``method``,
            ``reduced``, ``bound``, ``device`` (e.g. ``method="dis"``).

    Returns:
        ``(H, W, 2)`` float32, channel 0 = x (horizontal), 1 = y.

    Example:
        >>> import numpy as np
        >>> a = np.zeros((32, 32), np.uint8)
        >>> optical_flow(a, a, method="dis").shape
        (32, 32, 2)
    """
    return optical_flow_batch(prev[None], nxt[None], **options)[0]


def optical_flow_batch(
    prev: np.ndarray,
    nxt: np.ndarray,
    *,
    method: FlowMethod = "tvl1",
    reduced: bool = False,
    bound: float = FLOW_BOUND,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Flow for many pairs ``(prev[i], nxt[i])``: one batched network call for ``raft_small``,
    one OpenCV call per pair otherwise.

    Args:
        prev: ``(N, H, W, 3)`` uint8 RGB (or ``(N, H, W)`` grey) frames.
        nxt: the next frames, like ``prev``.
        method: ``"tvl1"`` (the paper's, ~0.4 s per 256x340 pair on one core), ``"farneback"``
            (~13 ms), ``"dis"`` (~5 ms) or ``"raft_small"`` (a network: all pairs in one call).
        reduced: TV-L1 with 3 scales, 3 warps, eps 0.02, 10 inner / 5 outer iterations (~4x
            faster).
        bound: clip range in pixels.
        device: where ``raft_small`` runs (default CPU); the OpenCV methods ignore it.

    Returns:
        ``(N, H, W, 2)`` float32 pixels.

    Raises:
        ConfigError: for an unknown method.
        FlowWeightsError: ``raft_small`` weights are neither cached nor downloadable.

    Example:
        >>> a = np.zeros((3, 32, 32), np.uint8)
        >>> optical_flow_batch(a, a, method="dis").shape
        (3, 32, 32, 2)
    """
    check_flow_method(method)
    if len(prev) != len(nxt):
        raise ConfigError(
            f"optical_flow_batch needs as many next frames as previous ones; got "
            f"{len(prev)} and {len(nxt)}"
        )
    if method == "raft_small":
        from .raft import raft_flow

        return raft_flow(prev, nxt, device=device, bound=bound)
    if len(prev) == 0:
        return np.zeros((0, *np.shape(prev)[1:3], 2), np.float32)
    return np.stack([_opencv_flow(a, b, method, reduced, bound) for a, b in zip(prev, nxt)])


def _opencv_flow(
    prev: np.ndarray, nxt: np.ndarray, method: str, reduced: bool, bound: float
) -> np.ndarray:
    """One pair with an OpenCV method: ``(H, W, 2)`` float32, clipped to ``[-bound, bound]``."""
    a, b = np.ascontiguousarray(_gray(prev)), np.ascontiguousarray(_gray(nxt))
    if method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    else:
        flow = _algorithm(method, reduced).calc(a, b, None)
    return np.clip(flow.astype(np.float32, copy=False), -bound, bound)


def quantise_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """TSN storage: ``uint8(round((f + bound) * 255 / (2 bound)))``, same shape as ``flow``."""
    q = np.round((np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound)))
    return q.astype(np.uint8)


def dequantise_flow(q: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """Inverse of [`quantise_flow`][adamml.data.flow.quantise_flow], float32 pixels; the error is
    at most half a step (``bound / 255``)."""
    return q.astype(np.float32) * (2 * bound / 255.0) - bound


def normalise_flow(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """The reference's flow normalisation on float flow: ``((f + b) / 2b - 0.5) / 0.226``."""
    out = np.clip(flow, -bound, bound)
    if out.dtype != np.float32:
        return (out / (2 * bound * FLOW_STD)).astype(np.float32)
    return np.divide(out, 2 * bound * FLOW_STD, out=out)  # in place: no second temporary
