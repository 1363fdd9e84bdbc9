"""Flow methods: one list of names, RAFT-small plumbing (offline, random weights), typed errors."""

from __future__ import annotations

import urllib.error
from typing import get_args

import numpy as np
import pytest
import torch

import adamml.data.raft as raft
from adamml.data.errors import FlowWeightsError
from adamml.data.flow import FLOW_METHODS, FlowMethod, optical_flow, optical_flow_batch
from adamml.data.flowclip import FlowRequest, OnDemandFlow
from adamml.data.spatial import EVAL_SPATIAL
from adamml.errors import ConfigError


@pytest.fixture
def random_raft(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """RAFT-small with random weights (no download); records the batch size of every call."""
    from torchvision.models.optical_flow import raft_small

    calls: list[int] = []
    net = raft_small(weights=None).eval()
    hook = net.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    monkeypatch.setattr(raft, "load_raft_small", lambda weights="DEFAULT", device="cpu": net)
    yield calls
    hook.remove()


def test_one_list_of_names_everywhere() -> None:
    from adamml.cli import build_parser
    from adamml.engine.config import TrainConfig

    assert FLOW_METHODS == get_args(FlowMethod) == ("tvl1", "farneback", "dis", "raft_small")
    with pytest.raises(ConfigError, match="data.flow_method.*raft_small.*got 'lk'"):
        TrainConfig.from_dict(
            {"model": "m", "num_classes": 2, "data": {"train": "synthetic:2", "flow_method": "lk"}}
        )
    cfg = TrainConfig.from_dict(
        {
            "model": "m",
            "num_classes": 2,
            "data": {"train": "synthetic:2", "flow_method": "raft_small"},
        }
    )
    assert cfg.to_dict()["data"]["flow_method"] == "raft_small"
    parser = build_parser()
    for argv in (
        ["extract", "flow", "a.mp4", "--out", "f", "--method", "raft_small"],
        ["eval", "--checkpoint", "c", "--data", "d", "--flow-method", "raft_small"],
        ["predict", "v.mp4", "--checkpoint", "c", "--flow-method", "dis"],
    ):
        parser.parse_args(argv)
    with pytest.raises(ConfigError, match="flow method must be one of"):
        optical_flow_batch(
            np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 8), np.uint8), method="lk"
        )  # type: ignore[arg-type]


def test_raft_small_is_batched_and_keeps_the_frame_size(random_raft: list[int]) -> None:
    rng = np.random.default_rng(0)
    prev = rng.integers(0, 255, (3, 40, 56, 3), dtype=np.uint8)
    flow = optical_flow_batch(prev, np.roll(prev, 2, axis=2), method="raft_small")
    assert flow.shape == (3, 40, 56, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all() and np.abs(flow).max() <= 20.0
    assert random_raft == [3]  # all pairs in one call
    grey = optical_flow(prev[0, ..., 0], prev[1, ..., 0], method="raft_small")
    assert grey.shape == (40, 56, 2)


def test_on_demand_raft_small_runs_one_call_per_video(random_raft: list[int]) -> None:
    frames = np.random.default_rng(1).integers(0, 255, (40, 36, 48, 3), dtype=np.uint8)
    idx = np.array([[0, 4], [16, 20], [30, 34]])
    req = FlowRequest(
        lambda ix: frames[np.asarray(ix)],
        40,
        idx,
        2,
        (16, 16),
        EVAL_SPATIAL,
        method="raft_small",
        flow_size=36,
    )
    src = OnDemandFlow([req, req])
    out = src.gather(torch.tensor([0, 0, 1]), torch.tensor([0, 2, 1]))
    assert out.shape == (3, 2, 4, 16, 16)
    assert len(random_raft) == 2  # one network call per video
    assert src.pairs_computed == sum(random_raft)


def test_offline_without_cached_weights_is_one_typed_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import torchvision.models.optical_flow as tv_flow

    def offline(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_flow, "raft_small", offline)
    monkeypatch.setattr(raft, "_MODELS", {})
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FlowWeightsError, match="not cached at .*raft_small_C_T_V2") as err:
        raft.load_raft_small("DEFAULT")
    assert "\n" not in str(err.value) and "dis" in str(err.value)


def test_extract_raft_small_without_weights_fails_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys
) -> None:
    import argparse

    from adamml.data.commands import add_extract_arguments, run_extract

    def offline(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise FlowWeightsError("RAFT-small weights 'DEFAULT' are not cached")

    monkeypatch.setattr(raft, "load_raft_small", offline)
    (tmp_path / "a.mp4").write_bytes(b"")
    p = argparse.ArgumentParser()
    add_extract_arguments(p)
    args = p.parse_args(
        [
            "flow",
            str(tmp_path / "a.mp4"),
            "--out",
            str(tmp_path / "f"),
            "--method",
            "raft_small",
            "--no-progress",
        ]
    )
    assert run_extract(args) == 2  # bad input, before any video
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not cached" in err
