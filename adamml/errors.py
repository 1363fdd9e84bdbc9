"""Typed exceptions raised by adamml.

Every error a user can cause derives from [`AdamMLError`][adamml.errors.AdamMLError], so
``except adamml.AdamMLError`` catches them all, and each also derives from the matching built-in
(``KeyError``, ``ValueError``, ...) so existing handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "AdamMLError",
    "UnknownNameError",
    "UnknownModalityError",
    "UnknownBackboneError",
    "UnknownPolicyError",
    "UnknownFusionError",
    "UnknownModelError",
    "UnknownDataSourceError",
    "DuplicateNameError",
    "ShapeError",
    "ConfigError",
    "CheckpointError",
    "WeightsUnavailableError",
    "UnusedInputWarning",
]


class AdamMLError(Exception):
    """Base class of every error adamml raises on bad input."""


class UnknownNameError(AdamMLError, KeyError):
    """A name was looked up in a registry that does not hold it (modalities, backbones, policies,
    fusions or models of AdaMML Sec. 3).

    Attributes:
        name: the name looked up (``None`` when raised without it).
        kind: what the registry holds, e.g. ``"modality"`` (``None`` when raised without it).
    """

    def __init__(self, message: str = "", *, name: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.name = name
        self.kind = kind

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class UnknownModalityError(UnknownNameError):
    """A modality name that no registry entry or plugin provides (AdaMML Sec. 3.1)."""


class UnknownBackboneError(UnknownNameError):
    """A backbone name that no registry entry or plugin provides (AdaMML appendix B)."""


class UnknownPolicyError(UnknownNameError):
    """A policy name that no registry entry or plugin provides (AdaMML Sec. 3.2)."""


class UnknownFusionError(UnknownNameError):
    """A fusion name that no registry entry or plugin provides (AdaMML Table 7)."""


class UnknownModelError(UnknownNameError):
    """A model name that is not registered (the paper's models: AdaMML Tables 1-3, 6)."""


class UnknownDataSourceError(UnknownNameError, ValueError):
    """A ``scheme:`` data source (``data.train: syntheticav:300``) that no registered source or
    plugin provides; also a ``ValueError``, as other bad config values are."""


class DuplicateNameError(AdamMLError, ValueError):
    """A second object was registered under a name that is taken (pass ``override=True``); the
    paper's built-ins (AdaMML Sec. 3) cannot be replaced by accident."""


class ShapeError(AdamMLError, ValueError):
    """A tensor does not have the shape a module expects (the paper's input shapes: AdaMML
    appendix B); the message names the tensor."""


class ConfigError(AdamMLError, ValueError):
    """A configuration value is missing, of the wrong type or out of range (e.g. a training
    schedule that departs from AdaMML Sec. 4 in an impossible way)."""


class CheckpointError(AdamMLError, RuntimeError):
    """A checkpoint cannot be read or does not fit the model, e.g. a reference AdaMML checkpoint
    for another configuration (the message lists the keys)."""


class WeightsUnavailableError(ConfigError):
    """Pretrained weights (``pretrained=True`` or ``"hf-hub:..."``; AdaMML Sec. 4.1 starts from
    ImageNet) are neither in the Hugging Face cache nor downloadable, e.g. with
    ``HF_HUB_OFFLINE=1`` and an empty cache; the message names the cache and how to fill it."""


class UnusedInputWarning(UserWarning):
    """A model input names a modality the model does not use; it is ignored. (One batch may
    feed several models, e.g. AdaMML and its fusion baseline; a key that names no modality at
    all raises `UnknownModalityError` instead.)"""
