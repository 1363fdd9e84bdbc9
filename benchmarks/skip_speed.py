"""Real speed from skipping: AdaMML eval wall time against its GFLOPs, side by side in one run.

For the full-size ``adamml_rgb_audio`` (TSN ResNet-50 + MobileNetV2 audio + the LSTM policy)
in eval with forced decisions at several selection rates, and ``fusion_rgb_audio`` (every
modality on every segment), this prints per batch size:

- GFLOPs ratio to the fusion baseline (from ``out.gflops``, paper convention),
- wall-time ratio to the fusion baseline,
- their quotient (1.0 = the time saving is exactly the FLOP saving),
- measured / ideal, where ideal = policy time + sum over modalities of
  (selection rate x time of that backbone on all segments), every term measured in this run.
  Under 1.10 means routing, gathering and scattering cost under 10%.

Everything runs on the default path (``create_model(...).eval()`` under
``torch.inference_mode()``, nothing converted by hand), for each ``--precision``. The policy's
time is that of a forward with every decision forced off (policy views, policy, routing); a
backbone's time on all segments is that of a forward selecting only it, minus the policy's.
A selection rate is an average over videos, so each rate row runs ``round(--videos / B)`` calls
(at least one) whose decisions together select exactly ``round(rate x calls x B x S)`` pairs: at
batch 1 the paper's RGB 46 % is 46 of 100 segments over 10 videos (some with 4 RGB segments,
some with 5), not 5 of 10 on one; the row's time is the mean per call.
Every time of a table is a median over ``--repeats`` rounds that time all of its forwards in
turn (fusion, policy, each backbone, each rate), so that a slow minute of a noisy machine
falls on every row of the table alike.

``--policy-extractors resnet10_narrow`` times AdaMML with the optional narrow ResNet-10 policy
extractors (``policy_backbones``; not the paper's MobileNetV2s, see docs/speed.md).

Usage: ``python benchmarks/skip_speed.py [--batch 1 8] [--precision fp32 bf16] [--repeats 3]
[--videos 10] [--policy-extractors mobilenetv2 | resnet10_narrow]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _common import cpu_model

import adamml
from adamml.backbones import NARROW_POLICY_BACKBONES

POLICY_EXTRACTORS: dict[str, dict[str, dict[str, str]]] = {
    "mobilenetv2": {},
    "resnet10_narrow": {"policy_backbones": NARROW_POLICY_BACKBONES},
}
"""``--policy-extractors``: the ``create_model`` overrides of each choice."""


def _round_robin(jobs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each job, the jobs timed in turn ``repeats`` times (after one
    warm-up call each: allocator, oneDNN primitives), so that a slow minute of a noisy
    machine falls on every job of a table, not on one row."""
    for fn in jobs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, fn in jobs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def forced_decisions(
    b: int, s: int, rates: dict[str, float], modalities: tuple[str, ...], seed: int = 0
) -> torch.Tensor:
    """Exactly round(rate * B * S) selected (video, segment) pairs per modality, at random."""
    g = torch.Generator().manual_seed(seed)
    d = torch.zeros(b, s, len(modalities))
    for k, m in enumerate(modalities):
        n = round(rates[m] * b * s)
        idx = torch.randperm(b * s, generator=g)[:n]
        d[..., k].view(-1)[idx] = 1.0
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rgb-rates", type=float, nargs="+", default=[0.0, 0.25, 0.46, 0.75, 1.0])
    parser.add_argument("--audio-rate", type=float, default=0.94)
    parser.add_argument(
        "--videos", type=int, default=10, help="videos a rate row averages over (at least B)"
    )
    parser.add_argument(
        "--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16", "fp16")
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--policy-extractors",
        choices=tuple(POLICY_EXTRACTORS),
        default="mobilenetv2",
        help="the paper's MobileNetV2s (default) or the optional narrow ResNet-10s",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # the default path: built, put in eval mode, nothing converted by hand
    extractors = POLICY_EXTRACTORS[args.policy_extractors]
    model = adamml.create_model("adamml_rgb_audio", num_classes=31, **extractors).eval()
    fusion = adamml.create_model("fusion_rgb_audio", num_classes=31).eval()
    mods = model.modalities
    print(
        f"# skip_speed: {cpu_model()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, S={args.segments}, median of {args.repeats} rounds, "
        f"default eval path, policy extractors: {args.policy_extractors}"
    )

    with torch.inference_mode():
        for precision in args.precision:
            model.set_precision(precision)
            fusion.set_precision(precision)
            for b in args.batch:
                _table(model, fusion, mods, b, precision, args)


def _table(model, fusion, mods, b: int, precision: str, args: argparse.Namespace) -> None:
    x = {m: torch.randn(b, args.segments, *s.shape) for m, s in model.input_spec.items()}
    none = torch.zeros(b, args.segments, len(mods))
    only = {}
    for k, m in enumerate(mods):
        only[m] = none.clone()
        only[m][..., k] = 1.0
    calls = max(1, round(args.videos / b))  # a rate is an average over videos
    forced = {
        r: forced_decisions(
            calls * b, args.segments, {"rgb": r, "audio": args.audio_rate}, mods
        ).split(b)
        for r in args.rgb_rates
    }

    def run_all(ds: tuple[torch.Tensor, ...]) -> list[object]:
        return [model(x, decisions=d) for d in ds]

    jobs: dict[str, Callable[[], object]] = {
        "fusion": lambda: fusion(x),
        "policy": lambda: model(x, decisions=none),  # policy, nothing run
        **{f"only {m}": (lambda d=d: model(x, decisions=d)) for m, d in only.items()},
        **{f"rgb {r}": (lambda ds=ds: run_all(ds)) for r, ds in forced.items()},
    }
    t = _round_robin(jobs, args.repeats)
    t_fusion, t_policy = t["fusion"], t["policy"]
    g_fusion = float(fusion(x).gflops.mean())
    t_backbone = {m: t[f"only {m}"] - t_policy for m in mods}
    print(
        f"\n## {precision}, batch {b}: fusion_rgb_audio {t_fusion * 1e3:.0f} ms, "
        f"{g_fusion:.2f} GFLOPs/video; policy {t_policy * 1e3:.0f} ms "
        f"({100 * t_policy / t_fusion:.1f} % of fusion's time); "
        + ", ".join(f"{m} on all segments {sec * 1e3:.0f} ms" for m, sec in t_backbone.items())
        + f"; each rate row is the mean of {calls} call(s) over {calls * b} videos"
    )
    print(
        "| RGB % | audio % | GFLOPs/video | GFLOPs ratio | time (ms) | time ratio "
        "| time/GFLOPs ratio | ideal (ms) | measured/ideal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in args.rgb_rates:
        ds = forced[r]
        d = torch.cat(ds)
        g = statistics.fmean(float(out.gflops.mean()) for out in run_all(ds))
        t_row = t[f"rgb {r}"] / len(ds)
        real = {m: float(d[..., k].mean()) for k, m in enumerate(mods)}
        ideal = t_policy + sum(real[m] * t_backbone[m] for m in mods)
        gr, tr = g / g_fusion, t_row / t_fusion
        print(
            f"| {100 * real['rgb']:.0f} | {100 * real['audio']:.0f} | {g:.2f} "
            f"| {gr:.3f} | {t_row * 1e3:.0f} | {tr:.3f} | {tr / gr:.3f} "
            f"| {ideal * 1e3:.0f} | {t_row / ideal:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
