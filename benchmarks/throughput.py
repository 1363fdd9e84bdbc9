"""The default eval path against the machine's matrix peak, measured side by side in one run.

For the TSN ResNet-50 (RGB, 8x3x224x224 per segment) and for the full AdaMML policy (the two
MobileNetV2 extractors on the RGB view and the spectrogram, joint layers, LSTM), on 1 video and
on 8 videos of 10 segments, this times what a user gets by default: ``create_backbone(...)``
or ``create_model(...)``, ``.eval()``, ``torch.inference_mode()``, nothing converted by hand. A
float32 matmul (4096^3) is timed right before each row (the practical peak at that moment), and
with ``--bf16`` the same rows run under ``precision="bf16"`` beside a bf16 matmul peak. MACs
are measured in the "all" convention by `adamml.flops`.

Usage: ``python benchmarks/throughput.py [--threads 2] [--repeats 3] [--bf16]``
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from _common import best_seconds, bf16_matrix_units, cpu_model

import adamml
from adamml.backbones import create_backbone
from adamml.flops import measure_macs
from adamml.precision import autocast


def matmul_peak(dtype: torch.dtype, repeats: int, n: int = 4096) -> float:
    """GMAC/s of an n x n x n matmul in ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return n**3 / best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--bf16", action="store_true", help="also bf16 rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    units = bf16_matrix_units()
    print(
        f"# throughput: {cpu_model()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, bf16 matrix units: {', '.join(units) or 'none'}"
    )
    print(
        "| workload | videos x segments | precision | time (s) | GMAC/s | matmul GMAC/s, "
        "same moment | share of peak |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    resnet = create_backbone("resnet50_tsn", modality="rgb", num_classes=31).eval()
    model = adamml.create_model("adamml_rgb_audio", num_classes=31).eval()
    precisions = ["fp32"] + (["bf16"] if args.bf16 else [])
    for videos in args.videos:
        n = videos * 10
        rgb = torch.randn(n, 8, 3, 224, 224)
        x = {m: torch.randn(videos, 10, *s.shape) for m, s in model.input_spec.items()}
        views = model.policy_views(x)
        macs_rgb = measure_macs(resnet, rgb[:1], convention="all") * n
        macs_policy = (
            measure_macs(model.policy, {m: v[:1, :1] for m, v in views.items()}, convention="all")
            * n
        )
        rows = (
            ("resnet50_tsn", lambda: resnet(rgb), macs_rgb),
            ("AdaMML policy (2 MobileNetV2 + LSTM)", lambda: model.policy(views), macs_policy),
        )
        for precision in precisions:
            dtype = adamml.precision.PRECISIONS[precision]
            for name, fn, macs in rows:
                peak = matmul_peak(dtype, max(3, args.repeats))

                def run(fn: Callable[[], object] = fn) -> None:
                    with torch.inference_mode(), autocast(precision, "cpu"):
                        fn()

                sec = best_seconds(run, args.repeats)
                rate = macs / sec
                print(
                    f"| {name} | {videos} x 10 | {precision} | {sec:.3f} | {rate:.1f} | "
                    f"{peak:.1f} | {100 * rate / peak:.0f} % |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
