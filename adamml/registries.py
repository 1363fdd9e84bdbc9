"""The registries of adamml: modalities, backbones, policies, fusions, models, data sources.

Each is a [`Registry`][adamml._registry.Registry]; built-ins register at import of their package
and plugins come from the entry-point group named in the table.

| registry | entry-point group | unknown-name error |
| --- | --- | --- |
| `MODALITIES` | `adamml.modalities` | `UnknownModalityError` |
| `BACKBONES` | `adamml.backbones` | `UnknownBackboneError` |
| `POLICIES` | `adamml.policies` | `UnknownPolicyError` |
| `FUSIONS` | `adamml.fusions` | `UnknownFusionError` |
| `MODELS` | `adamml.models` | `UnknownModelError` |
| `DATA_SOURCES` | `adamml.data_sources` | `UnknownDataSourceError` |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._registry import PluginInfo, Registry
from .errors import (
    UnknownBackboneError,
    UnknownDataSourceError,
    UnknownFusionError,
    UnknownModalityError,
    UnknownModelError,
    UnknownPolicyError,
)

__all__ = [
    "MODALITIES",
    "BACKBONES",
    "POLICIES",
    "FUSIONS",
    "MODELS",
    "DATA_SOURCES",
    "REGISTRIES",
    "list_plugins",
    "provenance",
    "not_registered",
]

MODALITIES: Registry[Any] = Registry(
    "modality", "adamml.modalities", UnknownModalityError, ("adamml.modalities",)
)
BACKBONES: Registry[Any] = Registry(
    "backbone", "adamml.backbones", UnknownBackboneError, ("adamml.backbones",)
)
POLICIES: Registry[Any] = Registry(
    "policy", "adamml.policies", UnknownPolicyError, ("adamml.policies",)
)
FUSIONS: Registry[Any] = Registry(
    "fusion", "adamml.fusions", UnknownFusionError, ("adamml.fusion",)
)


def _register_model_plugin(name: str, obj: Any) -> None:
    """A model entry point may name a factory or a `ModelRecipe` (registered with its tiny
    ``test_`` twin, like the built-in models)."""
    from .zoo import ModelRecipe, register_model

    if isinstance(obj, ModelRecipe):
        register_model(name, obj)
    else:
        MODELS.register(name, obj)


MODELS: Registry[Any] = Registry(
    "model", "adamml.models", UnknownModelError, ("adamml.zoo",), _register_model_plugin
)
DATA_SOURCES: Registry[Any] = Registry(
    "data source",
    "adamml.data_sources",
    UnknownDataSourceError,
    ("adamml.data.sources", "adamml.data.synthetic.patterns", "adamml.data.synthetic.source"),
)

#: Every registry by entry-point group (what ``list_plugins`` walks).
REGISTRIES: dict[str, Registry[Any]] = {
    reg.group: reg for reg in (MODALITIES, BACKBONES, POLICIES, FUSIONS, MODELS, DATA_SOURCES)
}


def list_plugins(group: str | None = None, *, include_builtin: bool = False) -> list[PluginInfo]:
    """Components provided by plugins (and optionally built-ins), with their provenance.

    Args:
        group: restrict to one entry-point group, e.g. ``"adamml.modalities"``.
        include_builtin: also list built-in and user-registered components.

    Returns:
        One [`PluginInfo`][adamml._registry.PluginInfo] per component, sorted by group and name.

    Example:
        >>> import adamml
        >>> [p.name for p in adamml.list_plugins()]  # doctest: +SKIP
        ['my_modality']
    """
    out: list[PluginInfo] = []
    for g, reg in sorted(REGISTRIES.items()):
        if group is not None and g != group:
            continue
        for name in reg.list():
            info = reg.info(name)
            if include_builtin or info.source == "plugin":
                out.append(info)
    return out


def provenance(components: Mapping[str, Iterable[str]]) -> list[dict[str, str]]:
    """Where each component in ``components`` that is not built in came from, as plain values
    for a checkpoint (so that loading it where a plugin is missing can name the plugin).

    Args:
        components: registered names by entry-point group, e.g.
            ``{"adamml.modalities": ("rgb", "depth")}`` (what ``AdaMML.components`` holds);
            names no registry holds (``timm:<name>``) are left out.

    Returns:
        One dict per plugin or run-time (``"user"``) component, sorted: ``group``, ``kind``,
        ``name``, ``source``, ``distribution`` (``"name version"``; ``""`` for a run-time one)
        and ``value`` (``"module:attr"``).

    Example:
        >>> provenance({"adamml.modalities": ("rgb", "audio")})
        []
    """
    out = []
    for group, names in components.items():
        reg = REGISTRIES.get(group)
        for name in dict.fromkeys(names):
            if reg is None or name not in reg:
                continue
            info = reg.info(name)
            if info.source != "builtin":
                out.append(
                    {
                        "group": group,
                        "kind": reg.kind,
                        "name": info.name,
                        "source": info.source,
                        "distribution": info.distribution or "",
                        "value": info.value,
                    }
                )
    return sorted(out, key=lambda d: (d["group"], d["name"]))


def not_registered(recorded: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """The entries of a [`provenance`][adamml.registries.provenance] record whose component is
    not registered here (its plugin is not installed, or nothing registered it at run time)."""
    return [
        dict(entry)
        for entry in recorded
        if entry.get("group") in REGISTRIES and entry.get("name") not in REGISTRIES[entry["group"]]
    ]
