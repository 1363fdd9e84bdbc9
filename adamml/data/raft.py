"""RAFT-small optical flow from torchvision (``flow_method: raft_small``), batched, for GPUs.

Not the paper's method (AdaMML appendix B uses TV-L1). RAFT (Teed and Deng, ECCV 2020) is a
network: every pair of a request goes through it in one batched call (``batch_size`` pairs at a
time), on the device the caller gives (the model's for on-demand flow, else the CPU). Frames are
scaled to ``[-1, 1]`` and padded (edge replication) to a multiple of 8 and at least 128 pixels,
which RAFT's correlation pyramid needs; the flow is cropped back and clipped like the others.

Weights come through torchvision's mechanism: ``Raft_Small_Weights.DEFAULT`` (``C_T_V2``) is
downloaded once into the torch hub cache (``$TORCH_HOME/hub/checkpoints``). Offline without the
cached file, loading raises [`FlowWeightsError`][adamml.data.errors.FlowWeightsError].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import FlowWeightsError

__all__ = ["load_raft_small", "raft_flow", "raft_weights_file", "RAFT_MIN_SIZE"]

RAFT_MIN_SIZE = 128  # the 1/8 feature maps must be >= 16 for the 4-level correlation pyramid
_MODELS: dict[tuple[str, str], nn.Module] = {}


def raft_weights_file(weights: str = "DEFAULT") -> Path:
    """Where torchvision caches the ``Raft_Small_Weights`` entry ``weights``."""
    from torchvision.models.optical_flow import Raft_Small_Weights

    url = Raft_Small_Weights[weights].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_raft_small(
    weights: str | None = "DEFAULT", device: torch.device | str = "cpu"
) -> nn.Module:
    """torchvision's ``raft_small`` in eval mode on ``device`` (cached per weights and device).

    Args:
        weights: a ``Raft_Small_Weights`` name (``"DEFAULT"``, ``"C_T_V2"``, ``"C_T_V1"``),
            or ``None`` for random weights (tests only: the flow is meaningless).
        device: where the network runs.

    Raises:
        FlowWeightsError: the weights are not in the torch hub cache and cannot be downloaded.

    Example:
        >>> net = load_raft_small(None)
        >>> type(net).__name__
        'RAFT'
    """
    from torchvision.models.optical_flow import Raft_Small_Weights, raft_small

    key = (str(weights), str(torch.device(device)))
    if key not in _MODELS:
        if weights is None:
            net = raft_small(weights=None)
        else:
            cached = raft_weights_file(weights)
            try:
                net = raft_small(weights=Raft_Small_Weights[weights], progress=False)
            except (OSError, RuntimeError, ValueError) as err:  # URLError is an OSError
                raise FlowWeightsError(
                    f"RAFT-small weights {weights!r} are not cached at {cached} and could not be "
                    f"downloaded ({type(err).__name__}); download them once on a connected "
                    f"machine (torchvision raft_small(weights='DEFAULT')) and copy the file "
                    f"there, or use flow_method 'dis' or 'tvl1'"
                ) from None
        _MODELS[key] = net.eval().requires_grad_(False).to(device)
    return _MODELS[key]


def _as_batch(frames: np.ndarray, device: torch.device) -> Tensor:
    """``(N, H, W, 3)`` uint8 (or ``(N, H, W)`` grey) -> ``(N, 3, H, W)`` float in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    x = x[..., None].expand(*x.shape, 3) if x.dim() == 3 else x
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _pad(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    ph = max(RAFT_MIN_SIZE, -(-h // 8) * 8) - h
    pw = max(RAFT_MIN_SIZE, -(-w // 8) * 8) - w
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def raft_flow(
    prev: np.ndarray,
    nxt: np.ndarray,
    *,
    device: torch.device | str | None = None,
    bound: float = 20.0,
    weights: str | None = "DEFAULT",
    batch_size: int = 32,
) -> np.ndarray:
    """RAFT-small flow from ``prev[i]`` to ``nxt[i]`` for every i, ``batch_size`` pairs a call.

    Args:
        prev: ``(N, H, W, 3)`` uint8 RGB (or ``(N, H, W)`` grey) frames.
        nxt: the next frames, like ``prev``.
        device: where the network runs (default CPU).
        bound: clip range in pixels.
        weights: see [`load_raft_small`][adamml.data.raft.load_raft_small].
        batch_size: pairs per network call.

    Returns:
        ``(N, H, W, 2)`` float32 pixels, channel 0 = x.

    Raises:
        FlowWeightsError: see `load_raft_small`.
    """
    dev = torch.device(device or "cpu")
    h, w = np.shape(prev)[1:3]
    if len(prev) == 0:
        return np.zeros((0, h, w, 2), np.float32)
    net = load_raft_small(weights, dev)
    out = []
    with torch.inference_mode():
        for i in range(0, len(prev), batch_size):
            a = _pad(_as_batch(prev[i : i + batch_size], dev))
            b = _pad(_as_batch(nxt[i : i + batch_size], dev))
            flow = net(a, b)[-1][:, :, :h, :w]  # (n, 2, H, W)
            out.append(flow.clamp(-bound, bound).permute(0, 2, 3, 1).float().cpu().numpy())
    return np.concatenate(out)
