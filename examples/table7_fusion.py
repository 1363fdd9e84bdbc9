"""AdaMML Table 7: hand-designed late fusions against AdaMML, on RGB + Audio, RGB + Flow and
RGB + Flow + Audio. Every fusion uses every modality on every segment (``fusion_<task>`` with
``model_args.fusion``): average, class-wise weighted, max, FC2 (concatenated features and two
FC layers) and learnable weighted fusion; AdaMML is the RGBDiff variant where flow is involved
(the paper's Table 7 numbers are those of Tables 1-3).

Full size::

    python examples/table7_fusion.py --data-root data/kinetics_sounds --out runs/paper

Mini (``--tasks`` picks columns; ``--mini`` runs RGB + Audio and RGB + Flow unless told
``--tasks all``: the three columns are 21 trainings, about 18 minutes on a 2-core CPU, over the
10 minutes a mini run should take, and the third column's fusion-against-AdaMML row is Table 3's
mini)::

    python examples/table7_fusion.py --mini --out runs/mini_flow
    python examples/table7_fusion.py --mini --tasks all --out runs/mini_flow_all
"""

from __future__ import annotations

import argparse

from adamml.experiments.tables import COST_WEIGHTS, Run, TableSpec, cli, unimodal_runs

TASKS = {  # task: modalities, AdaMML model, paper accuracy per row (Kinetics-Sounds)
    "rgb_audio": (
        ("rgb", "audio"),
        "adamml_rgb_audio",
        {
            "average": 88.15,
            "classwise": 87.86,
            "max": 86.49,
            "fc2": 87.73,
            "learnable": 87.86,
            "adamml": 88.17,
        },
        (145.17, 76.45),
    ),
    "rgb_flow": (
        ("rgb", "flow"),
        "adamml_rgb_flow_rgbdiff",
        {
            "average": 83.30,
            "classwise": 83.82,
            "max": 83.47,
            "fc2": 83.30,
            "learnable": 83.47,
            "adamml": 84.36,
        },
        (304.75, 137.03),
    ),
    "rgb_audio_flow": (
        ("rgb", "audio", "flow"),
        "adamml_rgb_audio_flow_rgbdiff",
        {
            "average": 88.18,
            "classwise": 87.75,
            "max": 88.06,
            "fc2": 87.84,
            "learnable": 88.25,
            "adamml": 89.06,
        },
        (308.56, 141.97),
    ),
}
MINI_TASKS = ("rgb_audio", "rgb_flow")
"""The columns ``--mini`` runs unless ``--tasks`` names others."""
FUSIONS = (
    ("average", "Average Fusion"),
    ("classwise", "Class-wise Weighted Fusion"),
    ("max", "Max Fusion"),
    ("fc2", "FC2 Fusion"),
    ("learnable", "Weighted Fusion"),
)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tasks",
        default=None,
        help=f"comma-separated columns of the table ({', '.join(TASKS)}) or 'all'; default: "
        f"all (full), {','.join(MINI_TASKS)} (--mini)",
    )


def _tasks(args: argparse.Namespace) -> list[str]:
    if args.tasks is None:
        return list(MINI_TASKS if args.mini else TASKS)
    if args.tasks.strip() == "all":
        return list(TASKS)
    return [t.strip() for t in args.tasks.split(",") if t.strip()]


def build(args: argparse.Namespace) -> list[Run]:
    tasks = _tasks(args)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"error: unknown task(s) {unknown}; choose from {', '.join(TASKS)}")
    mods_needed = [m for m in ("rgb", "flow", "audio") if any(m in TASKS[t][0] for t in tasks)]
    rows = unimodal_runs(mods_needed)
    for task in tasks:
        mods, adamml_model, paper, (fusion_gflops, adamml_gflops) = TASKS[task]
        init = {m: f"unimodal_{m}" for m in mods}
        group = " + ".join(m.upper() if m == "rgb" else m.capitalize() for m in mods)
        base = f"fusion_{task}"  # the learnable weighted fusion, as in Tables 1-3
        for name, label in FUSIONS:
            key = base if name == "learnable" else f"fusion_{task}_{name}"
            rows.append(
                Run(
                    key,
                    label,
                    f"fusion_{task}",
                    init=init,
                    model_args={} if name == "learnable" else {"fusion": name},
                    paper=(paper[name], fusion_gflops),
                    group=group,
                    baseline=base,
                )
            )
        rows.append(
            Run(
                f"{adamml_model}",
                "AdaMML" + ("-RGBDiff" if "flow" in mods else ""),
                adamml_model,
                init=init,
                cost_weights=COST_WEIGHTS[mods],
                paper=(paper["adamml"], adamml_gflops),
                group=group,
                baseline=base,
            )
        )
    return rows


SPEC = TableSpec(
    "table7", "Table 7: fusion strategies", build, mini_data="syntheticav-flow", add_args=add_args
)

if __name__ == "__main__":
    cli(SPEC)
