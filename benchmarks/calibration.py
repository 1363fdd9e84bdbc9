"""Any budget from one trained model: calibrate a checkpoint to shares of fusion's GFLOPs on a
validation split, then measure the same thresholds on held-out videos.

For each target (a share of weighted fusion's GFLOPs: every modality on every segment, no
policy, from `adamml.flops`), `adamml.calibrate` sets the thresholds on the validation split;
the table gives the GFLOPs reached there and the accuracy, then the GFLOPs and accuracy of the
same thresholds on each held-out source (the drift is the held-out GFLOPs against the target).
The first row is the checkpoint as trained (thresholds 0).

Usage (a run of ``adamml train`` on SyntheticAV, seed 2)::

    python benchmarks/calibration.py runs/adamml/best.pt \\
        --val syntheticav:100,split=val --held-out syntheticav:300,split=test \\
        --held-out syntheticav:300,split=test@7 --targets 30 50 70 --json out.json

``SOURCE@SEED`` builds the source with another data seed (other videos); without it the
checkpoint's ``config.seed`` is used, as ``adamml eval`` does.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _common import cpu_model

from adamml.engine.calibrate import calibrate, fusion_gflops
from adamml.engine.distributed import DistInfo
from adamml.engine.evaluate import checkpoint_dataset, evaluate
from adamml.engine.instantiate import model_from_checkpoint
from adamml.engine.loaders import make_loader
from adamml.engine.metrics import summarize


def loader(spec: str, model, ckpt, segments: int):
    source, _, seed = spec.partition("@")
    ds = checkpoint_dataset(
        source, model, ckpt, segments=segments, seed=int(seed) if seed else None
    )
    return make_loader(ds, batch_size=16, info=DistInfo(), train=False, seed=0)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--val", required=True, help="the calibration source")
    parser.add_argument("--held-out", nargs="+", default=[], help="SOURCE or SOURCE@SEED")
    parser.add_argument("--targets", nargs="+", type=float, default=[30.0, 50.0, 70.0])
    parser.add_argument("--rule", default="cost", choices=("cost", "shared"))
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, ckpt = model_from_checkpoint(args.checkpoint)
    fusion = fusion_gflops(model, args.segments)
    val = loader(args.val, model, ckpt, args.segments)
    held = {spec: loader(spec, model, ckpt, args.segments) for spec in args.held_out}
    print(f"# calibration: {cpu_model()}, {args.threads} threads, torch {torch.__version__}")
    print(f"# {args.checkpoint}; fusion {fusion:.5g} GFLOPs per video, rule {args.rule}")
    head = "| target | target GFLOPs | val GFLOPs (vs target) | val top-1 | thresholds | passes |"
    for spec in held:
        head += f" {spec} GFLOPs (drift) | {spec} top-1 |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    rows = []
    for share in [None, *args.targets]:
        start = time.perf_counter()
        if share is None:
            model.policy.set_thresholds(torch.zeros(len(model.policy.modalities)))
            m = summarize(evaluate(model, val, DistInfo()))
            target, reached, passes = None, m["gflops"], 0
        else:
            target = share / 100.0 * fusion
            result = calibrate(model, val, target, rule=args.rule)
            m, reached, passes = result.metrics, result.gflops, result.passes
        row = {
            "target_share": share,
            "target_gflops": target,
            "val_gflops": reached,
            "val_top1": m["top1"],
            "val_selection": m["selection_rate"],
            "thresholds": model.policy.threshold_dict(),
            "passes": passes,
            "held_out": {},
        }
        for spec, data in held.items():
            h = summarize(evaluate(model, data, DistInfo()))
            row["held_out"][spec] = {
                "gflops": h["gflops"],
                "top1": h["top1"],
                "selection": h["selection_rate"],
                "num_videos": h["num_videos"],
            }
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        vs = f" ({100 * (reached / target - 1):+.2f} %)" if target else ""
        t = ", ".join(f"{k} {v:+.3f}" for k, v in row["thresholds"].items())
        line = (
            f"| {'as trained' if share is None else f'{share:g} %'} | "
            f"{'-' if target is None else f'{target:.5f}'} | {reached:.5f}{vs} | "
            f"{m['top1']:.2f} | {t} | {passes} |"
        )
        for h in row["held_out"].values():
            drift = f" ({100 * (h['gflops'] / target - 1):+.2f} %)" if target else ""
            line += f" {h['gflops']:.5f}{drift} | {h['top1']:.2f} |"
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"checkpoint": args.checkpoint, "fusion_gflops": fusion, "rows": rows}, fh)


if __name__ == "__main__":
    main()
