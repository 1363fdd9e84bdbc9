"""argparse entry points for `adamml extract` and `adamml data check`."""

from __future__ import annotations

import argparse
from pathlib import Path

from adamml.data import VideoReader
from adamml.data.commands import add_check_arguments, add_extract_arguments, run_check, run_extract


def _parse(add, argv: list[str]) -> argparse.Namespace:  # noqa: ANN001
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_check_and_extract(make_mp4, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    make_mp4("a.mp4")
    (tmp_path / "classes.txt").write_text("x\n")
    (tmp_path / "m.csv").write_text("path,label\na.mp4,x\n")
    assert run_check(_parse(add_check_arguments, [str(tmp_path / "m.csv")])) == 0
    (tmp_path / "bad.csv").write_text("path,label\ngone.mp4,x\n")
    assert run_check(_parse(add_check_arguments, [str(tmp_path / "bad.csv"), "--json"])) == 1
    (tmp_path / "nohead.csv").write_text("a.mp4,x\n")
    assert run_check(_parse(add_check_arguments, [str(tmp_path / "nohead.csv")])) == 2
    assert "header must be 'path,label'" in capsys.readouterr().err
    args = _parse(
        add_extract_arguments,
        ["audio", str(tmp_path / "m.csv"), "--out", str(tmp_path / "wav"), "--no-progress"],
    )
    assert run_extract(args) == 0
    wav = tmp_path / "wav" / "a.wav"
    assert wav.is_file()
    capsys.readouterr()
    assert run_extract(args) == 0  # resumable: what is written is skipped
    assert capsys.readouterr().out.startswith("audio: 0 written, 1 already done, 0 failed")
    args = _parse(
        add_extract_arguments,
        ["frames", str(tmp_path / "a.mp4"), "--out", str(tmp_path / "frames"), "--no-progress"],
    )
    assert run_extract(args) == 0
    assert (
        len(list((tmp_path / "frames" / "a").glob("*.jpg")))
        == VideoReader(tmp_path / "a.mp4").num_frames
    )
