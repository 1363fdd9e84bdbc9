"""A GFLOPs target in training: does ``loss.target_gflops`` put the cost where it was asked?

For each seed, one AdaMML run with the hand-tuned cost weights (the library's defaults:
``loss.cost_scale`` 0.15 x the reference's lambda) and one run per target, each target a
fraction of weighted fusion's cost. Every run is an ordinary `Trainer` run of the tiny model
``test_adamml_rgb_audio`` on in-memory SyntheticAV (``syntheticav:`` train / val / test splits);
the target runs start from the pre-training stages of their seed's hand-tuned run (``init``,
``pretrain: none``: the same start, not paid for again). The table gives, per run, the target,
the last validation GFLOPs, the test GFLOPs (``metrics.json``, videos the run never saw), their
ratio to the target, test top-1 and the final scale on the cost weights.

The controller's settings were chosen on ``--tune-seed`` (data and model seed 0); the other
seeds only report (``--seeds``).

Usage::

    python benchmarks/target_gflops.py --out runs/target_gflops --jobs 2 \
        --json benchmarks/results/target_gflops.json --plot docs/img/budget-training.png
    python benchmarks/target_gflops.py --out runs/target_gflops --seeds 0 --targets 0.5

A finished run is read back from its folder (``metrics.json``), so an interrupted benchmark
continues where it stopped. The JSON goes to ``--json`` (default
``benchmarks/results/target_gflops.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import cpu_model

MODEL = "test_adamml_rgb_audio"
SCHEDULE = {"warmup_epochs": 3, "joint_epochs": 8, "finetune_epochs": 3}
# --data rich: SyntheticAV with RGB evidence on 75 % of segments instead of 25 % (--data
# default), so that the hand-tuned weights leave the policy well below 40 % of fusion's cost
# with nothing to lose by spending more (docs/budget-training.md)
DATA = {
    "rich": {"p_rgb_only": 0.55, "p_both": 0.2, "p_audio_only": 0.05, "p_neither": 0.2},
    "default": {},
}
TUNE_SEED = 0


def fusion_gflops(num_classes: int, segments: int = 10) -> float:
    """Weighted fusion's GFLOPs per video: every recognition backbone on every segment."""
    from adamml import create_model

    fusion = create_model(MODEL, num_classes=num_classes, policy="all")
    return segments * fusion.cost_table.recognition_total


def base_config(seed: int, videos: tuple[int, int, int], options: dict[str, Any]) -> dict:
    """The plain config of a seed's runs: model, classes, data, schedule, seed."""
    from adamml.data.synthetic.source import syntheticav_source

    splits = ("train", "val", "test")
    return {
        "model": MODEL,
        "num_classes": 6,
        "data": {s: syntheticav_source(n, s, options) for s, n in zip(splits, videos)},
        "schedule": dict(SCHEDULE),
        "seed": seed,
    }


def _pretrained_init(metrics: dict[str, Any]) -> dict[str, str]:
    init: dict[str, str] = {}
    for stage in (metrics.get("pretrain") or {}).values():
        folder = Path(stage["folder"])
        best = folder / ("best.pt" if (folder / "best.pt").exists() else "last.pt")
        init.update({part: str(best) for part in stage["parts"]})
    return init


def _curve(folder: Path) -> list[dict[str, Any]]:
    """Per joint and fine-tune epoch: validation GFLOPs and top-1, the scale, the calibration
    and the training measurement (GFLOPs per video at the evaluation's segments)."""
    rows = []
    for line in (folder / "log.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["stage"] not in ("joint", "finetune") or "val" not in r:
            continue
        b = r.get("budget") or {}
        rows.append(
            {
                "stage": r["stage"],
                "epoch": r["epoch"],
                "val_gflops": r["val"]["gflops"],
                "val_top1": r["val"]["top1"],
                "scale": b.get("scale", 1.0),
                "calibration": b.get("calibration"),
                "train_gflops": b.get("gflops"),
            }
        )
    return rows


def _summary(name: str, target: float | None, folder: Path, metrics: dict, sec: float) -> dict:
    curve = _curve(folder)
    last_val = curve[-1]["val_gflops"] if curve else float("nan")
    calibrated = (metrics.get("budget") or {}).get("thresholds")  # loss.target_calibrate
    final_val = calibrated["val_gflops"] if calibrated else last_val
    return {
        "run": name,
        "target_gflops": target,
        "val_gflops": last_val,
        "calibrated_val_gflops": calibrated["val_gflops"] if calibrated else None,
        "thresholds": calibrated["thresholds"] if calibrated else None,
        "val_top1_before": calibrated["val_top1_before"] if calibrated else None,
        "val_top1": calibrated["val_top1"] if calibrated else None,
        "test_gflops": metrics["gflops"],
        "val_ratio": last_val / target if target else None,
        "final_val_ratio": final_val / target if target else None,
        "test_ratio": metrics["gflops"] / target if target else None,
        "top1": metrics["top1"],
        "selection_rate": metrics["selection_rate"],
        "scale": (metrics.get("budget") or {}).get("scale", 1.0),
        "curve": curve,
        "seconds": round(sec, 1),
    }


def run_seed(
    seed: int,
    out: str,
    targets: list[float],
    videos: tuple[int, int, int],
    options: dict[str, Any],
    penalty: str | None,
    step: float | None,
    threads: int,
) -> dict[str, Any]:
    """The hand-tuned run and one run per target for one seed (in a worker process)."""
    import torch

    from adamml.experiments.compare import run_config

    torch.set_num_threads(threads)
    folder = Path(out) / f"s{seed}"
    raw = base_config(seed, videos, options)
    fusion = fusion_gflops(raw["num_classes"])
    metrics, sec, _ = run_config(raw, folder / "hand")
    rows = [_summary("hand-tuned lambda", None, folder / "hand", metrics, sec)]
    init = _pretrained_init(metrics)
    for fraction in targets:
        target = fraction * fusion
        loss: dict[str, Any] = {"target_gflops": target}
        if penalty:
            loss["penalty"] = penalty
        if step:
            loss["target_step"] = step
        cfg = {**raw, "init": init, "pretrain": "none", "loss": loss}
        name = f"target {fraction:.0%}"
        run_folder = folder / f"target{int(round(fraction * 100))}"
        metrics, sec, _ = run_config(cfg, run_folder)
        rows.append(_summary(name, target, run_folder, metrics, sec))
    return {"seed": seed, "tuned_on": seed == TUNE_SEED, "fusion_gflops": fusion, "runs": rows}


def format_table(seeds: list[dict[str, Any]]) -> str:
    """One markdown row per run."""
    head = (
        "| seed | run | target GFLOPs | last val GFLOPs | val / target | calibrated val / target "
        "| test GFLOPs | test / target | test top-1 | RGB / audio sel. % | final scale |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for s in seeds:
        tag = f"{s['seed']} ({'tuned on' if s['tuned_on'] else 'held out'})"
        for r in s["runs"]:
            target = r["target_gflops"]
            ratio = (lambda x: f"{x:.3f}") if target else (lambda x: "-")
            sel = " / ".join(f"{v:.0f}" for v in r["selection_rate"].values())
            lines.append(
                f"| {tag} | {r['run']} | {f'{target:.5f}' if target else '-'} "
                f"| {r['val_gflops']:.5f} | {ratio(r['val_ratio'])} | "
                f"{ratio(r['final_val_ratio']) if r.get('calibrated_val_gflops') else '-'} | "
                f"{r['test_gflops']:.5f} | "
                f"{ratio(r['test_ratio'])} | {r['top1']:.2f} | {sel} | {r['scale']:.3f} |"
            )
    fusion = seeds[0]["fusion_gflops"] if seeds else float("nan")
    lines.append(f"\nWeighted fusion's cost: {fusion:.5f} GFLOPs per video (10 segments).")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Validation GFLOPs (top) and the scale on the cost weights (bottom) per epoch of the
    joint and fine-tune stages, one line per run, solid for the tuning seed."""
    from adamml._pyplot import pyplot, save_figure

    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
    colours = ["tab:grey", "tab:blue", "tab:red", "tab:green", "tab:purple"]
    for s in result["seeds"]:
        style = "-" if s["tuned_on"] else "--"
        for colour, r in zip(colours, s["runs"]):
            xs = list(range(1, len(r["curve"]) + 1))
            label = f"{r['run']}, seed {s['seed']}"
            top.plot(xs, [c["val_gflops"] for c in r["curve"]], style, color=colour, label=label)
            bottom.plot(xs, [c["scale"] for c in r["curve"]], style, color=colour)
            if r["target_gflops"] and s["tuned_on"]:
                top.axhline(r["target_gflops"], color=colour, lw=0.8, alpha=0.5)
    joint = result["schedule"]["joint_epochs"]
    for ax in (top, bottom):
        ax.axvline(joint + 0.5, color="black", lw=0.6, alpha=0.4)
        ax.grid(alpha=0.3)
    fusion = result["seeds"][0]["fusion_gflops"]
    top.axhline(fusion, color="black", lw=0.8, ls=":", label="weighted fusion")
    top.set_ylabel("validation GFLOPs per video")
    top.set_ylim(bottom=0)
    top.legend(fontsize=7, ncol=2)
    top.set_title("loss.target_gflops on SyntheticAV (thin lines: targets)", fontsize=10)
    bottom.set_yscale("log")
    bottom.set_ylabel("scale s on the cost weights")
    bottom.set_xlabel(f"epoch (joint 1-{joint}, then fine-tune with the policy frozen)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _die_with_parent() -> None:
    """Worker initialiser: exit when the benchmark's process is gone (no orphaned runs)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/target_gflops")
    parser.add_argument("--json", default="benchmarks/results/target_gflops.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[TUNE_SEED, 1])
    parser.add_argument(
        "--targets", type=float, nargs="+", default=[0.4, 0.6], help="fractions of fusion's cost"
    )
    parser.add_argument(
        "--videos", type=int, nargs=3, default=[300, 100, 300], metavar=("TRAIN", "VAL", "TEST")
    )
    parser.add_argument(
        "--data", choices=sorted(DATA), default="rich", help="SyntheticAV options (see DATA)"
    )
    parser.add_argument("--penalty", choices=("blockdrop", "mean"), help="loss.penalty")
    parser.add_argument("--step", type=float, help="loss.target_step")
    parser.add_argument("--jobs", type=int, default=2, help="seeds trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per seed")
    parser.add_argument("--plot", help="also draw the per-epoch figure to this PNG")
    parser.add_argument(
        "--plot-only", action="store_true", help="draw --plot from --json without training"
    )
    args = parser.parse_args()
    if args.plot_only:
        print(plot(json.loads(Path(args.json).read_text()), args.plot or "target_gflops.png"))
        return
    options = dict(DATA[args.data])
    print(
        f"# target_gflops: {cpu_model()}, seeds {args.seeds}, targets {args.targets}, "
        f"{args.jobs} at a time, {args.threads} thread(s) each",
        flush=True,
    )
    start = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=args.jobs, mp_context=get_context("spawn"), initializer=_die_with_parent
    ) as pool:
        futures = [
            pool.submit(
                run_seed,
                seed,
                args.out,
                args.targets,
                tuple(args.videos),
                options,
                args.penalty,
                args.step,
                args.threads,
            )
            for seed in args.seeds
        ]
        seeds = [f.result() for f in futures]
    table = format_table(seeds)
    print(table)
    result = {
        "cpu": cpu_model(),
        "model": MODEL,
        "schedule": SCHEDULE,
        "videos": args.videos,
        "data": args.data,
        "options": options,
        "penalty": args.penalty or "blockdrop",
        "target_step": args.step,
        "targets": args.targets,
        "seconds": round(time.perf_counter() - start),
        "seeds": seeds,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot(result, args.plot)}", file=sys.stderr)


if __name__ == "__main__":
    main()
