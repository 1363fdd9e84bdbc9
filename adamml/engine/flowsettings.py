"""Which optical-flow method ``adamml eval`` and ``adamml predict`` use: the training run's.

A network trained on TV-L1 flow (the paper's) sees different inputs from DIS or RAFT flow, so
the method is part of what a checkpoint was trained with. The training config (with
``data.flow_method``) is stored in every checkpoint; evaluation and prediction use that method
unless told otherwise, and warn when told otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["training_flow_method", "resolve_flow_method", "uses_flow"]


def training_flow_method(ckpt: Mapping[str, Any]) -> str | None:
    """The flow method a checkpoint's model was trained with, ``None`` if it does not say.

    ``data.flow_method`` of the stored config (``tvl1`` for configs written before the key
    existed), unless the training data source fixes its own method
    (`adamml.data.sources.source_flow_method`, e.g. a ``flow_method=`` option).
    """
    from ..data.sources import source_flow_method

    cfg = ckpt.get("config")
    if not isinstance(cfg, Mapping):
        return None
    data = cfg.get("data") or {}
    return source_flow_method(data.get("train")) or str(data.get("flow_method") or "tvl1")


def uses_flow(input_spec: Mapping[str, Any]) -> bool:
    """Whether a model's ``input_spec`` has an optical-flow input."""
    return any(k == "flow" or getattr(s, "modality", "") == "flow" for k, s in input_spec.items())


def resolve_flow_method(
    ckpt: Mapping[str, Any], requested: str | None, *, input_spec: Mapping[str, Any] | None = None
) -> str:
    """The flow method to evaluate ``ckpt`` with.

    Args:
        ckpt: a training checkpoint (its ``config``).
        requested: ``--flow-method``, or ``None`` for the training method (``tvl1`` when the
            checkpoint does not say).
        input_spec: the model's; no warning for a model without flow.

    Returns:
        The method name.

    Raises:
        ConfigError: for an unknown ``requested`` method.

    Warns:
        UserWarning: naming both methods when ``requested`` differs from the training method.

    Example:
        >>> resolve_flow_method({"config": {"data": {"flow_method": "dis"}}}, None)
        'dis'
    """
    from ..data.flow import check_flow_method

    trained = training_flow_method(ckpt)
    if requested is None:
        return check_flow_method(trained or "tvl1", "the checkpoint's data.flow_method")
    check_flow_method(requested, "--flow-method")
    if (
        trained is not None
        and requested != trained
        and (input_spec is None or uses_flow(input_spec))
    ):
        warnings.warn(
            f"the checkpoint was trained on {trained!r} optical flow but flow is now "
            f"computed with {requested!r}; its inputs differ from training (leave out "
            f"--flow-method to use {trained!r})",
            UserWarning,
            stacklevel=2,
        )
    return requested
