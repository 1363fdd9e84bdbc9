"""How large should an eval chunk be? Time of the fast path against its activation budget.

On a CPU a batch whose largest activation outgrows the caches runs far below the machine's
matrix peak, so `adamml.backbones.fast` runs segments in chunks whose largest activation fits
``chunk_mb``. This script times the three full-size networks of ``adamml_rgb_audio`` (the TSN
ResNet-50 on RGB, the policy's MobileNetV2 on its 4x160x160 view, MobileNetV2 on the 256x256
spectrogram) in eval, on 10 and 80 segments, for several budgets, all in one run, and prints
each time relative to the best budget of its row. ``DEFAULT_CHUNK_MB["cpu"]`` is the budget
with the best worst-case ratio.

``--compare A B`` instead times the whole policy of ``adamml_rgb_audio`` (both extractors and
the LSTM, forced decisions, as ``create_model(...).eval()`` runs it) under the budgets A and B,
alternating them in one process, at batch 1 and 8.

Usage: ``python benchmarks/chunking.py [--threads 2] [--repeats 3] [--only policy]
[--compare 24 48]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from _common import best_seconds, cpu_model

import adamml
from adamml.backbones import create_backbone

BUDGETS = (6.0, 12.0, 24.0, 48.0, 96.0, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segments", type=int, nargs="+", default=[10, 80])
    parser.add_argument("--only", help="time only the networks whose name contains this")
    parser.add_argument(
        "--compare", type=float, nargs=2, metavar="MIB", help="A/B two budgets on the policy"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = cpu_model()
    print(f"# chunking: {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    if args.compare:
        compare_on_policy(args.compare, args.repeats)
        return
    nets = {
        "resnet50_tsn (rgb 8x3x224x224)": (
            create_backbone("resnet50_tsn", modality="rgb", num_classes=31),
            (8, 3, 224, 224),
        ),
        "mobilenetv2_policy (4x3x160x160)": (
            create_backbone("mobilenetv2_policy", modality="rgb"),
            (4, 3, 160, 160),
        ),
        "mobilenetv2_audio (1x1x256x256)": (
            create_backbone("mobilenetv2_audio", modality="audio", num_classes=31),
            (1, 1, 256, 256),
        ),
    }
    nets = {k: v for k, v in nets.items() if not args.only or args.only in k}
    head = (
        "| network | segments | "
        + " | ".join(f"{b:g} MiB" if b else "no chunks" for b in BUDGETS)
        + " |"
    )
    print(head)
    print("|" + "---|" * (len(BUDGETS) + 2))
    worst = {b: 0.0 for b in BUDGETS}
    for name, (net, shape) in nets.items():
        net.eval()
        for n in args.segments:
            x = torch.randn(n, *shape)
            times = {}
            with torch.inference_mode():
                for b in BUDGETS:
                    net.inference_options = net.inference_options.replace(chunk_mb=b)
                    times[b] = best_seconds(lambda: net(x), args.repeats)
            best = min(times.values())
            for b in BUDGETS:
                worst[b] = max(worst[b], times[b] / best)
            print(
                f"| {name} | {n} | "
                + " | ".join(f"{times[b]:.3f} s ({times[b] / best:.2f})" for b in BUDGETS)
                + " |",
                flush=True,
            )
    choice = min(worst, key=lambda b: worst[b] if b is not None else float("inf"))
    print(
        "\nworst ratio to the best budget: "
        + ", ".join(f"{b if b else 'none'}: {w:.2f}" for b, w in worst.items())
    )
    print(f"best worst-case budget: {choice} MiB")


def compare_on_policy(budgets: list[float], repeats: int, segments: int = 10) -> None:
    """The policy of ``adamml_rgb_audio`` under two budgets, alternated call by call."""
    model = adamml.create_model("adamml_rgb_audio", num_classes=31).eval()
    print(f"\n| batch | {budgets[0]:g} MiB best (ms) | {budgets[1]:g} MiB best (ms) | ratio |")
    print("|---|---|---|---|")
    with torch.inference_mode():
        for b in (1, 8):
            x = {m: torch.randn(b, segments, *s.shape) for m, s in model.input_spec.items()}
            off = torch.zeros(b, segments, len(model.modalities))  # the policy alone runs
            times: dict[float, list[float]] = {mb: [] for mb in budgets}
            for _ in range(repeats):
                for mb in budgets:
                    model.configure_inference(chunk_mb=mb)
                    model(x, decisions=off)  # warm-up (the first one builds the copy)
                    start = time.perf_counter()
                    model(x, decisions=off)
                    times[mb].append(time.perf_counter() - start)
            a, c = (min(times[mb]) for mb in budgets)
            print(f"| {b} | {a * 1e3:.0f} | {c * 1e3:.0f} | {c / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
