"""AdaMML Table 5: AdaMML (RGB + Audio) against LiteEval on Kinetics-Sounds (accuracy) and
Mini-Sports1M (mAP), both trained here. The paper's authors ran LiteEval with its authors' code;
adamml assembles LiteEval from its own blocks (``liteeval_rgb``: a coarse LSTM over MobileNetV2
features at 112x112, a fine LSTM over TSN ResNet-50 features, a per-segment Gumbel gate; see
docs/components/liteeval.md for where it follows the LiteEval paper and where it chose) and
trains it with the same engine, stages, data and cost accounting as AdaMML. Both start from the
same unimodal RGB model; AdaMML also from the unimodal audio one. AdaMML is tested with 10
segments and, from the same checkpoint, with 5.

``--dataset`` picks the paper columns and the selection metric (top-1 for Kinetics-Sounds, mAP
for Mini-Sports1M).

Full size (``train.csv``, ``val.csv``, ``classes.txt`` per dataset; docs/datasets.md)::

    python examples/table5_liteeval.py --data-root data/kinetics_sounds --out runs/ks
    python examples/table5_liteeval.py --dataset mini-sports1m --data-root data/minisports \
        --out runs/ms1m

Mini (tiny ``test_*`` models on SyntheticAV)::

    python examples/table5_liteeval.py --mini --out runs/mini5
"""

from __future__ import annotations

import argparse
import sys

from adamml.experiments.tables import (
    COST_WEIGHTS,
    INIT_GROUP,
    Run,
    TableSpec,
    chosen_spec,
    cli,
    dataset_args,
    unimodal_runs,
)

WEIGHTS = COST_WEIGHTS[("rgb", "audio")]
LITEEVAL_WEIGHTS = {"rgb": WEIGHTS["rgb"]}
"""LiteEval's one decision (compute the fine RGB features) costs what AdaMML's RGB decision
costs, so it gets AdaMML's lambda_RGB."""
DATASETS = {
    "kinetics-sounds": ("Kinetics-Sounds", "Acc.", "top1"),
    "mini-sports1m": ("Mini-Sports1M", "mAP", "mAP"),
}

# Table 5: (Kinetics-Sounds accuracy | Mini-Sports1M mAP, GFLOPs per video)
PAPER = {
    "kinetics-sounds": {"liteeval": (72.02, 104.06), "adamml": (88.17, 76.45)},
    "mini-sports1m": {"liteeval": (43.64, 151.83), "adamml": (46.08, 138.32)},
}


add_args = dataset_args(DATASETS, "kinetics-sounds")


def build(args: argparse.Namespace) -> list[Run]:
    paper = PAPER[args.dataset]
    init = {"rgb": "unimodal_rgb", "audio": "unimodal_audio"}
    rows = unimodal_runs(("rgb", "audio"), paper={}, group=INIT_GROUP)
    return [
        *rows,
        Run(
            "liteeval_rgb",
            "LiteEval (trained here)",
            "liteeval_rgb",
            init={"rgb": "unimodal_rgb"},
            cost_weights=LITEEVAL_WEIGHTS,
            paper=paper["liteeval"],
            group="Table 5",
        ),
        Run(
            "adamml_rgb_audio",
            "AdaMML",
            "adamml_rgb_audio",
            init=init,
            cost_weights=WEIGHTS,
            paper=paper["adamml"],
            group="Table 5",
        ),
        Run(
            "adamml_rgb_audio_5seg",
            "AdaMML (5 test segments)",
            "adamml_rgb_audio",
            init=init,
            cost_weights=WEIGHTS,
            group="Table 5",
            overrides={"data": {"segments_eval": 5}},
            evaluate_of="adamml_rgb_audio",
        ),
    ]


def spec(dataset: str) -> TableSpec:
    """The table for one dataset's paper columns."""
    name, metric, select = DATASETS[dataset]
    return TableSpec(
        f"table5_{dataset.replace('-', '_')}",
        f"Table 5: LiteEval vs AdaMML ({name})",
        build,
        paper_data=name,
        paper_metric=metric,
        select_metric=select,
        add_args=add_args,
    )


SPECS = {d: spec(d) for d in DATASETS}
SPEC = SPECS["kinetics-sounds"]


if __name__ == "__main__":
    cli(chosen_spec(SPECS, sys.argv[1:]))
