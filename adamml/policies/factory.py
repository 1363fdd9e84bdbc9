"""Build a registered policy by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from .._checks import check_kwargs
from ..errors import ConfigError
from ..registries import POLICIES

__all__ = ["create_policy", "list_policies"]


def create_policy(
    name: str | nn.Module, modalities: Sequence[str] | None = None, **kwargs: Any
) -> nn.Module:
    """Build the policy registered as ``name`` for ``modalities`` (AdaMML Sec. 3.2).

    Args:
        name: a registered name (see [`list_policies`][adamml.policies.list_policies]) or an
            already built policy module, which is returned as it is.
        modalities: modality names, in the order of the decisions' M axis.
        **kwargs: keyword arguments of the policy class (e.g. ``hidden_size``, ``p``).

    Returns:
        The policy module.

    Raises:
        UnknownPolicyError: for an unregistered name (close matches listed).
        ConfigError: if ``modalities`` is missing or a keyword is not an argument of the class.

    Example:
        >>> policy = create_policy("random", modalities=("rgb", "audio"), p=0.5, when="test")
        >>> type(policy).__name__, policy.modalities
        ('RandomPolicy', ('rgb', 'audio'))
    """
    if isinstance(name, nn.Module):
        return name
    factory = POLICIES.get(name)
    if modalities is None:
        raise ConfigError(f"create_policy({name!r}) needs modalities=, e.g. ('rgb', 'audio')")
    check_kwargs(factory, kwargs, what=f"policy {name!r}")
    return factory(modalities, **kwargs)


def list_policies(pattern: str = "*") -> list[str]:
    """Registered policy names matching a shell-style ``pattern``, sorted (AdaMML Sec. 3.2,
    Table 8).

    Example:
        >>> "lstm" in list_policies() and list_policies("joint*") == ["joint_gate"]
        True
    """
    return POLICIES.list(pattern)
