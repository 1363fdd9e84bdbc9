"""The argument checks every block shares: keyword arguments, modality lists, input dicts.

Each check is written once here so that a factory, a policy, the router, a fusion and the model
report the same mistake with the same typed, one-line message (docs/errors.md).
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from torch import Tensor

from .errors import ConfigError, ShapeError, UnknownModalityError, UnusedInputWarning
from .modalities import MODALITIES
from .modalities import canonical_name as _canonical

__all__ = ["check_kwargs", "accepts", "canonical_modalities", "canonical_inputs"]


def _parameters(factory: Callable[..., Any]) -> Mapping[str, inspect.Parameter] | None:
    """The parameters of ``factory``'s signature; ``None`` for a builtin or C callable."""
    try:
        return inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None


def check_kwargs(
    factory: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    what: str,
    given: Iterable[str] = ("modalities",),
) -> None:
    """Check ``kwargs`` against the signature of ``factory`` before calling it.

    Args:
        factory: the class or function about to be called.
        kwargs: the keyword arguments the user chose.
        what: how the message names the factory, e.g. ``"policy 'lstm'"``.
        given: parameter names the caller passes itself (not the user's to choose).

    Raises:
        ConfigError: naming the unknown (or missing required) arguments and listing the
            accepted ones. A factory taking ``**kwargs`` or without a readable signature (some
            plugins) is not checked.

    Example:
        >>> check_kwargs(lambda modalities, *, p=0.5: None, {"q": 1}, what="policy 'x'")
        Traceback (most recent call last):
        ...
        adamml.errors.ConfigError: policy 'x' does not take ['q']; it accepts ['p']
    """
    params = _parameters(factory)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    skip = {"self", *given}
    accepted = sorted(
        n for n, p in params.items() if n not in skip and p.kind is not p.VAR_POSITIONAL
    )
    unknown = sorted(k for k in kwargs if k not in params or k in skip)
    if unknown:
        close = {k: difflib.get_close_matches(k, accepted, n=1) for k in unknown}
        hint = "".join(f"; {k!r}: did you mean {c[0]!r}?" for k, c in close.items() if c)
        raise ConfigError(f"{what} does not take {unknown}; it accepts {accepted}{hint}")
    missing = sorted(
        n
        for n, p in params.items()
        if n not in skip
        and n not in kwargs
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    if missing:
        raise ConfigError(f"{what} needs {missing}; it accepts {accepted}")


def accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` takes a keyword argument ``name`` (or any, through ``**kwargs``)."""
    params = _parameters(factory)
    if params is None:
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def canonical_modalities(
    modalities: Sequence[str] | str, *, what: str = "a block"
) -> tuple[str, ...]:
    """Modality names with aliases resolved (``sound`` -> ``audio``), in order (= M).

    Args:
        modalities: one name or a sequence of names.
        what: who needs them, for the message (``"a policy"``, ``"a fusion"``).

    Raises:
        ConfigError: if the list is empty, holds a non-string or names a modality twice.
    """
    if isinstance(modalities, str):
        modalities = (modalities,)
    names = tuple(modalities)
    if not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"{what} needs a non-empty sequence of modality names; got {modalities!r}"
        )
    out = tuple(_canonical(n) for n in names)
    if len(set(out)) != len(out):
        raise ConfigError(f"modalities must be distinct (aliases resolved); got {list(names)}")
    return out


def _type_name(x: Any) -> str:
    """``list``, ``numpy.ndarray``: the type of ``x`` as a user would write it."""
    return f"{type(x).__module__}.{type(x).__qualname__}".removeprefix("builtins.")


def _not_a_dict(inputs: Any, what: str) -> ShapeError:
    kind = _type_name(inputs)
    return ShapeError(
        f"{what} must be a dict {{modality: tensor (B, S, T, C, H, W)}}, e.g. "
        f"{{'rgb': x, 'audio': a}}; got a {kind}"
    )


def _check_value(name: str, x: Any, what: str) -> None:
    if isinstance(x, Tensor) or (
        hasattr(x, "gather") and hasattr(x, "shape") and not hasattr(x, "__array__")
    ):
        return  # a tensor or a SegmentSource
    kind = _type_name(x)
    if hasattr(x, "__array__"):
        fix = f"convert it with torch.from_numpy({what}[{name!r}])"
    elif isinstance(x, (list, tuple)):
        fix = "stack it into one tensor with torch.stack or torch.tensor"
    else:
        fix = "pass a torch.Tensor (or a SegmentSource)"
    raise ShapeError(f"{what}[{name!r}] is a {kind}, not a tensor (B, S, T, C, H, W); {fix}")


def canonical_inputs(
    inputs: Mapping[str, Any],
    needed: Sequence[str],
    *,
    what: str = "inputs",
    min_dim: int = 3,
    unused: str = "ignore",
) -> tuple[dict[str, Any], int, int]:
    """Check a ``{modality: tensor}`` dict and read its ``(B, S)``.

    Keys are resolved to canonical modality names; every name in ``needed`` must be present,
    be a tensor (or a ``SegmentSource``) with at least ``min_dim`` dimensions, and share the
    first one's ``(B, S)``.

    Args:
        inputs: the dict to check.
        needed: the modality names that must be in it, in order.
        what: the dict's name in messages (``"inputs"``, ``"policy views"``).
        min_dim: the fewest dimensions an entry may have (``B, S`` and at least one more).
        unused: what happens to keys that are registered modalities but not ``needed``:
            ``"ignore"`` (blocks: the model hands them a superset) or ``"warn"``
            (`UnusedInputWarning`; the model, which then also rejects a key that names no
            modality at all).

    Returns:
        ``(canonical dict of every key, B, S)``.

    Raises:
        ShapeError: if ``inputs`` is not a dict, an entry is missing, is not a tensor (numpy
            arrays and lists are named with the fix) or disagrees on ``(B, S)``.
        UnknownModalityError: for a key that names no modality (close matches listed).
    """
    if not isinstance(inputs, Mapping):
        raise _not_a_dict(inputs, what)
    canon: dict[str, Any] = {}
    for key, value in inputs.items():
        name = _canonical(key) if isinstance(key, str) else key
        if unused != "ignore" and name not in needed and name not in MODALITIES:
            try:
                MODALITIES.resolve(str(key))
            except UnknownModalityError as err:
                raise UnknownModalityError(
                    f"{what} key {err}", name=err.name, kind=err.kind
                ) from None
        if name in canon:
            raise ShapeError(
                f"{what} give modality {name!r} twice (aliases resolved): {list(inputs)}"
            )
        canon[name] = value
    missing = [m for m in needed if m not in canon]
    if missing:
        raise ShapeError(f"{what} lack {missing}; needed: {list(needed)}, got {list(inputs)}")
    extra = [k for k in canon if k not in needed]
    if extra and unused == "warn":
        warnings.warn(
            f"{what} hold {extra}, which this model does not use (it needs "
            f"{list(needed)}); they are ignored",
            UnusedInputWarning,
            stacklevel=3,
        )
    first: tuple[str, tuple[int, ...]] | None = None
    for name in needed:
        x = canon[name]
        _check_value(name, x, what)
        shape = tuple(x.shape)
        if len(shape) < min_dim:
            raise ShapeError(f"{what}[{name!r}] has shape {shape}; expected (B, S, T, C, H, W)")
        if first is None:
            first = (name, shape)
        elif shape[:2] != first[1][:2]:
            raise ShapeError(
                f"{what} disagree on (B, S): {first[0]!r} has shape {first[1]} "
                f"but {name!r} has shape {shape}"
            )
    if first is None:
        raise ShapeError(f"{what}: no modality is needed, so (B, S) cannot be read")
    return canon, first[1][0], first[1][1]
