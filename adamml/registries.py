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

from typing import Any

from ._registry import Registry
from .errors import (
    UnknownBackboneError,
    UnknownDataSourceError,
    UnknownFusionError,
    UnknownModalityError,
    UnknownModelError,
    UnknownPolicyError,
)

__all__ = ["MODALITIES", "BACKBONES", "POLICIES", "FUSIONS", "MODELS", "DATA_SOURCES"]

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
    "fusion", "adamml.fusions", UnknownFusionError, ("adamml.fusion",))
MODELS: Registry[Any] = Registry("model", "adamml.models", UnknownModelError, ("adamml.models",))
DATA_SOURCES: Registry[Any] = Registry(
    "data source", "adamml.data_sources", UnknownDataSourceError,
    ("adamml.data.sources", "adamml.data.synthetic.patterns", "adamml.data.synthetic.source"))
