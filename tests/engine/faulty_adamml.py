"""The ``adamml`` CLI that SIGKILLs itself the N-th time a file is renamed into place.

``python faulty_adamml.py N train --config ...``: the resume tests' crash at the worst moment
(a checkpoint written but not yet visible); ``N = 0`` only lists the renames. The library has
no hook for this; the script patches `adamml.engine.checkpoint._replace_into_place`.
"""

from __future__ import annotations

import os
import signal
import sys

WRITE = "adamml-write:"


def install(n: int) -> None:
    """Kill this process just before the ``n``-th rename of a complete file; ``n = 0`` kills
    nothing and prints ``adamml-write:<path>`` to stderr for each rename (to choose ``n``)."""
    from adamml.engine import checkpoint

    real = checkpoint._replace_into_place
    count = 0

    def replace(tmp: str, path) -> None:  # noqa: ANN001
        nonlocal count
        count += 1
        if n == 0:
            print(f"{WRITE}{path}", file=sys.stderr, flush=True)
        elif count == n:
            os.kill(os.getpid(), signal.SIGKILL)
        real(tmp, path)

    checkpoint._replace_into_place = replace


if __name__ == "__main__":
    install(int(sys.argv[1]))
    from adamml.cli import main

    sys.exit(main(sys.argv[2:]))
