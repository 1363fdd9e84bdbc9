"""The paper-table examples (examples/): every script's configs, full and --mini, are valid
TrainConfigs with the paper's recipe; one --mini run end to end (slow)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adamml.engine import TrainConfig
from adamml.experiments import tables
from adamml.experiments.starts import row_parts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p.stem for p in EXAMPLES.glob("table*.py"))
COST_WEIGHTS = {
    ("audio", "rgb"): {"rgb": 1.0, "audio": 0.05},
    ("flow", "rgb"): {"rgb": 1.0, "flow": 1.0},
    ("audio", "flow", "rgb"): {"rgb": 0.5, "audio": 0.05, "flow": 0.8},
}


def _module(name: str):
    """An example script as a module, loaded from its file (no ``sys.path`` edits)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_scripts_import_only_from_adamml() -> None:
    for name in SCRIPTS:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert "sys.path" not in text and "_common" not in text, name
    assert not (EXAMPLES / "_common.py").exists()


def test_one_script_per_paper_table() -> None:
    assert SCRIPTS == [
        "table1_rgb_audio",
        "table2_rgb_flow",
        "table3_rgb_audio_flow",
        "table4_sota",
        "table5_liteeval",
        "table6_backbones",
        "table7_fusion",
        "table8_random_policy",
        "table9_rgbdiff_vs_flow",
    ]
    readme = (EXAMPLES / "README.md").read_text()
    for name in SCRIPTS:
        assert f"{name}.py" in readme


@pytest.mark.parametrize("mini", [False, True], ids=["full", "mini"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_dry_run_builds_valid_configs(
    script: str, mini: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _module(script).SPEC
    argv = ["--dry-run", "--out", str(tmp_path)] + (["--mini"] if mini else [])
    result = tables.main(spec, argv)
    assert "configs valid" in capsys.readouterr().out
    files = sorted((tmp_path / "configs").glob("*.yaml"))
    assert len(files) == len(result["configs"]) >= 4
    for path in files:
        raw = yaml.safe_load(path.read_text())
        cfg = TrainConfig.from_dict(raw)
        assert cfg.model.startswith("test_") == mini
        assert cfg.data.segments_eval == (5 if path.stem.endswith("_5seg") else 10)
        unimodal = cfg.model.removeprefix("test_").startswith("unimodal_")
        weights = cfg.model_args.get("pretrained", {})
        if mini:  # the tiny architectures have no pretrained weights: random starts
            assert weights == {}
            assert cfg.data.train.startswith(("synthetic:", "syntheticav:"))
            assert cfg.device == "cpu"
            continue
        # the paper's recipe (Sec. 4.1, appendix B; reference README)
        assert cfg.batch_size == 72 and cfg.loss.gamma == 10.0
        assert cfg.data.train.endswith("train.csv")
        # every part not initialised from a unimodal run starts from ImageNet (Sec. 4.1)
        rec, policy = row_parts(cfg.model, cfg.model_args)
        assert weights == {p: True for p in (*rec, *policy) if p not in cfg.init}
        if unimodal:
            assert cfg.schedule.epochs == 60 and cfg.optim.lr == 0.01
            assert cfg.optim.milestones == (20, 40, 50) and cfg.optim.optimizer == "sgd"
            continue
        s = cfg.schedule
        assert (s.warmup_epochs, s.joint_epochs, s.finetune_epochs) == (5, 20, 10)
        assert s.epochs is None  # baselines: the sum of the stages, the paper's equal budget
        assert cfg.optim.lr == 0.001 and cfg.optim.policy_lr == 0.01
        assert cfg.optim.optimizer == "sgd"  # the paper: SGD for recognition
        assert cfg.tau_start == 5.0 and cfg.tau_decay == 0.965
        assert set(cfg.init) and all(p.endswith("best.pt") for p in cfg.init.values())
        if cfg.model.startswith("adamml_") and not script.startswith("table9"):
            if cfg.model_args.get("policy") != "random":
                assert dict(cfg.loss.cost_weights) == COST_WEIGHTS[tuple(sorted(cfg.init))]


def test_table9_lambda_knob(tmp_path: Path) -> None:
    spec = _module("table9_rgbdiff_vs_flow").SPEC
    configs = tables.main(spec, ["--dry-run", "--lambdas", "0.5,2"])["configs"]
    curve = {k: c["loss"]["cost_weights"] for k, c in configs.items() if "lrgb" in k}
    assert curve == {
        "adamml_rgb_flow_rgbdiff_lrgb0.5": {"rgb": 0.5, "flow": 1.0},
        "adamml_rgb_flow_rgbdiff_lrgb2": {"rgb": 2.0, "flow": 1.0},
    }


def test_table9_curve_shares_one_set_of_policy_extractors() -> None:
    """The lambda_RGB = 1 point pre-trains the policy's extractors; the other points start from
    them (and wait for that run), so the curve pays for them once."""
    spec = _module("table9_rgbdiff_vs_flow").SPEC
    configs = tables.main(spec, ["--dry-run", "--mini"])["configs"]
    anchor = configs["adamml_rgb_flow_rgbdiff_lrgb1"]["init"]
    assert not any(k.startswith("policy.") for k in anchor)
    assert sorted(k for k in configs if "lrgb" in k)[0].endswith("lrgb0.5")  # mini: no 0.25
    for lam in ("0.5", "2", "4"):
        init = configs[f"adamml_rgb_flow_rgbdiff_lrgb{lam}"]["init"]
        assert {k: Path(v).parts[-4:] for k, v in init.items() if k.startswith("policy.")} == {
            f"policy.{m}": ("adamml_rgb_flow_rgbdiff_lrgb1", "pretrain", f"policy.{m}", "best.pt")
            for m in ("rgb", "rgbdiff")
        }
    # without a point at 1, the first point pre-trains them
    configs = tables.main(spec, ["--dry-run", "--mini", "--lambdas", "0.5,2"])["configs"]
    shared = configs["adamml_rgb_flow_rgbdiff_lrgb2"]["init"]["policy.rgb"]
    assert Path(shared).parts[-4] == "adamml_rgb_flow_rgbdiff_lrgb0.5"
    assert tables.main(spec, ["--dry-run", "--mini", "--lambdas", ""])["configs"]


def test_table8_random_phases() -> None:
    spec = _module("table8_random_policy").SPEC
    configs = tables.main(spec, ["--dry-run", "--mini"])["configs"]
    whens = sorted(
        c["model_args"]["policy_args"]["when"]
        for c in configs.values()
        if c["model_args"].get("policy") == "random"
    )
    assert whens == ["both", "test", "train"]


def test_table6_prints_full_size_gflops_beside_the_papers(capsys) -> None:
    """Counted by adamml.flops on the full-size models (no training): the EfficientNet row's
    all-on cost (frames averaged, no temporal pooling) beside the paper's 30.55, as the
    efficientnet_b3 docstring states."""
    spec = _module("table6_backbones").SPEC
    tables.main(spec, ["--dry-run", "--mini"])
    out = capsys.readouterr().out
    eff = next(line for line in out.splitlines() if "EffNet-b3 | EffNet-b0" in line and "|" in line)
    assert eff.split()[-5:] == ["7.60", "89.42", "|", "30.55", "34%"]
    assert "AdaMML ResNet-50 | MobileNetV2          7.60   152.77 |  110.14" in out
    assert "without temporal pooling" in out


def test_full_mode_needs_data_root() -> None:
    spec = _module("table1_rgb_audio").SPEC
    with pytest.raises(SystemExit, match="--data-root"):
        tables.main(spec, ["--out", "x"])


@pytest.mark.slow
def test_table1_mini_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "table1_rgb_audio.py"),
            "--mini",
            "--quiet",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Weighted Fusion" in proc.stdout and "AdaMML" in proc.stdout
    results = json.loads((tmp_path / "table1_results.json").read_text())
    rows = {r["key"]: r for r in results["rows"]}
    assert set(rows) == {"unimodal_rgb", "unimodal_audio", "fusion_rgb_audio", "adamml_rgb_audio"}
    for row in rows.values():
        assert row["metrics"]["num_videos"] == 160 and row["metrics"]["gflops"] > 0
    assert set(rows["adamml_rgb_audio"]["metrics"]["selection_rate"]) == {"rgb", "audio"}
    assert rows["fusion_rgb_audio"]["metrics"]["selection_rate"] == {"rgb": 100.0, "audio": 100.0}


def _differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    """Dotted keys where two raw configs differ."""
    keys = set(a) | set(b)
    out: set[str] = set()
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k != "cost_weights":
            out |= _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.add(f"{prefix}{k}")
    return out


@pytest.mark.parametrize("mini", [False, True], ids=["full", "mini"])
def test_ablations_change_one_thing_each(mini: bool, tmp_path: Path) -> None:
    """examples/ablations.py: every Sec. 4.3 row is AdaMML's config with only its own knob
    changed, from the same unimodal models; ``--only`` keeps those the rows start from."""
    spec = _module("ablations").SPEC
    argv = ["--dry-run", "--out", str(tmp_path)] + (["--mini"] if mini else [])
    configs = tables.main(spec, argv)["configs"]
    assert len(configs) == 2 + 14
    base = configs["adamml"]
    if not mini:
        assert base["loss"]["gamma"] == 10.0 and base["tau_start"] == 5.0
        assert base["tau_decay"] == 0.965
        assert base["loss"]["cost_weights"] == {"rgb": 1.0, "audio": 0.05}
    expected = {
        "no_efficiency_loss": {"loss.cost_weights", "loss.gamma"},
        "equal_lambda": {"loss.cost_weights"},
        "gamma0": {"loss.gamma"},
        "gamma2": {"loss.gamma"},
        "gamma5": {"loss.gamma"},
        "fc_policy": {"model_args.policy"},
        "joint_gate": {"model_args.policy", "model_args.policy_args"},
        "joint_gate_2m": {"model_args.policy"},
        "tau0": {"tau_start"},
        "tau0.5": {"tau_start"},
        "tau10": {"tau_start"},
        "anneal0": {"tau_decay", "tau_min"},
        "anneal0.5": {"tau_decay"},
    }
    shared = {f"policy.{m}": f"adamml/pretrain/policy.{m}/best.pt" for m in ("rgb", "audio")}
    for key, changed in expected.items():
        init = configs[key]["init"]
        assert {k: v.removeprefix(str(tmp_path) + "/") for k, v in init.items()} == {
            **{k: v.removeprefix(str(tmp_path) + "/") for k, v in base["init"].items()},
            **shared,
        }, key  # the same unimodal models, and the policy extractors of AdaMML's row
        # (full mode: AdaMML's row starts its policy from ImageNet, the others from that row)
        starts = {"init.policy.rgb", "init.policy.audio", "model_args.pretrained"}
        diff = _differences(base, configs[key]) - starts
        assert diff == changed, (key, diff)
        TrainConfig.from_dict(configs[key])
    assert configs["no_efficiency_loss"]["loss"]["gamma"] == 0.0
    # Policy Design: the paper's one binary decision; the 2^M variant as a row of its own
    assert configs["joint_gate"]["model_args"]["policy_args"] == {"mode": "all_or_nothing"}
    assert "policy_args" not in configs["joint_gate_2m"]["model_args"]
    only = tables.main(spec, ["--dry-run", "--only", "fc_policy", "tau10"])["configs"]
    assert sorted(only) == ["adamml", "fc_policy", "tau10", "unimodal_audio", "unimodal_rgb"]


@pytest.mark.parametrize("dataset", ["activitynet", "fcvid"])
def test_table4_quotes_the_other_methods_and_tests_adamml_at_5_segments(dataset: str) -> None:
    module = _module("table4_sota")
    spec = tables.chosen_spec(module.SPECS, ["--dataset", dataset, "--mini"])
    assert spec is module.SPECS[dataset] and spec.paper_metric == "mAP"
    configs = tables.main(spec, ["--dry-run", "--mini", "--dataset", dataset])["configs"]
    rows = {r.key: r for r in spec.build(argparse.Namespace(dataset=dataset))}
    quoted = {k for k, r in rows.items() if r.quoted}
    assert quoted == {"frameglimpse", "fastforward", "adaframe", "liteeval"}
    assert not quoted & set(configs)  # quoted rows are not run
    five = rows["adamml_rgb_audio_5seg"]
    assert five.evaluate_of == "adamml_rgb_audio"
    assert configs["adamml_rgb_audio_5seg"]["data"]["segments_eval"] == 5
    fcvid = dataset == "fcvid"
    assert rows["liteeval"].paper == ((80.0, 94.3) if fcvid else (72.7, 95.1))
    assert five.paper == ((82.70, 57.3) if fcvid else None)


@pytest.mark.parametrize(
    ("dataset", "metric", "liteeval"),
    [("kinetics-sounds", "Acc.", (72.02, 104.06)), ("mini-sports1m", "mAP", (43.64, 151.83))],
)
def test_table5_trains_liteeval_here(dataset: str, metric: str, liteeval: tuple) -> None:
    module = _module("table5_liteeval")
    spec = tables.chosen_spec(module.SPECS, ["--dataset", dataset])
    assert spec.paper_metric == metric
    configs = tables.main(spec, ["--dry-run", "--dataset", dataset])["configs"]
    assert configs["liteeval_rgb"]["model"] == "liteeval_rgb"
    assert configs["liteeval_rgb"]["init"] == {"rgb": "OUT/unimodal_rgb/best.pt"}
    rows = {r.key: r for r in spec.build(argparse.Namespace(dataset=dataset))}
    assert rows["liteeval_rgb"].paper == liteeval and not rows["liteeval_rgb"].quoted


def test_a_quoted_row_shows_the_paper_numbers_and_dashes() -> None:
    from adamml.experiments.report import format_table

    rows = [
        tables.Run("adaframe", "AdaFrame", "", paper=(71.5, 78.69), quoted=True),
        tables.Run("ours", "AdaMML", "adamml_rgb_audio", paper=(73.91, 94.01)),
    ]
    metrics = {"ours": {"top1": 50.0, "mAP": 60.0, "selection_rate": {"rgb": 40.0}, "gflops": 1.0}}
    lines = format_table(rows, metrics, paper_metric="mAP").splitlines()
    quoted = next(line for line in lines if line.startswith("AdaFrame (quoted)"))
    assert quoted.split("|")[1].split() == ["71.50", "78.69"]
    assert quoted.split("|")[0].split()[2:] == ["-", "-", "-", "-"]
    assert any(line.startswith("AdaMML ") and "60.00" in line for line in lines)


@pytest.mark.slow
def test_table5_mini_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "table5_liteeval.py"), "--mini", "--quiet"]
        + ["--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "table5_kinetics_sounds_results.json").read_text())
    rows = {r["key"]: r for r in results["rows"]}
    assert set(rows["liteeval_rgb"]["metrics"]["selection_rate"]) == {"rgb"}
    assert rows["adamml_rgb_audio_5seg"]["segments_eval"] == 5  # from the override
    ten, five = rows["adamml_rgb_audio"]["metrics"], rows["adamml_rgb_audio_5seg"]["metrics"]
    assert five["num_videos"] == ten["num_videos"] > 0
    # the same checkpoint on half the segments: at most half the policy's and backbones' work
    assert five["gflops"] <= ten["gflops"]


def test_table7_mini_runs_two_columns_unless_told_all() -> None:
    """Table 7's three columns are 21 trainings, over the 10 minutes a mini run may take; its
    mini runs RGB + Audio and RGB + Flow, ``--tasks all`` the whole table."""
    spec = _module("table7_fusion").SPEC
    mini = tables.main(spec, ["--dry-run", "--mini"])["configs"]
    assert not any("rgb_audio_flow" in k for k in mini)
    assert {"fusion_rgb_audio_max", "fusion_rgb_flow_fc2", "adamml_rgb_flow_rgbdiff"} <= set(mini)
    assert {"unimodal_rgb", "unimodal_audio", "unimodal_flow"} <= set(mini) and len(mini) == 15
    every = tables.main(spec, ["--dry-run", "--mini", "--tasks", "all"])["configs"]
    assert len(every) == 21 and "adamml_rgb_audio_flow_rgbdiff" in every
    assert len(tables.main(spec, ["--dry-run"])["configs"]) == 21  # full mode: the whole table
    one = tables.main(spec, ["--dry-run", "--mini", "--tasks", "rgb_audio"])["configs"]
    assert "unimodal_flow" not in one and len(one) == 8
