"""Which tiny visual policy extractor learns from the policy's view?

The recipe pre-trains the policy's RGB extractor as a classifier on the policy's view (2 frames
at 24x24 for the ``test_*`` models) before joint training; where that stage stays near chance,
the joint policy cannot tell segments apart and keeps RGB everywhere (docs/training.md). This
script runs exactly that stage, its config taken from `adamml.engine.recipe.pretraining_plan`
(``adamml.engine.recipe:part_model`` with part ``policy.rgb``, Adam 3e-3, 20 epochs), with each
candidate extractor on several SyntheticAV variants of the robustness sweep, and prints
validation top-1 and the extractor's cost as a share of the tiny RGB recognition network.

Usage::

    python benchmarks/policy_extractor.py --out runs/policy_extractor --jobs 2
    python benchmarks/policy_extractor.py --out runs/pe --extractors tiny_policy --only default

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


def stage_config(extractor: str, k: int, options: dict[str, Any], seed: int) -> TrainConfig:
    """The recipe's ``policy.rgb`` pre-training stage (`adamml.engine.recipe.pretraining_plan`)
    of a plain ``test_adamml_rgb_audio`` config whose RGB policy extractor is ``extractor``."""
    from adamml.engine import TrainConfig
    from adamml.engine.instantiate import build_model
    from adamml.engine.recipe import pretraining_plan

    plain = TrainConfig.from_dict(
        {
            "model": "test_adamml_rgb_audio",
            "model_args": {
                "policy_args": {"backbones": {"rgb": extractor, "audio": "tiny_audio_policy"}}
            },
            "num_classes": k,
            "data": {
                "train": syntheticav_source(400, "train", options),
                "val": syntheticav_source(150, "val", options),
            },
            "keep_checkpoints": 1,
            "workers": 0,
            "seed": seed,
        }
    )
    model = build_model(plain.model, plain.num_classes, plain.model_args)
    return next(st.config for st in pretraining_plan(plain, model) if st.name == "policy.rgb")


def run_one(extractor: str, case: int, out: str) -> dict[str, Any]:
    """Train one stage in a worker process and return its row."""
    import torch

    torch.set_num_threads(1)
    from adamml.engine import Trainer

    name, k, options, seed = CASES[case]
    folder = Path(out) / f"{extractor}-{name}-s{seed}"
    start = time.perf_counter()
    done = folder / "metrics.json"
    if done.exists():
        metrics = json.loads(done.read_text())
    else:
        metrics = Trainer(stage_config(extractor, k, options, seed), folder).run()
    return {
        "extractor": extractor,
        "variant": name,
        "seed": seed,
        "num_classes": k,
        "top1": metrics["top1"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def extractor_share(extractor: str) -> float:
    """The extractor's GFLOPs on one policy view over the tiny RGB recognition network's."""
    import adamml
    from adamml.flops import measure_cost_table

    model = adamml.create_model(
        "test_adamml_rgb_audio",
        num_classes=6,
        policy_args={"backbones": {"rgb": extractor, "audio": "tiny_audio_policy"}},
    )
    table = measure_cost_table(model)
    return table.policy["rgb"] / table.recognition["rgb"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/policy_extractor")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--extractors", nargs="+", default=list(EXTRACTORS))
    ap.add_argument("--only", nargs="+", help="variant names")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    cases = [i for i, c in enumerate(CASES) if not args.only or c[0] in args.only]
    if not cases:
        sys.exit(f"no case matches {args.only}; known: {sorted({c[0] for c in CASES})}")
    print(f"# policy_extractor: {cpu_model()}, {args.jobs} at a time, 1 thread each", flush=True)
    shares = {e: extractor_share(e) for e in args.extractors}
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(run_one, e, i, args.out) for i in cases for e in args.extractors]
        rows = [f.result() for f in futures]
    print("| extractor | cost / tiny RGB network | variant | seed | K | val top-1 | chance |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['extractor']} | {100 * shares[r['extractor']]:.1f} % | {r['variant']} "
            f"| {r['seed']} | {r['num_classes']} | {r['top1']:.2f} | {100 / r['num_classes']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"cpu": cpu_model(), "shares": shares, "rows": rows}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
