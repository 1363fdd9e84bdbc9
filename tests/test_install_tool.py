"""`tools/install.py` (what `make demo` and `make test` install with): uv with pip's index
settings, pip when uv fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

_PATH = Path(__file__).resolve().parents[1] / "tools" / "install.py"


@pytest.fixture
def install():
    spec = importlib.util.spec_from_file_location("adamml_install_tool", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pip_settings_become_uv_options(install, monkeypatch, tmp_path) -> None:
    constraints = tmp_path / "c.txt"
    constraints.write_text("torch<=2.14.1\n")
    listing = "\n".join(
        [
            "global.cert='/etc/ssl/certs/ca.crt'",
            f"global.constraint='{constraints}'",
            "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
            "global.find-links='/opt/old'",
            ":env:.find-links='/opt/wheels'",  # the environment wins, as in pip
        ]
    )
    monkeypatch.setattr(
        install.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout=listing, returncode=0)
    )
    args = install.uv_arguments(install.pip_settings())
    assert args == [
        "--index-strategy",
        "unsafe-best-match",
        "--extra-index-url",
        "file:///opt/a/simple",
        "--extra-index-url",
        "file:///opt/b/simple",
        "--find-links",
        "/opt/wheels",
        "--constraint",
        str(constraints),
    ]


def test_a_failing_uv_falls_back_to_pip(install, monkeypatch) -> None:
    calls: list[list[str]] = []

    def run(cmd, **kwargs):
        calls.append(list(cmd))
        uv = "uv" in cmd and "pip" in cmd and cmd[cmd.index("uv") - 1] == "-m"
        return SimpleNamespace(returncode=1 if uv else 0, stdout="", stderr="")

    monkeypatch.setattr(install.subprocess, "run", run)
    monkeypatch.delenv("ADAMML_INSTALLER", raising=False)
    assert install.main(["example==1.0"]) == 0
    assert calls[-1][-4:] == ["install", "-q", "--no-compile", "example==1.0"]
    assert any(c[1:3] == ["-m", "uv"] for c in calls)  # uv was tried first
    calls.clear()
    monkeypatch.setenv("ADAMML_INSTALLER", "pip")
    assert install.main(["example==1.0"]) == 0
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "install"]


def test_no_arguments_is_a_usage_error(install, capsys) -> None:
    assert install.main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_a_failing_uv_leaves_no_cache_behind(install, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(install.sys, "prefix", str(tmp_path))
    monkeypatch.delenv("UV_CACHE_DIR", raising=False)
    monkeypatch.delenv("ADAMML_INSTALLER", raising=False)

    def run(cmd, env=None, **kwargs):
        if cmd[1:3] == ["-m", "uv"]:  # uv fills its cache, then fails (a full disk, say)
            cache = Path(env["UV_CACHE_DIR"])
            cache.mkdir()
            (cache / "torch.whl").write_bytes(b"x" * 1000)
            return SimpleNamespace(returncode=2, stdout="", stderr="")
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(install.subprocess, "run", run)
    assert install.with_uv(["torch==2.14.1"]) is False
    assert not (tmp_path / ".uv-cache").exists()


def test_low_disk_is_said_before_and_after(install, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(install, "free_gb", lambda path: 0.3)
    monkeypatch.setattr(install.sys, "prefix", str(tmp_path))
    monkeypatch.setenv("ADAMML_INSTALLER", "pip")
    monkeypatch.setattr(
        install.subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=1, stdout="")
    )
    assert install.main(["torch==2.14.1", "-e", "."]) == 1
    err = capsys.readouterr().err
    assert f"warning: {tmp_path} has 0.3 GB free" in err
    assert f"pip failed (exit 1); {tmp_path} has 0.3 GB free" in err
    install.check_space(tmp_path, ["-e", ".[test,docs]"])  # no torch: nothing to say
    assert capsys.readouterr().err == ""
