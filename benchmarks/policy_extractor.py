"""Which policy extractor learns from the policy's view?

The recipe pre-trains each of the policy's extractors as a classifier on the policy's view (for
the ``test_*`` models 2 RGB frames at 24x24; for the full-size ``adamml_rgb_audio`` 4 RGB frames
at 160x160 and the 1x256x256 spectrogram) before joint training; where that stage stays near
chance, the joint policy cannot tell segments apart and keeps RGB everywhere (docs/training.md).
This script runs exactly that stage, its config taken from
`adamml.engine.recipe.pretraining_plan` (``adamml.engine.recipe:part_model`` with part
``policy.<modality>``, Adam 3e-3, 20 epochs), with each candidate extractor on several
SyntheticAV variants of the robustness sweep, and prints validation top-1 and the extractor's
cost as a share of the RGB recognition network.

Usage::

    python benchmarks/policy_extractor.py --out runs/policy_extractor --jobs 2
    python benchmarks/policy_extractor.py --out runs/pe --extractors tiny_policy --only default
    # the paper's full-size MobileNetV2s against the optional narrow ResNet-10s (docs/speed.md)
    python benchmarks/policy_extractor.py --out runs/pe_full --model adamml_rgb_audio \
        --part policy.audio --extractors mobilenetv2_audio_policy resnet10_narrow_audio_policy

Each run is an ordinary training folder ``OUT/<extractor>-<variant>-s<seed>/`` (read back when
its ``metrics.json`` exists, so an interrupted run continues).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import cpu_model

from adamml.data.synthetic.source import syntheticav_source

if TYPE_CHECKING:
    from adamml.engine import TrainConfig

# (name, K, SyntheticConfig options, seed): the sweep's cells where the policy kept RGB on every
# segment, and one where it learned (distractors, seed 0)
CASES: tuple[tuple[str, int, dict[str, Any], int], ...] = (
    ("default", 6, {}, 1),
    ("motion12", 12, {"motion_pairs": 6}, 0),
    ("long", 6, {"frames": 320, "evidence_segments": 20}, 1),
    ("distractors", 6, {"distractors": 5, "audio_distractor_rate": 2.5, "frame_noise": 8.0}, 1),
    ("distractors", 6, {"distractors": 5, "audio_distractor_rate": 2.5, "frame_noise": 8.0}, 0),
)
EXTRACTORS = ("tiny_policy", "tiny_policy_resnet")


def stage_config(
    extractor: str,
    k: int,
    options: dict[str, Any],
    seed: int,
    model: str = "test_adamml_rgb_audio",
    part: str = "policy.rgb",
    videos: tuple[int, int] = (400, 150),
    epochs: int | None = None,
) -> TrainConfig:
    """The recipe's ``part`` pre-training stage (`adamml.engine.recipe.pretraining_plan`) of a
    plain ``model`` config whose policy extractor for that part is ``extractor``."""
    from adamml.engine import TrainConfig
    from adamml.engine.instantiate import build_model
    from adamml.engine.recipe import pretraining_plan

    plain = TrainConfig.from_dict(
        {
            "model": model,
            "model_args": {"policy_backbones": {part.removeprefix("policy."): extractor}},
            "num_classes": k,
            "data": {
                "train": syntheticav_source(videos[0], "train", options),
                "val": syntheticav_source(videos[1], "val", options),
            },
            "keep_checkpoints": 1,
            "workers": 0,
            "seed": seed,
        }
    )
    built = build_model(plain.model, plain.num_classes, plain.model_args)
    stages = {st.name: st.config for st in pretraining_plan(plain, built)}
    # an extractor with a recognition network's architecture is not pre-trained on its own:
    # the recipe reuses that network's stage (the paper's audio MobileNetV2), so that stage runs
    config = stages.get(part) or stages[part.removeprefix("policy.")]
    if epochs is not None:
        config = replace(config, schedule=replace(config.schedule, epochs=epochs))
    return config


def run_one(
    extractor: str,
    case: int,
    out: str,
    model: str = "test_adamml_rgb_audio",
    part: str = "policy.rgb",
    seed: int | None = None,
    videos: tuple[int, int] = (400, 150),
    epochs: int | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Train one stage in a worker process (the case's seed unless ``seed``) and return its
    row."""
    import torch

    torch.set_num_threads(threads)
    from adamml.engine import Trainer

    name, k, options, case_seed = CASES[case]
    seed = case_seed if seed is None else seed
    folder = Path(out) / f"{extractor}-{name}-s{seed}"
    start = time.perf_counter()
    done = folder / "metrics.json"
    if done.exists():
        metrics = json.loads(done.read_text())
    else:
        config = stage_config(extractor, k, options, seed, model, part, videos, epochs)
        metrics = Trainer(config, folder).run()
    return {
        "extractor": extractor,
        "variant": name,
        "seed": seed,
        "num_classes": k,
        "top1": metrics["top1"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def extractor_share(
    extractor: str, model: str = "test_adamml_rgb_audio", part: str = "policy.rgb"
) -> float:
    """The extractor's GFLOPs on one policy view over the RGB recognition network's."""
    import adamml
    from adamml.flops import measure_cost_table

    modality = part.removeprefix("policy.")
    built = adamml.create_model(model, num_classes=6, policy_backbones={modality: extractor})
    table = measure_cost_table(built)
    return table.policy[modality] / table.recognition["rgb"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/policy_extractor")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--extractors", nargs="+", default=list(EXTRACTORS))
    ap.add_argument("--only", nargs="+", help="variant names")
    ap.add_argument("--model", default="test_adamml_rgb_audio", help="whose policy stage to run")
    ap.add_argument("--part", default="policy.rgb", help="the stage: policy.<modality>")
    ap.add_argument("--seeds", type=int, nargs="+", help="run each variant with these seeds")
    ap.add_argument("--videos", type=int, nargs=2, default=(400, 150), help="train and val videos")
    ap.add_argument("--epochs", type=int, help="instead of the recipe's stage epochs (20)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    cases = [i for i, c in enumerate(CASES) if not args.only or c[0] in args.only]
    if not cases:
        sys.exit(f"no case matches {args.only}; known: {sorted({c[0] for c in CASES})}")
    print(
        f"# policy_extractor: {cpu_model()}, {args.jobs} at a time, {args.threads} thread(s) each",
        flush=True,
    )
    shares = {e: extractor_share(e, args.model, args.part) for e in args.extractors}
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                run_one,
                e,
                i,
                args.out,
                args.model,
                args.part,
                seed,
                (*args.videos,),
                args.epochs,
                args.threads,
            )
            for i in cases
            for seed in args.seeds or [CASES[i][3]]
            for e in args.extractors
        ]
        rows = [f.result() for f in futures]
    print(
        f"# {args.model}, stage {args.part}, {args.videos[0]} train / {args.videos[1]} val "
        f"videos, {args.epochs or 'the recipe'} epochs"
    )
    print("| extractor | cost / RGB network | variant | seed | K | val top-1 | chance | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['extractor']} | {100 * shares[r['extractor']]:.1f} % | {r['variant']} "
            f"| {r['seed']} | {r['num_classes']} | {r['top1']:.2f} | {100 / r['num_classes']:.1f} "
            f"| {r['seconds']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "cpu": cpu_model(),
                    "model": args.model,
                    "part": args.part,
                    "shares": shares,
                    "rows": rows,
                },
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
