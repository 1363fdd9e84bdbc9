"""What each lever gives the policy's wall time, one lever added per row, in one run.

The policy of the full-size ``adamml_rgb_audio`` (two MobileNetV2 extractors on the policy's
views, joint layer, LSTM, gates) is timed by a forward with every decision forced off (the
recognition backbones never run), next to ``fusion_rgb_audio`` on the default path. Rows, each
adding one lever to the row above:

1. the plain module in NCHW, as main ran it before the fast path (488c664),
2. channels_last weights and inputs (what training uses too),
3. the eval inference copy with BatchNorm folded into the convolutions, all segments at once,
4. segments in chunks of the default activation budget (one chunk size for the network),
5. the folded norms' activations (MobileNetV2's ReLU6) applied inside the convolutions by
   oneDNN (``fuse_act``),
6. the convolution weights packed once into oneDNN's layout (``pack_weights``),
7. one chunk size per stage from the same budget (``stage_chunks``): **the default path**,
8. the default path with ``torch.compile`` of the inference copies (first call not timed; its
   time is printed; compiled copies use neither packed weights nor per-stage chunks),
9. the default path in bf16 (where the CPU has bf16 matrix units),
10. the same without activation fusion (what fusion gives in bf16),
11. not a lever but an option that changes the policy's function: the default path with the
    narrow ResNet-10 extractors (``policy_backbones=NARROW_POLICY_BACKBONES``) instead of the
    paper's MobileNetV2s, fp32 and bf16; "vs row above" is then against the default path of the same
    precision.

Every figure is a ratio to numbers measured in the same run. Usage:
``python benchmarks/policy_levers.py [--batch 1 8] [--threads 2] [--repeats 3] [--no-compile]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any, NamedTuple

import torch
from _common import best_seconds, bf16_matrix_units, cpu_model

import adamml
from adamml.backbones import NARROW_POLICY_BACKBONES


class Row(NamedTuple):
    """One configuration of the policy: its label, ``configure_inference`` options, layout and
    precision; ``default`` marks the default path, which the option rows are compared with."""

    label: str
    options: dict[str, Any]
    channels_last: bool
    precision: str
    default: bool = False


def _frame_backbones(module: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in module.modules() if hasattr(m, "inference_options")]


def _set_layout(policy: torch.nn.Module, channels_last: bool) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for backbone in _frame_backbones(policy):
        backbone.use_channels_last = channels_last
        backbone.to(memory_format=fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--segments", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-compile", action="store_true", help="skip the compile row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = adamml.create_model("adamml_rgb_audio", num_classes=31).eval()
    fusion = adamml.create_model("fusion_rgb_audio", num_classes=31).eval()
    option = adamml.create_model(
        "adamml_rgb_audio", num_classes=31, policy_backbones=NARROW_POLICY_BACKBONES
    )
    option.eval()
    units = bf16_matrix_units()
    print(
        f"# policy_levers: {cpu_model()}, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, S={args.segments}, best of {args.repeats}, "
        f"bf16 matrix units: {', '.join(units) or 'none'}"
    )

    rows: list[Row] = [
        Row("plain module, NCHW (main before the fast path)", {"enabled": False}, False, "fp32"),
        Row("+ channels_last", {"enabled": False}, True, "fp32"),
        Row(
            "+ inference copy, BatchNorm folded, all segments at once",
            {
                "enabled": True,
                "chunk_mb": None,
                "fuse_act": False,
                "pack_weights": False,
                "stage_chunks": False,
            },
            True,
            "fp32",
        ),
        Row("+ chunks (default budget)", {"chunk_mb": "auto"}, True, "fp32"),
        Row("+ activations fused into the convolutions", {"fuse_act": True}, True, "fp32"),
        Row("+ weights packed for oneDNN", {"pack_weights": True}, True, "fp32"),
        Row(
            "+ a chunk size per stage = **default path**",
            {"stage_chunks": True},
            True,
            "fp32",
            True,
        ),
    ]
    if not args.no_compile:
        rows.append(Row("default path + torch.compile", {"compile": True}, True, "fp32"))
    rows.append(Row("default path, bf16", {"compile": False}, True, "bf16", True))
    rows.append(Row("bf16, activations not fused", {"fuse_act": False}, True, "bf16"))

    with torch.inference_mode():
        for b in args.batch:
            x = {m: torch.randn(b, args.segments, *s.shape) for m, s in model.input_spec.items()}
            off = torch.zeros(b, args.segments, len(model.modalities))
            t_fusion = best_seconds(lambda: fusion(x), args.repeats)
            print(f"\n## batch {b}: fusion_rgb_audio {t_fusion * 1e3:.0f} ms (fp32, default path)")
            print(
                "| policy configuration | time (ms) | speed-up vs row 1 | vs row above "
                "| share of fusion's time |"
            )
            print("|---|---|---|---|---|")
            first = previous = None
            default: dict[str, float] = {}
            for label, options, channels_last, precision, is_default in rows:
                if precision == "bf16" and not units:
                    print(f"| {label} | - | - | - | no bf16 matrix units |")
                    continue
                _set_layout(model.policy, channels_last)
                model.configure_inference(**options)
                model.set_precision(precision)
                note = ""
                if options.get("compile"):
                    start = time.perf_counter()
                    model(x, decisions=off)
                    note = f" (first call {time.perf_counter() - start:.0f} s)"
                t = best_seconds(lambda: model(x, decisions=off), args.repeats)
                first = first or t
                step = f"{previous / t:.2f}x" if previous else "-"
                print(
                    f"| {label}{note} | {t * 1e3:.0f} | {first / t:.2f}x | {step} "
                    f"| {100 * t / t_fusion:.1f} % |",
                    flush=True,
                )
                previous = t
                if is_default:
                    default[precision] = t
            model.set_precision("fp32")
            model.configure_inference(compile=False, fuse_act=True)
            for precision in ("fp32", "bf16"):
                label = f"option: narrow ResNet-10 extractors, default path, {precision}"
                if precision == "bf16" and not units:
                    print(f"| {label} | - | - | - | no bf16 matrix units |")
                    continue
                option.set_precision(precision)
                t = best_seconds(lambda: option(x, decisions=off), args.repeats)
                print(
                    f"| {label} | {t * 1e3:.0f} | {first / t:.2f}x | {default[precision] / t:.2f}x "
                    f"| {100 * t / t_fusion:.1f} % |",
                    flush=True,
                )
            option.set_precision("fp32")


if __name__ == "__main__":
    main()
