"""``adamml predict --stream`` and ``adamml eval --early-exit / --early-exit-sweep`` on a
SyntheticAV mp4 and a checkpoint of a tiny model (no training: its policy is set to skip)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import av
import pytest
import torch

import adamml
from adamml.cli import main

SEGMENTS = "4"


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    """``(video, checkpoint, root)``: one SyntheticAV validation mp4 and a checkpoint whose
    policy skips RGB on some segments, with running confidences of about 0.3-0.5 on the two
    validation videos (the tests find their thresholds with a sweep)."""
    from adamml.data.synthetic import write_synthetic_av
    from adamml.engine.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("cli_stream")
    write_synthetic_av(root / "data", 2, num_val=2, seed=0)
    torch.manual_seed(0)
    model = adamml.create_model("test_adamml_rgb_audio", num_classes=6)
    with torch.no_grad():  # sharper predictions
        model.router.backbone("rgb").fc.weight.mul_(30)
        model.router.backbone("audio").fc.weight.mul_(30)
        # lower RGB's "use" logit until the policy skips RGB on some of the validation
        # segments but not all (the untrained policy's margins sit close together, and later
        # segments see the earlier logits), whatever the initial weights
        from adamml.data import load_video_inputs

        videos = sorted((root / "data").glob("videos/val/*.mp4"))
        inputs = [load_video_inputs(p, model.eval(), segments=int(SEGMENTS)) for p in videos]
        z = torch.cat([model(x).policy_logits for x in inputs])
        margins = z[..., 0, 1] - z[..., 0, 0]
        bias = model.policy.heads[0].bias
        start = bias[1].clone()
        for shift in torch.linspace(float(margins.min()), float(margins.max()), 41):
            bias[1] = start - shift
            rgb = torch.cat([model(x).decisions[..., 0] for x in inputs]).float().mean()
            if 0 < rgb < 1:
                break
        assert 0 < rgb < 1  # RGB is skipped on some segments
    classes = (root / "data" / "classes.txt").read_text().split()
    state = {
        "model_name": "test_adamml_rgb_audio",
        "num_classes": 6,
        "model": model.state_dict(),
        "classes": classes,
    }
    ckpt = save_checkpoint(state, root, "best.pt", update_last=False)
    return videos[0], ckpt, root


def _run(argv: list[str], capsys) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_predict_stream_prints_each_segment_and_ends_where_predict_does(setup, capsys) -> None:
    video, ckpt, _ = setup
    whole = _run(["predict", str(video), "--checkpoint", str(ckpt), "--segments", SEGMENTS], capsys)
    out = _run(
        ["predict", "--stream", str(video), "--checkpoint", str(ckpt), "--segments", SEGMENTS],
        capsys,
    )
    lines = out.splitlines()
    running = [ln for ln in lines if ln.startswith("segment ") and "[frames" in ln]
    assert [ln.split(" [")[0] for ln in running] == [f"segment {i}" for i in range(1, 5)]
    assert all("GFLOPs so far" in ln for ln in running)
    final = lines.index("final prediction after 4 segments:")
    assert "\n".join(lines[final + 1 :]) == whole.strip()  # classes, GFLOPs, the 4 segments


def test_predict_stream_reads_a_pipe_on_stdin(setup, capsys, monkeypatch) -> None:
    """No frame count in an MPEG-TS pipe: fixed windows of --segment-frames."""
    video, ckpt, _ = setup
    ts = io.BytesIO()
    with av.open(str(video)) as src, av.open(ts, "w", format="mpegts") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)

    class Stdin:
        buffer = io.BufferedReader(io.BytesIO(ts.getvalue()))

    monkeypatch.setattr(sys, "stdin", Stdin())
    out = _run(
        ["predict", "--stream", "-", "--checkpoint", str(ckpt), "--segment-frames", "50"], capsys
    )
    assert "segment 3 [frames 100-" in out and "segment 4 [" not in out  # 160 frames
    assert "final prediction after 3 segments:" in out


def test_predict_stream_stops_at_an_early_exit(setup, capsys) -> None:
    video, ckpt, _ = setup
    out = _run(
        [
            "predict",
            "--stream",
            str(video),
            "--checkpoint",
            str(ckpt),
            "--early-exit",
            "0",
            "--min-segments",
            "2",
        ],
        capsys,
    )
    assert "segment 2 [" in out and "(early exit)" in out and "segment 3 [" not in out
    assert "final prediction after 2 segments:" in out


def _eval(ckpt: Path, data: Path, out: Path, *extra: str) -> dict:
    argv = ["eval", "--checkpoint", str(ckpt), "--data", str(data), "--segments", SEGMENTS]
    assert main([*argv, "--out", str(out), "--quiet", *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_eval_early_exit_reports_segments_and_saves_gflops(setup, capsys) -> None:
    _, ckpt, root = setup
    data = root / "data" / "val.csv"
    full = _eval(ckpt, data, root / "full")
    never = _eval(ckpt, data, root / "never", "--early-exit", "1.0")
    assert never["segments_used"] == 4 and never["early_exit"]["threshold"] == 1.0
    assert never["top1"] == full["top1"] and never["gflops"] == pytest.approx(full["gflops"])
    two = _eval(ckpt, data, root / "two", "--early-exit", "0", "--min-segments", "2")
    assert two["segments_used"] == 2
    assert two["gflops"] < full["gflops"]
    printed = capsys.readouterr().out
    assert "2.00 of 4 segments used" in printed


def test_eval_sweep_writes_the_curve_and_matches_early_exit_runs(setup, capsys) -> None:
    _, ckpt, root = setup
    data = root / "data" / "val.csv"
    grid = [round(0.2 + 0.01 * i, 2) for i in range(50)]  # 0.2 ... 0.69
    thresholds = ",".join(str(t) for t in [*grid, 1.0])
    metrics = _eval(ckpt, data, root / "sweep", "--early-exit-sweep", thresholds)
    rows = metrics["early_exit_sweep"]
    assert [r["threshold"] for r in rows] == [*grid, 1.0, None]
    used = [r["segments_used"] for r in rows]
    assert used[0] == 1.0 and used[-2:] == [4.0, 4.0]  # stop at once ... never stop
    assert used == sorted(used)  # a higher threshold never stops earlier
    assert (root / "sweep" / "early_exit_sweep.png").stat().st_size > 1000
    with (root / "sweep" / "early_exit_sweep.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["threshold"] for r in table] == [str(t) for t in [*grid, 1.0]] + [""]
    at = next(r for r in rows if 1.0 < r["segments_used"] < 4.0)  # stops part-way
    run = _eval(ckpt, data, root / "at_mid", "--early-exit", str(at["threshold"]))
    assert (run["top1"], run["segments_used"]) == (at["top1"], at["segments_used"])
    assert run["gflops"] == pytest.approx(at["gflops"])
    assert rows[0]["gflops"] < at["gflops"] < rows[-1]["gflops"]
    assert rows[-1]["gflops"] == pytest.approx(metrics["gflops"])  # the whole video
    assert "whole" in capsys.readouterr().out


def test_bad_stream_options_are_one_line_errors(setup, capsys) -> None:
    video, ckpt, _ = setup
    assert main(["predict", "synthetic:3,index=0", "--stream", "--checkpoint", str(ckpt)]) == 2
    assert "--stream reads a video file" in capsys.readouterr().err
    assert main(["predict", str(video), "--checkpoint", str(ckpt), "--early-exit", "0.5"]) == 2
    assert "need --stream" in capsys.readouterr().err
    argv = ["eval", "--checkpoint", str(ckpt), "--data", "synthetic:2", "--quiet"]
    assert main([*argv, "--early-exit-sweep", "a,b"]) == 2
    assert "comma-separated thresholds" in capsys.readouterr().err
