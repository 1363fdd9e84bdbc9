"""The Python blocks of docs/online.md run as written (with a SyntheticAV clip as clip.mp4)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "online.md"


def test_python_blocks_run(tmp_path: Path, monkeypatch) -> None:
    from adamml.data.synthetic import write_synthetic_av

    write_synthetic_av(tmp_path / "data", 1, num_val=1, seed=0)
    shutil.copy(next((tmp_path / "data").glob("videos/val/*.mp4")), tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 3
    namespace: dict = {}
    for block in blocks:  # one namespace, like a reader's session
        exec(compile(block, str(PAGE.name), "exec"), namespace)  # noqa: S102
