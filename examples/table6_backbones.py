"""AdaMML Table 6: other backbones on RGB + Audio (ActivityNet, mAP). AdaMML with ResNet-18 for
both modalities, with the default TSN ResNet-50 + MobileNetV2, and with EfficientNet-b3 (RGB) +
EfficientNet-b0 (audio). Each variant starts from unimodal models with the same backbones.

The paper initialises these unimodal models from Kinetics-400 weights (to compare with
ListenToLook). ``--init-k400 DIR`` does that: each unimodal row's backbone loads
``DIR/<modality>-<backbone>.pth`` (or ``.pt``, ``.safetensors``, ``.bin``; a plain state dict of
that backbone, timm key names), i.e. ``rgb-resnet18_tsn``, ``audio-resnet18_tsn``,
``rgb-resnet50_tsn``, ``audio-mobilenetv2_audio``, ``rgb-efficientnet_b3`` and
``audio-efficientnet_b0``. Without it the full-size runs start from timm's ImageNet weights
(``--pretrained imagenet``, the default; ``none`` for random); the policy's MobileNetV2
extractors start from ImageNet either way. ``--dry-run`` shows where each part starts.

Full size::

    python examples/table6_backbones.py --data-root data/activitynet --out runs/anet \
        --init-k400 weights/k400

Mini (on the tiny inputs of the ``test_*`` models, each family's scaled-down stand-in:
``tiny_resnet18_tsn`` with ResNet-18's depth at the tiny ResNet's widths, and EfficientNet-B0's
architecture scaled to ``tiny_efficientnet_b3`` / ``tiny_efficientnet_b0``; the real
ResNet-18 and EfficientNets on the tiny inputs cost 7-30x more and took the mini past 10
minutes on 2 cores)::

    python examples/table6_backbones.py --mini --out runs/mini
"""

from __future__ import annotations

import argparse
import functools

import torch

import adamml
from adamml.experiments.tables import COST_WEIGHTS, Run, TableSpec, cli, unimodal_runs
from adamml.flops import CostTable, measure_cost_table

WEIGHTS = COST_WEIGHTS[("rgb", "audio")]
VARIANTS = (  # key suffix, label, model, backbones, paper (ActivityNet mAP, GFLOPs), mini backbones
    (
        "_resnet18",
        "AdaMML ResNet-18 | ResNet-18",
        "adamml_rgb_audio_resnet18",
        {"rgb": "resnet18_tsn", "audio": "resnet18_tsn"},
        (80.05, 82.33),
        {"rgb": "tiny_resnet18_tsn", "audio": "tiny_resnet18_tsn"},
    ),
    (
        "",
        "AdaMML ResNet-50 | MobileNetV2",
        "adamml_rgb_audio",
        {"rgb": "resnet50_tsn", "audio": "mobilenetv2_audio"},
        (84.73, 110.14),
        None,
    ),
    (
        "_efficientnet",
        "AdaMML EffNet-b3 | EffNet-b0",
        "adamml_rgb_audio_efficientnet",
        {"rgb": "efficientnet_b3", "audio": "efficientnet_b0"},
        (85.62, 30.55),
        {"rgb": "tiny_efficientnet_b3", "audio": "tiny_efficientnet_b0"},
    ),
)


def build(args: argparse.Namespace) -> list[Run]:
    rows: list[Run] = []
    for suffix, label, model, backbones, paper, mini in VARIANTS:
        # The default pair keeps the registered (or, in mini, tiny) backbones unchanged.
        override = (mini if args.mini else backbones) if suffix else None
        uni = unimodal_runs(("rgb", "audio"), backbones=override, suffix=suffix, paper={})
        rows += [Run(r.key, r.label, r.model, model_args=r.model_args, group=label) for r in uni]
        rows.append(
            Run(
                f"adamml_rgb_audio{suffix}",
                label,
                model,
                model_args={"backbones": override} if args.mini and override else {},
                init={"rgb": f"unimodal_rgb{suffix}", "audio": f"unimodal_audio{suffix}"},
                cost_weights=WEIGHTS,
                paper=paper,
                group=label,
            )
        )
    return rows


SEGMENTS = 10  # evaluation segments per video (the paper's GFLOPs are for 10)


@functools.cache
def full_size_cost(model: str) -> CostTable:
    """The per-segment cost table (paper convention) of a full-size model, counted by
    ``adamml.flops`` on a copy built on the meta device: no weights, no training."""
    with torch.device("meta"):
        net = adamml.create_model(model, num_classes=200)  # ActivityNet's 200 classes
    return measure_cost_table(net.eval())


def cost_notes(args: argparse.Namespace) -> str:
    """Our full-size per-video GFLOPs beside the paper's, so that a difference in convention
    shows: the policy alone (every segment skipped) and every modality on every segment (the
    trained AdaMML lies between); the paper's number as a share of our all-on cost."""
    lines = [
        f"Full-size models, GFLOPs per video ({SEGMENTS} segments, paper convention), counted "
        "by adamml.flops without training:",
        f"  {'variant':<32} {'policy only':>11} {'all on':>8} | {'paper':>7} {'paper/all on':>12}",
    ]
    for _, label, model, _, (_, paper), _ in VARIANTS:
        table = full_size_cost(model)
        floor = SEGMENTS * table.policy_total
        all_on = SEGMENTS * (table.policy_total + table.recognition_total)
        lines.append(
            f"  {label:<32} {floor:>11.2f} {all_on:>8.2f} | {paper:>7.2f} {paper / all_on:>11.0%}"
        )
    lines.append(
        "  EfficientNet frames are averaged without temporal pooling (the paper's appendix pools "
        "only ResNet-50 and the policy's MobileNetV2; see adamml.backbones efficientnet_b3), so "
        "a paper number far below ours may rest on another convention."
    )
    return "\n".join(lines)


SPEC = TableSpec(
    "table6",
    "Table 6: backbones (RGB + Audio)",
    build,
    paper_data="ActivityNet",
    paper_metric="mAP",
    select_metric="mAP",
    init_k400=True,
    notes=cost_notes,
)

if __name__ == "__main__":
    cli(SPEC)
