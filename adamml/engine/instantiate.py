"""Build models by name and rebuild them from training checkpoints.

A training checkpoint stores ``model_name``, ``num_classes`` and ``model_args`` beside the
weights, so ``adamml eval`` and ``adamml predict`` need nothing but the file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, UnknownModelError
from ..model import load_weights_strict
from .checkpoint import FORMAT, load_checkpoint, read_torch_file

__all__ = [
    "build_model",
    "model_from_checkpoint",
    "load_state_strict",
    "load_backbone_init",
    "read_weights",
]


def build_model(
    name: str, num_classes: int, model_args: Mapping[str, Any] | None = None
) -> nn.Module:
    """``adamml.create_model(name, num_classes=..., **model_args)``, or, for a name of the form
    ``package.module:factory``, ``factory(num_classes=..., **model_args)`` (custom models).

    Raises:
        ConfigError: if a ``module:factory`` cannot be imported.
        UnknownModelError: for an unregistered model name.
    """
    args = dict(model_args or {})
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"cannot import model factory {name!r}: {err}") from None
        return factory(num_classes=num_classes, **args)
    from ..zoo import create_model

    return create_model(name, num_classes=num_classes, **args)


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)``, turning key/shape mismatches into a CheckpointError
    that lists the offending keys (the reference loaded with ``strict=False``; §10)."""
    load_weights_strict(
        module,
        state,
        f"{what} is from another model: its weights do not fit {type(module).__name__}",
    )


def model_from_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in a training checkpoint and load its weights.

    Returns:
        ``(model, checkpoint)``; the model is on ``map_location`` in eval mode.

    Raises:
        CheckpointError: if the file is not a training checkpoint, its model is not registered
            here (a plugin model without its plugin), or the weights do not fit.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    for key in ("model_name", "num_classes", "model"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
    name = ckpt["model_name"]
    try:
        model = build_model(name, int(ckpt["num_classes"]), ckpt.get("model_args"))
    except UnknownModelError as err:  # most often a plugin model without its plugin
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds model {name!r}, which is not registered here: "
            "install the plugin package that provides it (`adamml list plugins` shows the ones "
            f"loaded). {err}"
        ) from None
    load_state_strict(model, ckpt["model"], f"checkpoint {str(path)!r}")
    return model.to(map_location).eval(), ckpt


def read_weights(path: str, what: str) -> dict[str, torch.Tensor]:
    """The model weights in ``path``: a training checkpoint's ``model``, a ``{"model": state}``
    file, or a plain state dict.

    Raises:
        CheckpointError: naming ``path`` and ``what`` it was for, if it cannot be read.
    """
    state = read_torch_file(path)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        return state["model"]  # a training checkpoint of adamml
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        return state["model"]  # {"model": state_dict, ...} written by other tools
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path!r} (init for {what!r}) holds a {type(state).__name__}, "
            "not a state dict of weights"
        )
    return state


def load_backbone_init(model: nn.Module, init: Mapping[str, str]) -> None:
    """Load unimodal checkpoints into the model's parts (``init: {rgb: path, policy.rgb: path}``).

    A key ``m`` fills the recognition backbone of modality ``m``; a key ``policy.m`` fills the
    policy's feature extractor of ``m`` (AdaMML initialises it from ImageNet; without
    downloads, from a classifier trained with the same architecture). The source may be a
    training checkpoint of a unimodal model or of a pre-training stage, or a plain state dict of
    the part (see `adamml.AdaMML.load_part_state`).

    Raises:
        ConfigError: if a key is not one of the model's parts.
        CheckpointError: if the file cannot be read or its weights do not fit.
    """
    if init and not hasattr(model, "load_part_state"):
        raise ConfigError(
            f"init needs a model with parts (part_names, load_part_state; see "
            f"adamml.AdaMML); {type(model).__name__} has none"
        )
    for key, path in init.items():
        if key not in model.part_names:
            policy_parts = tuple(getattr(model, "policy_part_names", ()))
            recognition = [p for p in model.part_names if p not in policy_parts]
            raise ConfigError(
                f"init names {key!r}, which is not a part of this model; its "
                f"backbones are {recognition} and its policy's feature "
                f"extractors {list(policy_parts)}"
            )
        try:
            model.load_part_state(
                key, read_weights(path, key), what=f"init checkpoint {path!r} for {key!r}"
            )
        except CheckpointError as err:
            raise CheckpointError(
                f"{err}. It was saved from another model: use a checkpoint of "
                f"a model with the same {key!r} architecture (e.g. this "
                "config's pre-training stage)"
            ) from None
