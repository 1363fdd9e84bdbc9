"""The rows of AdaMML Sec. 4.3 "Policy Design" (Kinetics-Sounds, RGB + Audio): the learned
per-modality policy against one decision per segment for all modalities.

The paper's alternative is "a single FC layer in the policy network which outputs the binary
decisions where 1 indicate the use of both modalities and 0 indicate skipping of both"
(88.02 % against AdaMML's 88.17 %, AdaMML with 18 % fewer GFLOPs; no GFLOPs are given for the
alternative): ``policy: joint_gate`` with ``policy_args.mode: all_or_nothing``. The 2^M
combinations variant of ``joint_gate`` (it may also pick one modality alone) is kept as a
row of its own, labelled as ours.
"""

from __future__ import annotations

from collections.abc import Mapping

from .tables import Run

__all__ = ["PAPER_JOINT_GATE_KS", "policy_design_runs"]

PAPER_JOINT_GATE_KS = 88.02
"""Kinetics-Sounds top-1 of the paper's all-or-nothing policy (Sec. 4.3)."""


def policy_design_runs(
    init: Mapping[str, str], *, cost_weights: Mapping[str, float] | None = None
) -> list[Run]:
    """The joint-gate rows of the "Policy Design" ablation, on ``adamml_rgb_audio``.

    Args:
        init: ``{modality: key of the unimodal run}`` (as AdaMML's row).
        cost_weights: lambda_k of the efficiency loss (as AdaMML's row).

    Returns:
        The paper's all-or-nothing joint gate (``joint_gate_all_or_nothing``) and the 2^M
        combinations variant (``joint_gate_combinations``), both in group ``Policy Design``.

    Example:
        >>> tuple(r.key for r in policy_design_runs({"rgb": "unimodal_rgb"}))
        ('joint_gate_all_or_nothing', 'joint_gate_combinations')
    """
    common = {"init": dict(init), "cost_weights": cost_weights, "group": "Policy Design"}
    return [
        Run(
            "joint_gate_all_or_nothing",
            "Joint gate: all or nothing (paper)",
            "adamml_rgb_audio",
            model_args={"policy": "joint_gate", "policy_args": {"mode": "all_or_nothing"}},
            paper=(PAPER_JOINT_GATE_KS, None),
            **common,
        ),
        Run(
            "joint_gate_combinations",
            "Joint gate: 2^M combinations (ours)",
            "adamml_rgb_audio",
            model_args={"policy": "joint_gate"},
            **common,
        ),
    ]
