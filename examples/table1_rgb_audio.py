"""AdaMML Table 1: RGB + Audio. Unimodal RGB, unimodal audio, weighted fusion and AdaMML.

Full size (the paper's Kinetics-Sounds / ActivityNet recipe)::

    python examples/table1_rgb_audio.py --data-root data/kinetics_sounds --out runs/paper
    python examples/table1_rgb_audio.py --data-root data/activitynet --out runs/anet \
        --select-metric mAP

Minutes on a CPU (tiny ``test_*`` models, built-in SyntheticAV data)::

    python examples/table1_rgb_audio.py --mini --out runs/mini
"""

from __future__ import annotations

import argparse

from adamml.experiments.tables import COST_WEIGHTS, Run, TableSpec, cli, unimodal_runs

WEIGHTS = COST_WEIGHTS[("rgb", "audio")]


def build(args: argparse.Namespace) -> list[Run]:
    init = {"rgb": "unimodal_rgb", "audio": "unimodal_audio"}
    return [
        *unimodal_runs(("rgb", "audio")),
        Run(
            "fusion_rgb_audio",
            "Weighted Fusion",
            "fusion_rgb_audio",
            init=init,
            paper=(87.86, 145.17),
            baseline="fusion_rgb_audio",
        ),
        Run(
            "adamml_rgb_audio",
            "AdaMML",
            "adamml_rgb_audio",
            init=init,
            cost_weights=WEIGHTS,
            paper=(88.17, 76.45),
            baseline="fusion_rgb_audio",
        ),
    ]


SPEC = TableSpec("table1", "Table 1: RGB + Audio", build)

if __name__ == "__main__":
    cli(SPEC)
