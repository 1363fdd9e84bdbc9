"""Policy networks and the Gumbel gate (AdaMML Sec. 3.2-3.3).

A policy maps the policy view of each modality to per-segment 0/1 decisions:
``policy(views) -> PolicyOutput(decisions (B, S, M), logits (B, S, M, 2) | None)``.

| name | class | what it is |
| --- | --- | --- |
| ``lstm`` | [`PolicyLSTM`][adamml.policies.PolicyLSTM] | the paper's policy: joint features + LSTM + one gate per modality |
| ``fc`` | [`PolicyFC`][adamml.policies.PolicyFC] | no LSTM, segments independent (ablation) |
| ``joint_gate`` | [`JointGatePolicy`][adamml.policies.JointGatePolicy] | one gate per segment for all modalities: over all 2^M combinations, or the paper's all-or-nothing (``mode="all_or_nothing"``; Sec. 4.3 ablation) |
| ``random`` | [`RandomPolicy`][adamml.policies.RandomPolicy] | keep each modality with probability p (Table 8) |
| ``all`` | [`AllPolicy`][adamml.policies.AllPolicy] | every modality everywhere (weighted fusion) |
"""

from __future__ import annotations

from .factory import create_policy, list_policies
from .fc import PolicyFC
from .fixed import AllPolicy, RandomPolicy
from .gate import GumbelGate
from .joint_gate import JointGatePolicy
from .lstm import PolicyLSTM, PolicyState
from .schedule import TemperatureSchedule

__all__ = [
    "GumbelGate",
    "TemperatureSchedule",
    "PolicyLSTM",
    "PolicyState",
    "PolicyFC",
    "JointGatePolicy",
    "RandomPolicy",
    "AllPolicy",
    "create_policy",
    "list_policies",
]
