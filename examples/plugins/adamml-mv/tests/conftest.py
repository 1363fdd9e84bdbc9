"""Fixtures: generated mp4s with a textured square moving a known number of pixels per frame,
and the plugin registered through a temporary ``.dist-info`` (its real entry points, no pip)."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

torch.set_num_threads(1)

PLUGIN = Path(__file__).resolve().parents[1]
SRC = PLUGIN / "src"
if str(SRC) not in sys.path:  # running from the source tree, not installed
    sys.path.insert(0, str(SRC))

# the moving square: 32x32 random texture on a dark noise background, (dx, dy) per frame
DX, DY = 3, 1
SQUARE = 32
HEIGHT, WIDTH = 128, 192
FRAMES = 40


def square_position(i: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the square in frame ``i``."""
    return 40 + DY * i, 20 + DX * i


def write_square_video(path: Path, **x264: object) -> Path:
    """H.264 (libx264, preset veryfast, crf 18) of the moving square; ``x264`` adds options
    such as ``g``, ``bf`` or ``x264-params``."""
    rng = np.random.default_rng(0)
    background = (rng.random((HEIGHT, WIDTH, 3)) * 60).astype(np.uint8)
    texture = (rng.random((SQUARE, SQUARE, 3)) * 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18", **{k: str(v) for k, v in x264.items()}}
        for i in range(FRAMES):
            frame = background.copy()
            y, x = square_position(i)
            frame[y : y + SQUARE, x : x + SQUARE] = texture
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def picture_types(path: Path) -> str:
    """``"IPPB..."``, one letter per frame in presentation order."""
    with av.open(str(path)) as c:
        return "".join(" IPB"[int(f.pict_type)] for f in c.decode(video=0))


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``p``: P-frames only (g=16, bf=0); ``b``: two B-frames (g=16, bf=2); ``intra``: keyint 1."""
    root = tmp_path_factory.mktemp("mv-videos")
    return {
        "p": write_square_video(root / "p.mp4", g=16, bf=0),
        "b": write_square_video(root / "b.mp4", g=16, bf=2),
        "intra": write_square_video(root / "intra.mp4", **{"x264-params": "keyint=1"}),
    }


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The plugin's entry points (read from its pyproject.toml) in a temporary ``.dist-info``
    on ``sys.path``; the registries are reloaded before and after."""
    import adamml

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = tmp_path / f"adamml_mv-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registries = (adamml.MODALITIES, adamml.BACKBONES, adamml.MODELS)
    for reg in registries:
        reg.reload_plugins()
    yield project
    monkeypatch.undo()
    for reg in registries:
        reg.reload_plugins()
