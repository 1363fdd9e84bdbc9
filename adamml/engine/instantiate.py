"""Build models by name and rebuild them from training checkpoints.

A training checkpoint stores ``model_name``, ``num_classes`` and ``model_args`` beside the
weights, so ``adamml eval`` and ``adamml predict`` need nothing but the file, and ``plugins``:
where each component it was built from that is not built in came from (`plugin_record`), so
that loading it where a plugin is missing names the plugin and its distribution.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, UnknownNameError
from ..model import load_weights_strict
from ..registries import not_registered, provenance
from .checkpoint import FORMAT, load_checkpoint, read_torch_file

__all__ = [
    "build_model",
    "model_from_checkpoint",
    "plugin_record",
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
        CheckpointError: if the file is not a training checkpoint, its model or a modality,
            backbone, policy or fusion it was built from is not registered here (a plugin that
            is not installed: named with its distribution when the checkpoint recorded it), or
            the weights do not fit.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    for key in ("model_name", "num_classes", "model"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks {key!r}")
    name = ckpt["model_name"]
    missing = not_registered(ckpt.get("plugins") or [])
    if missing:
        raise CheckpointError(_missing_plugins(str(path), name, missing))
    # the checkpoint holds every weight: the pretrained start of its training is not fetched
    args = {k: v for k, v in (ckpt.get("model_args") or {}).items() if k != "pretrained"}
    try:
        model = build_model(name, int(ckpt["num_classes"]), args)
    except UnknownNameError as err:  # a plugin's component without its plugin, not recorded
        needed = err.name or name
        what = (
            "which is not registered here"
            if err.kind in (None, "model") and needed == name
            else f"which needs the {err.kind or 'component'} {needed!r}, not registered here"
        )
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds model {name!r}, {what}: install the plugin that "
            f"provides it (`adamml list plugins` shows the ones loaded). {err}"
        ) from None
    load_state_strict(model, ckpt["model"], f"checkpoint {str(path)!r}")
    return model.to(map_location).eval(), ckpt


def plugin_record(model: nn.Module, model_name: str) -> list[dict[str, str]]:
    """What a checkpoint records of the plugins ``model`` needs: the
    [`provenance`][adamml.registries.provenance] of its ``components`` (`AdaMML.components`)
    and of ``model_name``; empty when everything is built in."""
    components = dict(getattr(model, "components", None) or {})
    if ":" not in model_name:  # a module:factory name is imported, not registered
        components.setdefault("adamml.models", (model_name,))
    return provenance(components)


def _missing_plugins(path: str, name: str, missing: list[dict[str, str]]) -> str:
    """One sentence per distribution that provided components the checkpoint needs."""
    order = ("model", "modality", "backbone", "policy", "fusion")
    missing = sorted(
        missing, key=lambda e: order.index(e["kind"]) if e.get("kind") in order else len(order)
    )
    groups: dict[tuple[str, str], list[str]] = {}
    for entry in missing:
        key = (entry.get("source", ""), entry.get("distribution", ""))
        groups.setdefault(key, []).append(f"{entry.get('kind', 'component')} {entry['name']!r}")
    parts = []
    for (source, dist), things in groups.items():
        listed = " and ".join([", ".join(things[:-1]), things[-1]] if len(things) > 1 else things)
        one = len(things) == 1
        if source == "plugin":
            project = dist.split(" ")[0] if dist and dist != "unknown" else ""
            parts.append(
                f"{listed} {'comes' if one else 'come'} from the plugin distribution "
                f"{dist or 'unknown'}, which is not installed here: install the plugin that "
                f"provides {'it' if one else 'them'}"
                + (f" (pip install {project})" if project else "")
            )
        else:
            parts.append(
                f"{listed} {'was' if one else 'were'} registered at run time by the code that "
                f"trained it, not by a plugin: register {'it' if one else 'them'} again before "
                "loading"
            )
    return (
        f"checkpoint {path!r} holds model {name!r}, which cannot be rebuilt here: "
        + "; ".join(parts)
        + ". `adamml list plugins` shows the plugins installed here"
    )


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
    check_init_keys(model, init)
    for key, path in init.items():
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


def check_init_keys(model: nn.Module, init: Mapping[str, str]) -> None:
    """Check that every key of ``init`` names a part of ``model`` (files are not read).

    Raises:
        ConfigError: naming the key and the model's parts.
    """
    if init and not hasattr(model, "load_part_state"):
        raise ConfigError(
            f"init needs a model with parts (part_names, load_part_state; see "
            f"adamml.AdaMML); {type(model).__name__} has none"
        )
    for key in init:
        if key not in model.part_names:
            policy_parts = tuple(getattr(model, "policy_part_names", ()))
            recognition = [p for p in model.part_names if p not in policy_parts]
            raise ConfigError(
                f"init names {key!r}, which is not a part of this model; its "
                f"backbones are {recognition} and its policy's feature "
                f"extractors {list(policy_parts)}"
            )


def check_init_files(init: Mapping[str, str]) -> None:
    """Check that every ``init`` file exists, before hours of pre-training find out.

    Raises:
        CheckpointError: naming the part and the path.
    """
    for key, path in init.items():
        if not Path(path).is_file():
            raise CheckpointError(f"init checkpoint {str(path)!r} for {key!r} does not exist")
