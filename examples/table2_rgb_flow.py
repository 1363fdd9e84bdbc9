"""AdaMML Table 2: RGB + Flow. Unimodal RGB and flow, weighted fusion, AdaMML-Flow (the policy
looks at flow) and AdaMML-RGBDiff (the policy looks at RGB difference; flow is computed only for
the segments it selects).

Full size::

    python examples/table2_rgb_flow.py --data-root data/kinetics_sounds --out runs/paper

Mini (tiny models; ``synthetic:N`` data, see ``examples/README.md``)::

    python examples/table2_rgb_flow.py --mini --out runs/mini_flow
"""

from __future__ import annotations

import argparse

from adamml.experiments.tables import COST_WEIGHTS, Run, TableSpec, cli, unimodal_runs

WEIGHTS = COST_WEIGHTS[("rgb", "flow")]


def build(args: argparse.Namespace) -> list[Run]:
    init = {"rgb": "unimodal_rgb", "flow": "unimodal_flow"}
    base = "fusion_rgb_flow"
    return [
        *unimodal_runs(("rgb", "flow")),
        Run(
            base,
            "Weighted Fusion",
            "fusion_rgb_flow",
            init=init,
            paper=(83.47, 304.75),
            baseline=base,
        ),
        Run(
            "adamml_rgb_flow",
            "AdaMML-Flow",
            "adamml_rgb_flow",
            init=init,
            cost_weights=WEIGHTS,
            paper=(83.82, 151.54),
            baseline=base,
        ),
        Run(
            "adamml_rgb_flow_rgbdiff",
            "AdaMML-RGBDiff",
            "adamml_rgb_flow_rgbdiff",
            init=init,
            cost_weights=WEIGHTS,
            paper=(84.36, 137.03),
            baseline=base,
        ),
    ]


SPEC = TableSpec("table2", "Table 2: RGB + Flow", build, mini_data="syntheticav-flow")

if __name__ == "__main__":
    cli(SPEC)
