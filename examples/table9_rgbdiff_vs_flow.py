"""AdaMML Table 9 (appendix C): optical flow against RGB difference, unimodal and in weighted
fusion with RGB; and the GFLOPs-vs-accuracy curve of AdaMML-RGBDiff (RGB + Flow, the policy
looks at RGB difference) obtained by varying the RGB cost weight.

The knob of the curve is ``loss.cost_weights.rgb`` (lambda_RGB of AdaMML Eq. 4), with
lambda_Flow fixed at 1.0 and gamma at 10: a larger lambda_RGB makes the policy skip RGB more
often (fewer GFLOPs), a smaller one lets it look more. Set the points with ``--lambdas``
(default 0.25, 0.5, 1, 2, 4; with ``--mini`` 0.5, 1, 2, 4: on the mini data 0.25 and 0.5 both
keep RGB on every segment, and the fifth run would take the mini past 10 minutes on 2 cores).
Every point starts from the same unimodal RGB and flow models and from the same pre-trained
policy extractors: those of the lambda_RGB = 1 point (the paper's row; the first point where
``--lambdas`` has no 1), whose run pre-trains them once for the whole curve, as the ablations
share AdaMML's.

Full size::

    python examples/table9_rgbdiff_vs_flow.py --data-root data/kinetics_sounds --out runs/paper

Mini::

    python examples/table9_rgbdiff_vs_flow.py --mini --out runs/mini_flow
"""

from __future__ import annotations

import argparse

from adamml.experiments.tables import Run, TableSpec, cli, unimodal_runs

FULL, MINI = "0.25,0.5,1,2,4", "0.5,1,2,4"
POLICY = ("rgb", "rgbdiff")  # what adamml_rgb_flow_rgbdiff's policy looks at
CURVE = "AdaMML-RGBDiff, RGB + Flow: lambda_RGB curve (loss.cost_weights.rgb)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lambdas",
        default=None,
        help="values of loss.cost_weights.rgb for the curve (flow stays 1.0), comma-separated; "
        "empty for no curve (default: 0.25,0.5,1,2,4; with --mini 0.5,1,2,4)",
    )


def _lambdas(text: str) -> list[float]:
    return [float(t) for t in (t.strip() for t in text.split(",")) if t]


def _key(lam: float) -> str:
    return f"adamml_rgb_flow_rgbdiff_lrgb{lam:g}"


def build(args: argparse.Namespace) -> list[Run]:
    rows = unimodal_runs(("rgb", "flow", "rgbdiff"))
    rows += [
        Run(
            "fusion_rgb_flow",
            "Weighted Fusion (RGB + Flow)",
            "fusion_rgb_flow",
            init={"rgb": "unimodal_rgb", "flow": "unimodal_flow"},
            paper=(83.47, 304.75),
        ),
        Run(
            "fusion_rgb_rgbdiff",
            "Weighted Fusion (RGB + RGBDiff)",
            "fusion_rgb_rgbdiff",
            init={"rgb": "unimodal_rgb", "rgbdiff": "unimodal_rgbdiff"},
            paper=(83.30, 320.48),
        ),
    ]
    text = args.lambdas if args.lambdas is not None else MINI if args.mini else FULL
    lambdas = _lambdas(text)
    if not lambdas:
        return rows
    init = {"rgb": "unimodal_rgb", "flow": "unimodal_flow"}
    # the point that pre-trains the policy's extractors (RGB and the RGB-difference proxy)
    anchor = 1.0 if 1.0 in lambdas else lambdas[0]
    shared = {**init, **{f"policy.{m}": f"{_key(anchor)}/pretrain/policy.{m}" for m in POLICY}}
    for lam in lambdas:
        rows.append(
            Run(
                _key(lam),
                f"lambda_RGB = {lam:g}",
                "adamml_rgb_flow_rgbdiff",
                init=init if lam == anchor else shared,
                cost_weights={"rgb": lam, "flow": 1.0},
                paper=(84.36, 137.03) if lam == 1.0 else None,
                group=CURVE,
                baseline="fusion_rgb_flow",
                extra={"lambda_rgb": lam},
            )
        )
    return rows


SPEC = TableSpec(
    "table9",
    "Table 9: RGB difference vs optical flow",
    build,
    mini_data="syntheticav-flow",
    add_args=add_args,
)

if __name__ == "__main__":
    cli(SPEC)
