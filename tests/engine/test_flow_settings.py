"""The engine's flow plumbing: the checkpoint's flow method, data.flow_dir, on-demand batches."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from adamml.data.sources import build_dataset
from adamml.engine.config import TrainConfig
from adamml.engine.flowsettings import resolve_flow_method, training_flow_method
from adamml.engine.loaders import collate_indexed
from adamml.errors import ConfigError
from adamml.modalities import InputSpec

FLOW_SPEC = {"flow": InputSpec((2, 10, 32, 32), "flow", 5)}
RGB_SPEC = {"rgb": InputSpec((2, 3, 32, 32), "rgb")}


def _ckpt(**data: object) -> dict:
    cfg = TrainConfig.from_dict(
        {"model": "m", "num_classes": 2, "data": {"train": "synthetic:2", **data}}
    )
    return {"config": cfg.to_dict()}


def test_the_checkpoint_records_and_supplies_the_training_method() -> None:
    ckpt = _ckpt(flow_method="dis")
    assert ckpt["config"]["data"]["flow_method"] == "dis"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_flow_method(ckpt, None, input_spec=FLOW_SPEC) == "dis"
        assert resolve_flow_method(ckpt, "dis", input_spec=FLOW_SPEC) == "dis"
        assert resolve_flow_method(ckpt, "tvl1", input_spec=RGB_SPEC) == "tvl1"  # no flow input
    assert training_flow_method(_ckpt()) == "tvl1"
    assert (
        training_flow_method({"config": {"data": {"train": "syntheticav:8,flow_method=dis"}}})
        == "dis"
    )
    assert training_flow_method({}) is None and resolve_flow_method({}, None) == "tvl1"


def test_another_method_than_training_warns_naming_both() -> None:
    with pytest.warns(UserWarning, match="trained on 'dis'.*computed with 'farneback'"):
        assert (
            resolve_flow_method(_ckpt(flow_method="dis"), "farneback", input_spec=FLOW_SPEC)
            == "farneback"
        )
    with pytest.raises(ConfigError, match="--flow-method must be one of"):
        resolve_flow_method(_ckpt(), "lk")


def test_flow_dir_resolves_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    (tmp_path / "train.csv").write_text("path,label\nv/a.mp4,a\n")
    (tmp_path / "classes.txt").write_text("a\n")
    ds = build_dataset(
        "train.csv",
        FLOW_SPEC,
        segments=2,
        train=False,
        num_classes=1,
        base_dir=tmp_path,
        flow_dir="flow",
        flow_method="dis",
        flow_on_demand=True,
    )
    assert ds.flow_dir == tmp_path / "flow"
    assert ds.transform.flow_method == "dis" and ds.transform.flow_on_demand
    synthetic = build_dataset(
        "synthetic:2",
        FLOW_SPEC,
        segments=2,
        train=False,
        num_classes=1,
        flow_dir="flow",
        flow_on_demand=True,
    )  # ignored: tensors
    assert isinstance(synthetic[0][0]["flow"], torch.Tensor)


def test_collate_indexed_makes_one_source_per_batch() -> None:
    from adamml.data import FlowRequest, OnDemandFlow
    from adamml.data.spatial import EVAL_SPATIAL

    req = FlowRequest(
        lambda idx: np.zeros((len(idx), 8, 8, 3), np.uint8),
        20,
        np.zeros((2, 1), np.int64),
        5,
        (8, 8),
        EVAL_SPATIAL,
        method="dis",
    )
    batch = [
        (i, {"rgb": torch.full((2, 1, 3, 8, 8), float(i)), "flow": req}, torch.tensor(i))
        for i in range(3)
    ]
    index, inputs, label = collate_indexed(batch)
    assert index.tolist() == [0, 1, 2] and label.tolist() == [0, 1, 2]
    assert list(inputs) == ["rgb", "flow"] and inputs["rgb"].shape == (3, 2, 1, 3, 8, 8)
    assert isinstance(inputs["flow"], OnDemandFlow) and inputs["flow"].shape[:2] == (3, 2)
    plain = collate_indexed([(0, {"rgb": torch.zeros(1)}, 1), (1, {"rgb": torch.ones(1)}, 0)])
    assert plain[0].tolist() == [0, 1] and plain[1]["rgb"].shape == (2, 1)


def test_trainer_evaluates_with_flow_on_demand_and_trains_eagerly(tmp_path: Path) -> None:
    from adamml.engine.trainer import Trainer

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    (tmp_path / "train.csv").write_text("path,label\nv/a.mp4,a\n")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    cfg = TrainConfig.from_dict(
        {
            "model": "test_adamml_rgb_flow_rgbdiff",
            "num_classes": 2,
            "data": {"train": "train.csv", "flow_method": "farneback", "flow_dir": "flow"},
        }
    )
    trainer = Trainer(cfg, tmp_path / "run", base_dir=tmp_path, show_progress=False)
    train, val = trainer._dataset("train.csv", True), trainer._dataset("train.csv", False)
    assert not train.transform.flow_on_demand and val.transform.flow_on_demand
    assert train.transform.flow_method == val.transform.flow_method == "farneback"
    assert train.flow_dir == val.flow_dir == tmp_path / "flow"
