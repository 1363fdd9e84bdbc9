"""Stored optical flow: one compressed ``.npz`` per video, quantised x/y images per frame pair.

Layout: ``<flow_dir>/<video path relative to the dataset root>.flow.npz`` holding ``x00000``,
``y00000``, ... (uint8, TSN quantisation, see `adamml.data.quantise_flow`)
for the pair (frame k, frame k+1), plus ``num_pairs`` and ``bound``. Members are decompressed one
at a time, so a clip reads only the pairs it uses.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import MediaFileError
from .flow import dequantise_flow

__all__ = ["flow_file", "find_flow_file", "read_flow_pairs", "write_flow_file"]


def flow_file(flow_dir: str | os.PathLike[str], rel_path: str | os.PathLike[str]) -> Path:
    """Where the flow of the video ``rel_path`` (relative to the dataset root) is stored."""
    return Path(flow_dir) / f"{Path(rel_path).as_posix()}.flow.npz"


def find_flow_file(flow_dir: str | os.PathLike[str], video: str | os.PathLike[str]) -> Path:
    """The stored flow of one video file whose dataset root is not known (``adamml predict``).

    ``adamml extract flow`` names each file after the video's path relative to the manifest's
    folder (or after the file name when given files), so the tails of ``video``'s path are
    tried, longest first: for ``/data/ks/videos/val/a.mp4``, ``data/ks/videos/val/a.mp4``,
    ..., ``val/a.mp4``, ``a.mp4``.

    Raises:
        MediaFileError: no tail has a flow file in ``flow_dir`` (run ``adamml extract flow``).
    """
    parts = Path(os.path.abspath(video)).parts[1:]
    for i in range(len(parts)):
        path = flow_file(flow_dir, Path(*parts[i:]))
        if path.is_file():
            return path
    raise MediaFileError(
        f"{video}: no stored flow in {flow_dir} (looked for "
        f"{flow_file(flow_dir, Path(*parts[-1:]))} and the paths under its "
        f"parent folders); run `adamml extract flow` on it or drop the flow "
        f"folder to compute flow"
    )


def write_flow_file(path: Path, quantised: Sequence[np.ndarray], bound: float) -> None:
    """Write ``(H, W, 2)`` uint8 fields atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "num_pairs": np.array(len(quantised)),
        "bound": np.array(bound, np.float32),
    }
    for k, q in enumerate(quantised):
        arrays[f"x{k:05d}"], arrays[f"y{k:05d}"] = q[..., 0], q[..., 1]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)


def read_flow_pairs(path: str | os.PathLike[str], starts: Sequence[int]) -> np.ndarray:
    """Dequantised flow for pairs starting at ``starts`` (clamped to the stored range).

    Returns:
        ``(n, H, W, 2)`` float32 pixels.

    Raises:
        MediaFileError: the file is missing or unreadable (run ``adamml extract flow``).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaFileError(f"{path}: stored flow not found (run `adamml extract flow`)")
    try:
        with np.load(path) as z:
            n, bound = int(z["num_pairs"]), float(z["bound"])
            out = []
            for s in starts:
                k = min(max(int(s), 0), max(n - 1, 0))
                out.append(np.stack([z[f"x{k:05d}"], z[f"y{k:05d}"]], axis=-1))
    except (OSError, KeyError, ValueError) as e:
        raise MediaFileError(f"{path}: cannot read stored flow ({e})") from e
    return dequantise_flow(np.stack(out), bound)
