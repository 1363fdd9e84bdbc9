"""Robustness sweep: AdaMML's default recipe, untouched, on SyntheticAV variants it was not
tuned on.

Each cell trains, with `adamml.experiments.compare`, AdaMML (pre-training stages, warm-up,
joint, fine-tune), weighted fusion and two random policies at AdaMML's cost (all from AdaMML's
pre-trained recognition backbones), and reports the three relations the learning issue asks
for: AdaMML minus fusion (top-1 points), AdaMML's GFLOPs over fusion's, and AdaMML minus random
(points). The two random policies match AdaMML's cost in two ways:

- ``random``: each modality kept with AdaMML's own selection rate (the stricter baseline: it
  also copies how often AdaMML uses each modality, which AdaMML learned);
- ``random_cost``: the paper's random policy (Table 8: one keep probability for every
  modality) with that probability set so that its GFLOPs equal AdaMML's.

A cell passes when AdaMML >= fusion - 2, GFLOPs ratio <= 0.60 and AdaMML >= random + 5; the
table reports the pass for each random baseline.

The configs name only what a user must: the model (``test_adamml_rgb_audio``), ``num_classes``,
the data, the schedule (3 warm-up / 8 joint / 3 fine-tune epochs, the issue's plain config) and
the seed. Everything else is the library's default.

Usage::

    python benchmarks/robustness.py --out runs/robustness --jobs 2
    python benchmarks/robustness.py --out runs/robustness --only default_mp4   # one variant
    python benchmarks/robustness.py --out runs/small --only default --videos 240 144 240
    python benchmarks/robustness.py --list
    python benchmarks/robustness.py --out runs/rob_plr --set optim.policy_lr=0.003   # a lever

Cells run in ``--jobs`` worker processes (one torch thread each); a finished cell is read back
from ``OUT/<cell>/cell.json``, so an interrupted sweep continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import cpu_model

from adamml.data.synthetic.source import syntheticav_source

SCHEDULE = {"warmup_epochs": 3, "joint_epochs": 8, "finetune_epochs": 3}
METHODS = ("adamml", "fusion", "random", "random_cost")


@dataclass(frozen=True)
class Variant:
    """One SyntheticAV variant.

    Attributes:
        name: the cell's name.
        what: what it changes, for the table.
        num_classes: K.
        options: `SyntheticConfig` fields.
        mp4: write the videos as mp4 files and train from manifests (the real data path).
        sweep: part of the sweep (False: run only when named with ``--only``, a control).
    """

    name: str
    what: str
    num_classes: int = 6
    options: Mapping[str, Any] = field(default_factory=dict)
    mp4: bool = False
    sweep: bool = True


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "sound_only",
        "classes told apart only by sound (no visual evidence)",
        6,
        {"p_rgb_only": 0.0, "p_both": 0.0, "p_audio_only": 0.3, "p_neither": 0.7},
    ),
    Variant(
        "picture_only",
        "only by picture (no audio evidence), 4 classes",
        4,
        {"p_audio_only": 0.0, "p_both": 0.0, "p_rgb_only": 0.3, "p_neither": 0.7},
    ),
    Variant(
        "motion12", "12 classes told apart by shape and motion direction", 12, {"motion_pairs": 6}
    ),
    Variant(
        "evidence",
        "evidence probabilities: more audio, more both",
        6,
        {"p_rgb_only": 0.1, "p_audio_only": 0.15, "p_both": 0.15, "p_neither": 0.6},
    ),
    Variant(
        "distractors",
        "strong distractors: 5 sprites, 2.5 sounds/segment, noise 8",
        6,
        {"distractors": 5, "audio_distractor_rate": 2.5, "frame_noise": 8.0},
    ),
    Variant(
        "long",
        "videos twice as long, evidence in 20 short bursts",
        6,
        {"frames": 320, "evidence_segments": 20},
    ),
    Variant("default_mp4", "SyntheticAV defaults from written mp4 files", 6, {}, mp4=True),
    Variant(
        "default",
        "SyntheticAV defaults in memory (a control for the mp4 cell: same data, no files)",
        6,
        {},
        sweep=False,
    ),
)
IN_MEMORY = tuple(v.name for v in VARIANTS if not v.mp4)


def cell_config(
    v: Variant, seed: int, videos: tuple[int, int, int], folder: Path
) -> dict[str, Any]:
    """The plain config of one cell: model, num_classes, data, schedule and seed."""
    if v.mp4:
        data_dir = folder / "data"
        if not (data_dir / "test.csv").exists():
            from adamml.data.synthetic.writer import write_synthetic_av

            write_synthetic_av(
                data_dir,
                videos[0],
                num_val=videos[1],
                num_test=videos[2],
                num_classes=v.num_classes,
                seed=seed,
                **dict(v.options),
            )
        data = {
            "train": str(data_dir / "train.csv"),
            "val": str(data_dir / "val.csv"),
            "test": str(data_dir / "test.csv"),
        }
    else:
        data = {
            s: syntheticav_source(n, s, v.options) for s, n in zip(("train", "val", "test"), videos)
        }
    return {
        "model": "test_adamml_rgb_audio",
        "num_classes": v.num_classes,
        "data": data,
        "schedule": dict(SCHEDULE),
        "seed": seed,
    }


def _die_with_parent() -> None:
    """Worker initialiser: exit when the sweep's process is gone (killed sweeps leave no
    orphaned cells training in the background)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def with_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with dotted keys set (``{"optim.policy_lr": 0.003}``): a lever tried on the
    whole sweep instead of the defaults.

    Example:
        >>> with_overrides({"seed": 0}, {"optim.policy_lr": 0.003})
        {'seed': 0, 'optim': {'policy_lr': 0.003}}
    """
    out = json.loads(json.dumps(raw))
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SystemExit(f"--set {key}: {part!r} is not a section of the config")
        node[leaf] = value
    return out


def _parse_set(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as a YAML scalar (``0.003``, ``true``, ``sample``)."""
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set takes KEY=VALUE; got {item!r}")
    return key, yaml.safe_load(value)


def run_cell(
    name: str,
    seed: int,
    out: str,
    videos: tuple[int, int, int],
    threads: int,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one cell (in a worker process) and return its summary."""
    import torch

    from adamml.experiments import compare

    torch.set_num_threads(threads)
    v = next(x for x in VARIANTS if x.name == name)
    folder = Path(out) / f"{name}-s{seed}"
    done = folder / "cell.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    raw = with_overrides(cell_config(v, seed, videos, folder), overrides or {})
    result = compare(raw, folder, methods=METHODS, echo=lambda line: None)
    rel = result.relations()
    both = rel["adamml_minus_fusion"] >= -2.0 and rel["gflops_ratio"] <= 0.60
    summary = {
        "variant": name,
        "seed": seed,
        "what": v.what,
        "config": raw,
        **rel,
        "random_p": result.random_p,
        "random_cost_p": result.random_cost_p,
        "passed": bool(both and rel["adamml_minus_random"] >= 5.0),
        "passed_cost": bool(both and rel["adamml_minus_random_cost"] >= 5.0),
        "top1": {m: result.metrics[m]["top1"] for m in result.metrics},
        "selection_rate": {m: result.metrics[m]["selection_rate"] for m in result.metrics},
        "pretrain_top1": {
            s: v["top1"] for s, v in (result.metrics["adamml"].get("pretrain") or {}).items()
        },
        "warnings": result.metrics["adamml"].get("warnings", []),
        "seconds": round(time.perf_counter() - start, 1),
    }
    done.write_text(json.dumps(summary, indent=1))
    return summary


def _num(x: float | None, fmt: str) -> str:
    """``x`` formatted, or "-" for a figure a cell has not got (a cell.json from before the
    cost-matched baseline)."""
    return "-" if x is None else format(x, fmt)


def _verdict(ok: bool | None, yes: str = "yes", no: str = "**no**") -> str:
    return "-" if ok is None else (yes if ok else no)


def format_table(cells: list[dict[str, Any]]) -> str:
    """The sweep as a markdown table, one row per cell."""
    head = (
        "| variant | seed | AdaMML top-1 | fusion | random (rates) | random (cost) "
        "| AdaMML - fusion | GFLOPs ratio | AdaMML - random (rates) | AdaMML - random (cost) "
        "| AdaMML RGB / audio sel. % | pass (rates) | pass (cost) |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        t, sel = c["top1"], c["selection_rate"]["adamml"]
        rates = " / ".join(f"{sel[m]:.0f}" for m in sel)
        lines.append(
            f"| {c['variant']} | {c['seed']} | {t['adamml']:.2f} | {t['fusion']:.2f} | "
            f"{t['random']:.2f} | {_num(t.get('random_cost'), '.2f')} | "
            f"{c['adamml_minus_fusion']:+.2f} | {c['gflops_ratio']:.3f} | "
            f"{c['adamml_minus_random']:+.2f} | "
            f"{_num(c.get('adamml_minus_random_cost'), '+.2f')} | {rates} | "
            f"{_verdict(c['passed'])} | {_verdict(c.get('passed_cost'))} |"
        )
    for key, what in (("passed", "per-modality-rate"), ("passed_cost", "cost-matched")):
        judged = [c for c in cells if c.get(key) is not None]
        passed = sum(c[key] for c in judged)
        lines.append(
            f"\n{passed} of {len(judged)} cells pass all three relations against the "
            f"{what} random policy."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/robustness")
    parser.add_argument("--only", nargs="+", help="variant names (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--videos",
        type=int,
        nargs=3,
        default=[400, 150, 400],
        metavar=("TRAIN", "VAL", "TEST"),
        help="videos per split (in memory)",
    )
    parser.add_argument(
        "--mp4-videos",
        type=int,
        nargs=3,
        default=[240, 144, 240],
        metavar=("TRAIN", "VAL", "TEST"),
        help="videos per split (mp4 cell)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="cells trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cell")
    parser.add_argument(
        "--set",
        type=_parse_set,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key in every cell (a lever to try: optim.policy_lr=0.003); "
        "use a fresh --out",
    )
    parser.add_argument("--list", action="store_true", help="print the variants and stop")
    args = parser.parse_args()
    if args.list:
        for v in VARIANTS:
            print(f"{v.name:<14} K={v.num_classes:<3} {v.what}  {dict(v.options)}")
        return
    names = args.only or [v.name for v in VARIANTS if v.sweep]
    unknown = sorted(set(names) - {v.name for v in VARIANTS})
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {[v.name for v in VARIANTS]}")
    jobs = [(n, s) for n in names for s in (args.seeds if n in IN_MEMORY else args.seeds[:1])]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"# robustness: {cpu_model()}, {len(jobs)} cells, "
        f"{args.jobs} at a time, {args.threads} thread(s) each"
        + "".join(f", {k}={v}" for k, v in args.set),
        flush=True,
    )
    cells: list[dict[str, Any]] = []
    ctx = get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=args.jobs, mp_context=ctx, initializer=_die_with_parent
    ) as pool:
        futures = {
            pool.submit(
                run_cell,
                n,
                s,
                str(out),
                tuple(args.mp4_videos if n not in IN_MEMORY else args.videos),
                args.threads,
                dict(args.set),
            ): (n, s)
            for n, s in jobs
        }
        for fut in futures:
            cell = fut.result()
            cells.append(cell)
            print(
                f"{cell['variant']}-s{cell['seed']}: AdaMML-fusion "
                f"{cell['adamml_minus_fusion']:+.2f}, GFLOPs x{cell['gflops_ratio']:.3f}, "
                f"AdaMML-random {cell['adamml_minus_random']:+.2f} "
                f"(cost-matched {_num(cell.get('adamml_minus_random_cost'), '+.2f')}; "
                f"{_verdict(cell['passed'], 'pass', 'FAIL')} / "
                f"{_verdict(cell.get('passed_cost'), 'pass', 'FAIL')}, {cell['seconds']:.0f} s)",
                flush=True,
            )
    table = format_table(cells)
    print(table)
    (out / "robustness.md").write_text(table + "\n")
    (out / "robustness.json").write_text(json.dumps(cells, indent=1))


if __name__ == "__main__":
    main()
