"""The example plugin ``examples/plugins/adamml-mv``, installed with pip into a temporary target
folder and found through its entry points, end to end from SyntheticAV mp4 files: ``adamml
train`` of ``test_adamml_rgb_flow_mv``, ``adamml eval`` twice with identical results, ``adamml
predict`` with the decisions figure, and an all-intra video under ``on_error``."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from adamml.cli import main
from adamml.registries import BACKBONES, MODALITIES, MODELS

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "adamml-mv"
REGISTRIES = (MODALITIES, BACKBONES, MODELS)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("mv_target")
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*cmd, "--target", str(target), str(PLUGIN)], check=True, timeout=300)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(target))
    for reg in REGISTRIES:
        reg.reload_plugins()
    yield target
    mp.undo()
    for reg in REGISTRIES:
        reg.reload_plugins()


@pytest.fixture(scope="module")
def run(installed, tmp_path_factory) -> tuple[Path, Path]:
    from adamml.data.synthetic import write_synthetic_av

    root = tmp_path_factory.mktemp("mvrun")
    train_csv = write_synthetic_av(root / "data", 8, num_val=4, seed=2)
    cfg = {
        "model": "test_adamml_rgb_flow_mv",
        "num_classes": 6,
        "data": {
            "train": str(train_csv),
            "val": str(train_csv.parent / "val.csv"),
            "segments_train": 2,
            "segments_eval": 3,
            "flow_method": "dis",  # the fast OpenCV flow: this test is about the plumbing
        },
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
        "pretrain": {"epochs": 1},  # the recipe's stages run, briefly
        "batch_size": 4,
        "seed": 0,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = root / "run"
    assert main(["train", "--config", str(root / "config.yaml"), "--out", str(out), "--quiet"]) == 0
    return root, out


def test_discovery_names_the_distribution(installed, capsys) -> None:
    import adamml

    assert "mv" in adamml.list_modalities()
    assert main(["list", "plugins"]) == 0
    printed = capsys.readouterr().out
    assert "adamml-mv" in printed and "test_adamml_rgb_flow_mv" in printed
    assert adamml.get_modality("mv").producer == "adamml_mv.producer:MotionVectors"


def test_train_eval_twice_and_predict(run, capsys) -> None:
    root, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["selection_rate"]) == {"rgb", "flow"} and metrics["num_videos"] == 4
    results = []
    for i in range(2):
        args = ["eval", "--checkpoint", str(out / "best.pt"), "--segments", "3"]
        args += ["--data", str(root / "data" / "val.csv"), "--out", str(root / f"e{i}"), "--quiet"]
        assert main(args) == 0
        results.append(json.loads((root / f"e{i}" / "metrics.json").read_text()))
    assert results[0] == results[1]
    video = sorted((root / "data").glob("videos/val/*.mp4"))[0]
    figure = root / "decisions.png"
    args = ["predict", str(video), "--checkpoint", str(out / "best.pt"), "--segments", "3"]
    assert main([*args, "--figure", str(figure)]) == 0
    assert figure.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert all(f"segment {i}:" in printed for i in range(1, 4))


def _all_intra(path: Path) -> Path:
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.options = {"preset": "veryfast", "x264-params": "keyint=1"}
        for _ in range(40):
            frame = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def test_an_all_intra_video_follows_on_error(run) -> None:
    from adamml_mv import NoMotionVectorsError

    import adamml
    from adamml.data import VideoDataset

    root, _ = run
    data = root / "data"
    _all_intra(data / "videos" / "intra.mp4")
    rows = (data / "val.csv").read_text().splitlines()
    label = rows[1].split(",")[1]
    (data / "intra.csv").write_text("\n".join([rows[0], f"videos/intra.mp4,{label}", *rows[1:3]]))
    model = adamml.create_model("test_adamml_rgb_flow_mv", num_classes=6)
    strict = VideoDataset(data / "intra.csv", model, segments=2, train=False, flow_on_demand=True)
    with pytest.raises(NoMotionVectorsError, match="intra.mp4"):
        strict[0]
    lenient = VideoDataset(
        data / "intra.csv", model, segments=2, train=False, flow_on_demand=True, on_error="skip"
    )
    assert lenient[0][0]["mv"].shape == (2, *model.input_spec["mv"].shape)
    assert list(lenient.bad_files()) == [str(data / "videos" / "intra.mp4")]
