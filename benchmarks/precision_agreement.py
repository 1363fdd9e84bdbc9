"""How far bf16 (or fp16) predictions and decisions agree with fp32 on a trained model's test set.

Loads a training checkpoint (``best.pt``/``last.pt`` of ``adamml train`` or ``adamml demo``),
evaluates it on a data source with the engine's evaluation loop at float32 and at each
``--precision``, and prints top-1 agreement with float32, decision agreement per modality,
top-1 accuracy and GFLOPs side by side, and the float32 top-2 margins of the videos whose
prediction changed.

Usage (the demo's test split, seed 0)::

    python benchmarks/precision_agreement.py demo_out/adamml/best.pt \\
        --data syntheticav:300,split=test --seed 0 --precision bf16
"""

from __future__ import annotations

import argparse

import torch
from _common import bf16_matrix_units, cpu_model

from adamml.engine.distributed import DistInfo
from adamml.engine.evaluate import evaluate, load_for_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", required=True, help="a manifest or syntheticav: source")
    parser.add_argument("--seed", type=int, default=0, help="the data source's seed")
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--precision", nargs="+", default=["bf16"], choices=("bf16", "fp16"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, loader = load_for_evaluation(
        args.checkpoint, args.data, segments=args.segments, seed=args.seed
    )
    units = bf16_matrix_units()
    print(
        f"# precision_agreement: {cpu_model()}, bf16 matrix units: "
        f"{', '.join(units) or 'none'}; {args.checkpoint} on {args.data} (seed {args.seed}), "
        f"{len(loader.dataset)} videos"
    )

    results = {}
    for precision in ("fp32", *args.precision):
        model.set_precision(precision)
        results[precision] = evaluate(model, loader, DistInfo())
    ref = results["fp32"]
    top2 = ref.logits.softmax(-1).topk(2, dim=-1).values
    margin = top2[:, 0] - top2[:, 1]
    mods = ref.modalities
    print(
        "| precision | top-1 agrees with fp32 | "
        + " | ".join(f"{m} decisions agree" for m in mods)
        + " | top-1 accuracy | GFLOPs/video | fp32 margins of changed predictions |"
    )
    print("|---" * (5 + len(mods)) + "|")
    for precision, res in results.items():
        pred, ref_pred = res.logits.argmax(-1), ref.logits.argmax(-1)
        same = pred == ref_pred
        dec = [
            (res.decisions[..., k] == ref.decisions[..., k]).float().mean().item()
            for k in range(len(mods))
        ]
        acc = (pred == res.target).float().mean().item()
        changed = ", ".join(f"{v:.3f}" for v in margin[~same].tolist()) or "-"
        print(
            f"| {precision} | {100 * same.float().mean().item():.2f} % ({int(same.sum())}/"
            f"{len(same)}) | "
            + " | ".join(f"{100 * d:.2f} %" for d in dec)
            + f" | {100 * acc:.2f} % | {res.gflops.mean().item():.4g} | {changed} |"
        )


if __name__ == "__main__":
    main()
