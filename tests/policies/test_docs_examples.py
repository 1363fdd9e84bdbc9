"""The Python blocks of the gate, policy and own-model docs pages run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "components"


@pytest.mark.parametrize("page", ["gate.md", "policies.md", "own-model.md"])
def test_python_blocks_run(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:  # blocks of a page share one namespace, like a reader's session
        exec(compile(block, f"{page}", "exec"), namespace)
