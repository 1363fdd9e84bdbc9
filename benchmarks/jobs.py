"""Training throughput of the demo's networks: one torch thread, two threads, or two one-thread
processes side by side (`adamml.engine.workers`, what ``jobs=2`` uses).

For each pre-training part of ``test_adamml_rgb_audio`` (the demo's model) this times
optimiser steps (forward, backward, Adam) on a batch of the demo's shape (16 videos x 5
segments), in three ways measured in one run:

- ``1 thread``: this process, ``torch.set_num_threads(1)``;
- ``2 threads``: this process, ``torch.set_num_threads(2)``;
- ``2 jobs``: two forked workers (`run_in_workers`), one thread each, the same steps at once.

It prints ms per step and the throughput of each way relative to one thread (``2 jobs``
counts both workers' steps). Run it on a quiet machine:

    python benchmarks/jobs.py [--steps 30]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import torch

from adamml.engine.recipe import part_model
from adamml.engine.workers import run_in_workers

PARTS = ("rgb", "audio", "policy.rgb")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def step_ms(part: str, steps: int, threads: int) -> float:
    """Mean ms per optimiser step of ``part``'s pre-training model."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = part_model(6, parent="test_adamml_rgb_audio", part=part).train()
    x = {m: torch.randn(16, 5, *s.shape) for m, s in model.input_spec.items()}
    y = torch.randint(0, 6, (16,))
    opt = torch.optim.Adam(model.parameters(), lr=0.003)

    def one() -> None:
        loss = torch.nn.functional.cross_entropy(model(x).logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return 1000.0 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; {args.steps} steps per measurement")
    print(f"{'part':<11} {'1 thread':>9} {'2 threads':>10} {'2 jobs':>14}   throughput vs 1 thread")
    for part in PARTS:
        one = step_ms(part, args.steps, 1)
        two = step_ms(part, args.steps, 2)
        torch.set_num_threads(1)  # the parent of forked workers (see adamml.engine.workers)
        both = run_in_workers(
            [(f"{part}/{i}", lambda: step_ms(part, args.steps, 1)) for i in range(2)], jobs=2
        )
        jobs = sum(both.values()) / 2
        print(
            f"{part:<11} {one:7.1f}ms {two:8.1f}ms {jobs:8.1f}ms x 2   "
            f"2 threads {one / two:.2f}x, 2 jobs {2 * one / jobs:.2f}x"
        )


if __name__ == "__main__":
    main()
