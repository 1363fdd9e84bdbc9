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
    "DuplicateNameError",
    "ShapeError",
    "ConfigError",
    "CheckpointError",
]


class AdamMLError(Exception):
    """Base class of every error adamml raises on bad input."""


class UnknownNameError(AdamMLError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class UnknownModalityError(UnknownNameError):
    """A modality name that no registry entry or plugin provides."""


class UnknownBackboneError(UnknownNameError):
    """A backbone name that no registry entry or plugin provides."""


class UnknownPolicyError(UnknownNameError):
    """A policy name that no registry entry or plugin provides."""


class UnknownFusionError(UnknownNameError):
    """A fusion name that no registry entry or plugin provides."""


class UnknownModelError(UnknownNameError):
    """A model name that is not registered."""


class DuplicateNameError(AdamMLError, ValueError):
    """A second object was registered under a name that is taken (pass ``override=True``)."""


class ShapeError(AdamMLError, ValueError):
    """A tensor does not have the shape a module expects; the message names the tensor."""


class ConfigError(AdamMLError, ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


class CheckpointError(AdamMLError, RuntimeError):
    """A checkpoint cannot be read or does not fit the model (the message lists the keys)."""
