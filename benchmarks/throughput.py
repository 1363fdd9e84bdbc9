"""Achieved GMAC/s of the TSN ResNet-50 against a large float32 matmul on the same machine.

Run: ``.venv/bin/python benchmarks/throughput.py [--threads 2] [--repeats 3]``. The matmul is the
practical peak, measured next to each row; the ratio says how much of it the network reaches (eval,
``torch.inference_mode``, channels_last). MACs are measured in the "all" convention.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from adamml.backbones import create_backbone
from adamml.flops import measure_macs


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_peak(n: int, repeats: int) -> float:
    """GMAC/s of an n x n x n float32 matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return n**3 / _best_seconds(lambda: torch.mm(a, b), repeats) / 1e9


def resnet_rate(segments: int, repeats: int, channels_last: bool) -> tuple[float, float]:
    """(GMAC/s, seconds) of resnet50_tsn on ``segments`` RGB segments of 8x3x224x224."""
    bb = create_backbone("resnet50_tsn", modality="rgb", num_classes=31).eval()
    x = torch.randn(segments, 8, 3, 224, 224)
    macs = measure_macs(bb, x, convention="all")
    if channels_last:
        bb = bb.to(memory_format=torch.channels_last)

    def run() -> None:
        with torch.inference_mode():
            bb(x)

    sec = _best_seconds(run, repeats)
    return macs / sec, sec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| workload | layout | time (s) | GMAC/s | matmul 4096^3 GMAC/s, same moment | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for segments in (1, 8):
        for cl in (False, True):
            # the peak is measured next to each row, so load from other processes hits both
            peak = matmul_peak(4096, max(3, args.repeats))
            rate, sec = resnet_rate(segments, args.repeats, cl)
            layout = "channels_last" if cl else "contiguous"
            print(f"| resnet50_tsn, {segments} x 8x3x224x224 | {layout} | {sec:.3f} | "
                  f"{rate:.1f} | {peak:.1f} | {100 * rate / peak:.0f} % |", flush=True)


if __name__ == "__main__":
    main()
