"""A throw-away plugin modality of the side-file kind (one ``.npy`` per video, named in a
manifest column) goes through ``adamml train`` and ``adamml eval`` like a built-in: the data
contract (``Modality.producer``) is not shaped around the built-ins or the example plugin."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from adamml.cli import main
from adamml.data import MissingSideFileError, VideoDataset, open_media, read_manifest
from adamml.registries import MODALITIES, MODELS

PLUGIN = """
from adamml.data.producers import SideFileInput
from adamml.modalities import Modality
from adamml.zoo import ModelRecipe

DEPTH = Modality(
    "depth", channels=1, frames=8, size=(64, 64), recognition_backbone="tiny_tsn",
    policy_backbone="tiny_policy", cost_weight=0.2, description="a depth map per frame",
    producer=SideFileInput("depth"), tiny={"frames": 4, "size": (32, 32), "policy_size": (24, 24)},
)
RECIPE = ModelRecipe(("rgb", "depth"), description="RGB and depth")
"""


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin installed as a distribution on sys.path (entry points read from it)."""
    root = tmp_path_factory.mktemp("depth_plugin")
    (root / "depth_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = root / "depth_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: depth-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[adamml.modalities]\ndepth = depth_plugin:DEPTH\n"
        "[adamml.models]\nadamml_rgb_depth = depth_plugin:RECIPE\n"
    )
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(root))
    MODALITIES.reload_plugins()
    MODELS.reload_plugins()
    yield root
    mp.undo()
    MODALITIES.reload_plugins()
    MODELS.reload_plugins()


@pytest.fixture(scope="module")
def data(tmp_path_factory, plugin) -> Path:
    """SyntheticAV mp4s whose manifests name a depth file per video (its value: the label)."""
    from adamml.data.synthetic import write_synthetic_av

    root = tmp_path_factory.mktemp("depthdata")
    train = write_synthetic_av(root, 8, num_val=4, seed=3)
    for split in ("train", "val"):
        csv_path = root / f"{split}.csv"
        rows = list(csv.DictReader(csv_path.open()))
        manifest = read_manifest(csv_path)
        for row, entry in zip(rows, manifest.entries):
            n = open_media(entry.path).num_frames
            depth = np.full((n, 1, 20, 30), entry.labels[0] / 6.0, np.float32)
            rel = Path("depth") / Path(row["path"]).with_suffix(".npy")
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / rel, depth)
            row["depth"] = str(rel)
        with csv_path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["path", "label", "depth"])
            w.writeheader()
            w.writerows(rows)
    return train.parent


def test_the_side_file_modality_is_made_from_its_column(data: Path) -> None:
    import adamml

    model = adamml.create_model("test_adamml_rgb_depth", num_classes=6)
    ds = VideoDataset(data / "val.csv", model, segments=3, train=False)
    inputs, label = ds[0]
    assert inputs["depth"].shape == (3, *model.input_spec["depth"].shape)
    assert float(inputs["depth"].mean()) == pytest.approx(int(label) / 6.0, abs=1e-6)
    assert inputs["rgb"].shape == (3, *model.input_spec["rgb"].shape)


def test_train_and_eval_through_the_cli(data: Path, tmp_path: Path) -> None:
    cfg = {
        "model": "test_adamml_rgb_depth",
        "num_classes": 6,
        "data": {
            "train": str(data / "train.csv"),
            "val": str(data / "val.csv"),
            "segments_train": 2,
            "segments_eval": 3,
        },
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
        "pretrain": {"epochs": 1},
        "batch_size": 4,
        "seed": 0,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(tmp_path / "config.yaml"), "--out", str(out), "--quiet"])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["selection_rate"]) == {"rgb", "depth"}
    assert metrics["num_videos"] == 4
    args = ["eval", "--checkpoint", str(out / "best.pt"), "--data", str(data / "val.csv")]
    assert main([*args, "--segments", "3", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    evaluated = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert evaluated["num_videos"] == 4


def test_a_missing_side_file_follows_on_error(data: Path, tmp_path: Path) -> None:
    import adamml

    model = adamml.create_model("test_adamml_rgb_depth", num_classes=6)
    rows = list(csv.DictReader((data / "val.csv").open()))
    rows[1]["depth"] = "depth/nowhere.npy"
    rows[2]["depth"] = ""
    broken = data / "val_broken.csv"
    with broken.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "depth"])
        w.writeheader()
        w.writerows(rows)
    strict = VideoDataset(broken, model, segments=2, train=False)
    with pytest.raises(MissingSideFileError, match=r"depth file .*nowhere\.npy does not exist"):
        strict[1]
    with pytest.raises(MissingSideFileError, match="no 'depth' column value"):
        strict[2]
    lenient = VideoDataset(broken, model, segments=2, train=False, on_error="skip")
    lenient[1]
    lenient[2]
    assert len(lenient.bad_files()) == 2


def test_a_modality_without_a_producer_says_how_to_give_one() -> None:
    from adamml.data.transforms import ClipTransform
    from adamml.errors import ConfigError
    from adamml.modalities import InputSpec, Modality, register_modality

    register_modality(Modality("heat", channels=1, frames=2, size=(8, 8)))
    try:
        with pytest.raises(ConfigError, match="'heat': its Modality has no producer"):
            ClipTransform({"heat": InputSpec((2, 1, 8, 8), "heat")}, segments=1, train=False)
        with pytest.raises(ConfigError, match="'nothing' is not registered.*install the plugin"):
            ClipTransform({"x": InputSpec((2, 1, 8, 8), "nothing")}, segments=1, train=False)
    finally:
        MODALITIES.unregister("heat")
