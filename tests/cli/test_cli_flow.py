"""AdaMML-RGBDiff end to end on mp4 files: ``adamml extract flow``, then ``adamml train`` with
``data.flow_dir`` and ``adamml eval --flow-dir`` computing no flow at all; evaluation with flow
computed on demand (twice identical), with another method than training (warns), and
``adamml predict`` drawing only the flow it computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from adamml.cli import main

FLOW_FUNCTIONS = (
    "adamml.data.flow.optical_flow",
    "adamml.data.flow.optical_flow_batch",
    "adamml.data.flowclip.optical_flow_batch",
    "adamml.data.flowclip.compute_fields",
    "adamml.data.extract.optical_flow_batch",
    "adamml.data.raft.raft_flow",
)


def forbid_flow(mp: pytest.MonkeyPatch) -> None:
    """Make every function that computes optical flow raise."""

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("optical flow was computed although it is stored")

    for name in FLOW_FUNCTIONS:
        mp.setattr(name, boom)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    from adamml.data.synthetic import write_synthetic_av

    root = tmp_path_factory.mktemp("flowrun")
    train_csv = write_synthetic_av(root / "data", 4, num_val=2, seed=2, frames=64)
    val_csv = train_csv.parent / "val.csv"
    for csv in (train_csv, val_csv):
        assert (
            main(
                [
                    "extract",
                    "flow",
                    str(csv),
                    "--out",
                    str(root / "flow"),
                    "--method",
                    "dis",
                    "--no-progress",
                ]
            )
            == 0
        )
    cfg = {
        "model": "test_adamml_rgb_flow_rgbdiff",
        "num_classes": 6,
        "data": {
            "train": "data/train.csv",
            "val": "data/val.csv",
            "segments_train": 2,
            "segments_eval": 3,
            "flow_dir": "flow",
            "flow_method": "dis",
        },
        "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
        "pretrain": {"epochs": 1},  # the recipe's stages run (on stored flow too), briefly
        "batch_size": 2,
        "seed": 0,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.MonkeyPatch.context() as mp:
        forbid_flow(mp)
        assert (
            main(
                [
                    "train",
                    "--config",
                    str(root / "config.yaml"),
                    "--out",
                    str(root / "run"),
                    "--quiet",
                ]
            )
            == 0
        )
    return root, root / "run"


def test_train_with_stored_flow_records_the_method(run) -> None:
    root, out = run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["selection_rate"]) == {"rgb", "flow"} and metrics["num_videos"] == 2
    ckpt = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["config"]["data"]["flow_method"] == "dis"
    assert ckpt["config"]["data"]["flow_dir"] == "flow"


def test_eval_with_stored_flow_computes_none(run, monkeypatch: pytest.MonkeyPatch) -> None:
    root, out = run
    forbid_flow(monkeypatch)
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(out / "best.pt"),
                "--data",
                str(root / "data" / "val.csv"),
                "--flow-dir",
                str(root / "flow"),
                "--segments",
                "4",
                "--out",
                str(root / "eval_stored"),
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((root / "eval_stored" / "metrics.json").read_text())["num_videos"] == 2


@pytest.fixture(scope="module")
def random_policy_ckpt(run) -> Path:
    """A checkpoint whose (seeded, evaluation-deterministic) random policy keeps flow on about
    half of the segments, so on-demand evaluation has something to skip."""
    import adamml
    from adamml.engine.checkpoint import save_checkpoint

    root, _ = run
    args = {"policy": "random", "policy_args": {"p": 0.5, "seed": 3}}
    torch.manual_seed(0)
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6, **args)
    state = {
        "model_name": "test_adamml_rgb_flow_rgbdiff",
        "num_classes": 6,
        "model_args": args,
        "model": model.state_dict(),
        "config": {"seed": 0, "data": {"train": "data/train.csv", "flow_method": "dis"}},
    }
    return save_checkpoint(state, root / "random_run", "best.pt")


def _flow_pairs_needed(val_csv: Path, spec: dict, decisions: np.ndarray) -> int:
    """Distinct flow pairs of the segments where flow (M index 1) was selected, per video."""
    from adamml.data import VideoDataset

    ds = VideoDataset(val_csv, spec, segments=decisions.shape[1], train=False, flow_on_demand=True)
    return sum(len(np.unique(ds[i][0]["flow"].pairs()[decisions[i, :, 1]])) for i in range(len(ds)))


def test_eval_on_demand_computes_the_selected_flow_only_and_is_deterministic(
    run, random_policy_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adamml
    import adamml.data.flowclip as flowclip

    root, _ = run
    computed: list[int] = []
    real = flowclip.compute_fields

    def counting(get_frames, starts, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        computed.append(len(starts))
        return real(get_frames, starts, *a, **k)

    monkeypatch.setattr(flowclip, "compute_fields", counting)
    from adamml.data.producers import OpticalFlow

    real_make = OpticalFlow.make

    def lazy_only(self, spec, indices, params, ctx):  # noqa: ANN001, ANN202
        assert ctx.options.flow_on_demand or ctx.stored_flow is not None, "flow made eagerly"
        return real_make(self, spec, indices, params, ctx)

    monkeypatch.setattr(OpticalFlow, "make", lazy_only)  # nothing eager
    spec = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).input_spec
    results = []
    for i in range(2):
        computed.clear()
        assert (
            main(
                [
                    "eval",
                    "--checkpoint",
                    str(random_policy_ckpt),
                    "--data",
                    str(root / "data" / "val.csv"),
                    "--segments",
                    "4",
                    "--batch-size",
                    "2",
                    "--out",
                    str(root / f"eval{i}"),
                    "--quiet",
                ]
            )
            == 0
        )
        results.append((root / f"eval{i}" / "metrics.json").read_bytes())
        decisions = np.load(root / f"eval{i}" / "decisions.npz")["decisions"]
        selected = int(decisions[..., 1].sum())
        assert 0 < selected < decisions[..., 1].size  # some flow segments are skipped
        assert sum(computed) == _flow_pairs_needed(root / "data" / "val.csv", spec, decisions)
    assert results[0] == results[1]


def test_eval_with_another_method_than_training_warns(run) -> None:
    root, out = run
    with pytest.warns(UserWarning, match="'dis'.*'farneback'"):
        assert (
            main(
                [
                    "eval",
                    "--checkpoint",
                    str(out / "best.pt"),
                    "--data",
                    str(root / "data" / "val.csv"),
                    "--segments",
                    "2",
                    "--flow-method",
                    "farneback",
                    "--out",
                    str(root / "eval_fb"),
                    "--quiet",
                ]
            )
            == 0
        )


def test_predict_draws_only_the_flow_it_computed(run, capsys) -> None:
    root, out = run
    video = root / "data" / "videos" / "val" / "00000.mp4"
    figure = root / "decisions.png"
    assert (
        main(
            [
                "predict",
                str(video),
                "--checkpoint",
                str(out / "best.pt"),
                "--segments",
                "4",
                "--figure",
                str(figure),
            ]
        )
        == 0
    )
    assert figure.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert all(f"segment {i}:" in printed for i in range(1, 5))


def test_drawing_never_computes_skipped_flow(run) -> None:
    import adamml
    from adamml.engine.predict import Prediction, draw_decisions, load_inputs, predict_inputs

    root, _ = run
    video = root / "data" / "videos" / "val" / "00000.mp4"
    model = adamml.create_model("test_adamml_rgb_flow_rgbdiff", num_classes=6).eval()
    inputs = load_inputs(str(video), model, 4, flow_method="dis")
    pred = predict_inputs(model, inputs)
    src = inputs["flow"]
    computed = src.pairs_computed
    decisions = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    forced = Prediction(pred.top, decisions, pred.modalities, pred.gflops)
    assert draw_decisions(inputs, forced, root / "forced.png").stat().st_size > 1000
    assert src.pairs_computed == computed  # drawing computed nothing


def test_predict_with_stored_flow_computes_none(run, monkeypatch: pytest.MonkeyPatch) -> None:
    root, out = run
    forbid_flow(monkeypatch)
    video = root / "data" / "videos" / "val" / "00001.mp4"
    assert (
        main(
            [
                "predict",
                str(video),
                "--checkpoint",
                str(out / "best.pt"),
                "--segments",
                "4",
                "--flow-dir",
                str(root / "flow"),
                "--figure",
                str(root / "stored.png"),
            ]
        )
        == 0
    )
