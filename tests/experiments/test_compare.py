"""`adamml.experiments.compare`: AdaMML against its baselines from one config, including the
optional cost-matched random policy (one keep probability for every modality)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamml.experiments.compare import METHODS, OPTIONAL_METHODS, compare, derived_config

RAW = {
    "model": "test_adamml_rgb_audio",
    "num_classes": 3,
    "data": {"train": "syntheticav:12,split=train", "val": "syntheticav:6,split=val"},
    "schedule": {"warmup_epochs": 1, "joint_epochs": 1, "finetune_epochs": 1},
    "pretrain": {"epochs": 1, "eval_every": 1},
    "seed": 0,
}


def test_random_cost_gets_one_probability_for_every_modality() -> None:
    cfg = derived_config(RAW, "random_cost", init={"rgb": "r.pt"}, random_p=0.25)
    assert cfg["model_args"] == {"policy": "random", "policy_args": {"p": 0.25, "seed": 0}}
    assert cfg["init"] == {"rgb": "r.pt"}
    per_modality = derived_config(RAW, "random", random_p={"rgb": 0.3, "audio": 1.0})
    assert per_modality["model_args"]["policy_args"]["p"] == {"rgb": 0.3, "audio": 1.0}


def test_bad_methods_are_named() -> None:
    with pytest.raises(ValueError, match="one keep probability"):
        derived_config(RAW, "random_cost", random_p={"rgb": 0.3})
    with pytest.raises(ValueError, match="unknown method 'oracle'"):
        derived_config(RAW, "oracle")
    with pytest.raises(ValueError, match="unknown methods"):
        compare(RAW, "unused", methods=("adamml", "oracle"))
    with pytest.raises(ValueError, match="needs fusion"):
        compare(RAW, "unused", methods=("adamml", "random_cost"))


def test_random_cost_matches_adamml_gflops(tmp_path: Path, monkeypatch) -> None:
    """``random_cost``'s probability is AdaMML's GFLOPs over fusion's, and each baseline
    starts from AdaMML's pre-trained backbones (the runs are faked: what is tested is the
    wiring between them, not training)."""
    import importlib

    # the package's ``compare`` attribute is the function; the module is in sys.modules
    cmp = importlib.import_module("adamml.experiments.compare")

    stage = tmp_path / "adamml" / "pretrain" / "rgb"
    stage.mkdir(parents=True)
    (stage / "best.pt").write_bytes(b"")
    results = {
        "adamml": {"top1": 80.0, "gflops": 0.3, "selection_rate": {"rgb": 25.0, "audio": 90.0}},
        "fusion": {"top1": 79.0, "gflops": 1.2, "selection_rate": {"rgb": 100.0, "audio": 100.0}},
        "random": {"top1": 70.0, "gflops": 0.31, "selection_rate": {"rgb": 24.0, "audio": 91.0}},
        "random_cost": {
            "top1": 50.0,
            "gflops": 0.29,
            "selection_rate": {"rgb": 24.0, "audio": 26.0},
        },
    }
    pretrain = {"rgb": {"folder": str(stage), "parts": ["rgb"]}}
    seen: dict[str, dict] = {}

    class FakeTrainer:
        modalities = ("rgb", "audio")

        def __init__(self, cfg, folder, **kw):
            self.name = Path(folder).name
            seen[self.name] = cfg

        def pretrain(self):
            return pretrain

        def run(self):
            return results[self.name]

    monkeypatch.setattr(cmp, "Trainer", FakeTrainer)
    lines: list[str] = []
    result = compare(RAW, tmp_path, methods=METHODS + OPTIONAL_METHODS, echo=lines.append)
    assert list(seen) == list(result.metrics) == ["adamml", "fusion", "random", "random_cost"]
    assert [line.split()[0] for line in lines] == list(seen)
    assert result.random_cost_p == 0.25
    assert seen["random_cost"].model_args["policy_args"]["p"] == 0.25
    assert seen["random"].model_args["policy_args"]["p"] == {"rgb": 0.25, "audio": 0.9}
    assert seen["random_cost"].init == seen["fusion"].init == {"rgb": str(stage / "best.pt")}
    assert result.relations() == {
        "adamml_minus_fusion": 1.0,
        "gflops_ratio": 0.25,
        "adamml_minus_random": 10.0,
        "adamml_minus_random_cost": 30.0,
    }
    # without it, the default comparison reports the three relations it always did
    seen.clear()
    default = compare(RAW, tmp_path, echo=lines.append)
    assert list(seen) == list(METHODS) and default.random_cost_p is None
    assert "adamml_minus_random_cost" not in default.relations()


def test_side_by_side_runs_give_the_same_numbers(tmp_path: Path, monkeypatch) -> None:
    """``jobs=2`` (pre-training stages side by side, fusion beside AdaMML's joint stages, in
    forked one-thread workers) gives what ``jobs=1`` gives with one thread: every method's
    metrics and every stage's weights."""
    import importlib

    import torch

    from adamml.data.synthetic.source import clear_syntheticav_cache
    from adamml.engine import workers

    cmp = importlib.import_module("adamml.experiments.compare")
    forked: list[str] = []  # what really ran in workers
    real_run, real_background = workers.run_in_workers, cmp.in_background

    def run_in_workers(tasks, jobs):
        forked.extend(f"pretrain/{name}" for name, _ in tasks if jobs > 1)
        return real_run(tasks, jobs)

    def in_background(name, run, *, fork=True):
        forked.extend([name] if fork else [])
        return real_background(name, run, fork=fork)

    monkeypatch.setattr(workers, "run_in_workers", run_in_workers)
    monkeypatch.setattr(cmp, "in_background", in_background)
    raw = {**RAW, "data": {**RAW["data"], "test": "syntheticav:6,split=test"}}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {
            jobs: compare(raw, tmp_path / f"jobs{jobs}", echo=lambda _: None, jobs=jobs)
            for jobs in (1, 2)
        }
    finally:
        torch.set_num_threads(threads)
        clear_syntheticav_cache()
    one, two = runs[1], runs[2]
    assert forked == ["pretrain/rgb", "pretrain/audio", "pretrain/policy.rgb", "fusion"]
    keys = ("top1", "mAP", "gflops", "selection_rate")
    for method in METHODS:
        assert {k: two.metrics[method][k] for k in keys} == {
            k: one.metrics[method][k] for k in keys
        }, method
    assert {
        s: {k: v for k, v in r.items() if k != "folder"}
        for s, r in two.metrics["adamml"]["pretrain"].items()
    } == {
        s: {k: v for k, v in r.items() if k != "folder"}
        for s, r in one.metrics["adamml"]["pretrain"].items()
    }
    for stage in ("rgb", "audio", "policy.rgb"):
        a, b = (
            torch.load(
                tmp_path / f"jobs{j}" / "adamml" / "pretrain" / stage / "last.pt", weights_only=True
            )["model"]
            for j in (1, 2)
        )
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), stage
    assert two.random_p == one.random_p
