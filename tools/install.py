"""Install packages into this interpreter's environment, with uv where it can, else pip.

``make demo`` and ``make test`` call it: ``python tools/install.py torch==2.14.1 -e .``.
Installing torch and its CUDA libraries (about 5.4 GB) took pip 45 s on a 2-core machine and
uv 16 s (2026-12-03, Intel Xeon, both from the same local package index): most of the
demo's set-up. uv is installed into the environment first; anything that fails on the uv path (no
uv for this platform, an index uv cannot read, a resolution it refuses) falls back to pip with
the same arguments, so the environment gets its packages either way.

uv does not read pip's configuration, so the index settings pip would use (``pip config``:
``index-url``, ``extra-index-url``, ``find-links``, ``constraint``, from files or ``PIP_*``
variables) are passed to it, with pip's rule of taking the best version from any index. Its
cache lies in the environment (``.uv-cache``), on the same file system, so uv hard-links the
installed files instead of copying them and the cache costs no extra disk; it goes with the
environment. ``ADAMML_INSTALLER=pip`` skips uv.

Disk: torch with its CUDA libraries needs about 6 GB. The tool says how much the environment's
file system has free before it starts (a warning under ``NEEDED_GB``), removes uv's cache when
uv fails (so pip gets that space back), and names the file system and its free space when the
install fails, since "No space left on device" in the middle of pip's output is easy to miss.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

PIP = [sys.executable, "-m", "pip"]
NEEDED_GB = 8.0  # torch 2.14.1 + torchvision + CUDA libraries: 5.6 GB in a venv, and headroom


def free_gb(path: Path) -> float:
    """Free space on ``path``'s file system, in GB (10**9 bytes)."""
    return shutil.disk_usage(path).free / 1e9


def check_space(path: Path, packages: list[str]) -> None:
    """Warn before installing torch where the file system has less than ``NEEDED_GB`` free."""
    if not any(re.split(r"[<>=!~\[;, ]", p, maxsplit=1)[0] == "torch" for p in packages):
        return
    free = free_gb(path)
    if free < NEEDED_GB:
        print(
            f"install: warning: {path} has {free:.1f} GB free; torch and its CUDA libraries "
            f"need about {NEEDED_GB:.0f} GB (free space, e.g. old virtual environments)",
            file=sys.stderr,
            flush=True,
        )


def pip_settings() -> dict[str, list[str]]:
    """pip's effective index settings: ``{"index-url": [...], "extra-index-url": [...],
    "find-links": [...], "constraint": [...]}`` (files, then ``PIP_*`` variables)."""
    out = subprocess.run(
        [*PIP, "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name in ("index-url", "extra-index-url", "find-links", "constraint"):
            # the later line wins (environment after files), as in pip
            found[name] = shlex.split(value.strip().strip("'\""))
    return found


def uv_arguments(settings: dict[str, list[str]]) -> list[str]:
    """uv's options for pip's settings."""
    args = ["--index-strategy", "unsafe-best-match"]  # pip takes the best match of all indexes
    for url in settings.get("index-url", []):
        args += ["--index-url", url]
    for url in settings.get("extra-index-url", []):
        args += ["--extra-index-url", url]
    for place in settings.get("find-links", []):
        args += ["--find-links", place]
    for path in settings.get("constraint", []):
        if Path(path).is_file():
            args += ["--constraint", path]
    return args


def with_uv(packages: list[str]) -> bool:
    """Install with uv; False if any step failed (pip then does it)."""
    if os.environ.get("ADAMML_INSTALLER", "uv") == "pip":
        return False
    got = subprocess.run([*PIP, "install", "-q", "uv"], capture_output=True, text=True)
    if got.returncode != 0:
        print(got.stderr.strip(), file=sys.stderr)
        print("install: uv is not available here; installing with pip", flush=True)
        return False
    env = dict(os.environ)
    own_cache = "UV_CACHE_DIR" not in env
    env.setdefault("UV_CACHE_DIR", str(Path(sys.prefix) / ".uv-cache"))
    cmd = [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "install",
        "--quiet",
        "--python",
        sys.executable,
        "--no-compile",
        *uv_arguments(pip_settings()),
        *packages,
    ]
    if subprocess.run(cmd, env=env, check=False).returncode != 0:
        if own_cache:  # pip does not read it; give its space back
            shutil.rmtree(env["UV_CACHE_DIR"], ignore_errors=True)
        print("install: uv failed (above); installing with pip instead", flush=True)
        return False
    return True


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python tools/install.py PACKAGE... (pip install arguments)", file=sys.stderr)
        return 2
    check_space(Path(sys.prefix), argv)
    if with_uv(argv):
        return 0
    code = subprocess.run([*PIP, "install", "-q", "--no-compile", *argv], check=False).returncode
    if code != 0:
        print(
            f"install: pip failed (exit {code}); {sys.prefix} has "
            f"{free_gb(Path(sys.prefix)):.1f} GB free",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
