"""One generic registry type, with lazy plugin loading through Python entry points.

Built-in components register themselves with a decorator when their package is imported (as timm
does); third-party packages add components through the entry-point groups
``adamml.modalities``, ``adamml.backbones``, ``adamml.policies``, ``adamml.fusions`` and
``adamml.models`` (as pytest and pluggy do). Plugins are loaded the first time a registry is
asked for a name or a listing; a plugin that fails to import is reported with a warning that names
its distribution and the library keeps working. ``ADAMML_DISABLE_PLUGIN_AUTOLOAD=1`` turns
plugin loading off.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from .errors import DuplicateNameError, UnknownNameError

__all__ = ["Registry", "PluginInfo", "PluginWarning", "autoload_disabled"]

T = TypeVar("T")

DISABLE_ENV = "ADAMML_DISABLE_PLUGIN_AUTOLOAD"


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the library goes on without it."""


def autoload_disabled() -> bool:
    """Whether ``ADAMML_DISABLE_PLUGIN_AUTOLOAD`` turns plugin loading off (any value but empty
    or ``0``)."""
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0")


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered component came from.

    Attributes:
        group: the entry-point group, e.g. ``"adamml.modalities"``.
        name: the registered name.
        source: ``"builtin"``, ``"user"`` (registered at run time) or ``"plugin"``.
        distribution: the distribution that provided it (plugins only), e.g. ``"my-plugin 0.1"``.
        value: the entry-point value (``"module:attr"``) or the object's qualified name.
    """

    group: str
    name: str
    source: str
    distribution: str | None
    value: str

    @property
    def distribution_name(self) -> str | None:
        """The distribution's name, e.g. ``"my-plugin"`` (``None`` unless from a plugin)."""
        if not self.distribution:
            return None
        return self.distribution.rpartition(" ")[0] or self.distribution  # "unknown": no version

    @property
    def distribution_version(self) -> str | None:
        """The distribution's version, e.g. ``"0.1"`` (``None`` if unknown)."""
        if not self.distribution or " " not in self.distribution:
            return None
        return self.distribution.rpartition(" ")[2]


class Registry(Generic[T]):
    """A name -> object table for one kind of component (AdaMML's modalities, backbones, ...).

    Args:
        kind: the singular noun used in messages, e.g. ``"modality"``.
        group: the entry-point group read for plugins, e.g. ``"adamml.modalities"``.
        error: the exception type raised for an unknown name.
        builtins: modules imported before the first look-up so that built-ins are registered.
        on_plugin: how an object loaded from an entry point is registered,
            ``on_plugin(name, obj)``; by default ``register(name, obj)`` (MODELS turns a
            `ModelRecipe` into the model and its ``test_`` twin).

    Example:
        >>> from adamml import FUSIONS
        >>> "learnable" in FUSIONS.list()
        True
    """

    def __init__(
        self,
        kind: str,
        group: str,
        error: type[UnknownNameError] = UnknownNameError,
        builtins: tuple[str, ...] = (),
        on_plugin: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.kind = kind
        self._on_plugin = on_plugin
        self.group = group
        self.error = error
        self._builtins = builtins
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._info: dict[str, PluginInfo] = {}
        self._builtins_loaded = False
        self._plugins_loaded = False
        self._loading_source: tuple[str, str | None] | None = None

    # -- registration -------------------------------------------------------------------------
    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        aliases: tuple[str, ...] = (),
        override: bool = False,
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        Raises:
            DuplicateNameError: if ``name`` (or an alias) is taken and ``override`` is False.
        """

        def _add(o: T) -> T:
            for key in (name, *aliases):
                taken = key in self._items or key in self._aliases
                if taken and not override:
                    raise DuplicateNameError(
                        f"{self.kind} {key!r} is already registered "
                        f"({self._describe(key)}); pass override=True to replace it"
                    )
            self._items[name] = o
            self._aliases.pop(name, None)
            for alias in aliases:
                self._aliases[alias] = name
            source, dist = self._loading_source or (self._default_source(), None)
            value = f"{getattr(o, '__module__', '?')}:{getattr(o, '__qualname__', repr(o))}"
            self._info[name] = PluginInfo(self.group, name, source, dist, value)
            return o

        if obj is not None:
            return _add(obj)
        return _add

    def _default_source(self) -> str:
        return "builtin" if not self._builtins_loaded else "user"

    def _describe(self, key: str) -> str:
        info = self._info.get(self._aliases.get(key, key))
        if info is None:
            return "unknown origin"
        return info.distribution or info.source

    # -- loading ------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if not self._builtins_loaded:
            for module in self._builtins:
                importlib.import_module(module)
            self._builtins_loaded = True
        if not self._plugins_loaded:
            self._plugins_loaded = True
            if autoload_disabled():
                return
            self._load_plugins()

    def _load_plugins(self) -> None:
        for ep in metadata.entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            dist_name = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown"
            known = self._info.get(ep.name)
            if known is not None and known.source == "plugin":
                continue  # the same plugin seen twice on sys.path: skip the duplicate
            self._loading_source = ("plugin", dist_name)
            try:
                obj = ep.load()
                if ep.name not in self._items:
                    (self._on_plugin or self.register)(ep.name, obj)
                self._info[ep.name] = PluginInfo(self.group, ep.name, "plugin", dist_name, ep.value)
            except Exception as exc:  # a broken plugin must never take the library down
                warnings.warn(
                    f"adamml: could not load {self.kind} plugin {ep.name!r} = {ep.value!r} "
                    f"from distribution {dist_name!r}: {type(exc).__name__}: {exc}. "
                    f"The library continues without it; set {DISABLE_ENV}=1 to skip plugins.",
                    PluginWarning,
                    stacklevel=3,
                )
            finally:
                self._loading_source = None

    # -- look-up ------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (aliases resolved).

        Raises:
            UnknownNameError: (the registry's subclass) listing close matches and known names.
        """
        self._ensure_loaded()
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        known = sorted(self._items) + sorted(self._aliases)
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        raise self.error(
            f"{name!r} is not a registered {self.kind}{hint} "
            f"Known: {', '.join(sorted(self._items))}",
            name=str(name),
            kind=self.kind,
        )

    def get(self, name: str) -> T:
        """The object registered under ``name`` (or one of its aliases)."""
        return self._items[self.resolve(name)]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._items)

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern``, sorted."""
        self._ensure_loaded()
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def info(self, name: str) -> PluginInfo:
        """Where ``name`` came from (built-in, user or plugin, with the distribution)."""
        return self._info[self.resolve(name)]

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (for tests and interactive use)."""
        canonical = self.resolve(name)
        self._items.pop(canonical)
        self._info.pop(canonical, None)
        for alias in [a for a, n in self._aliases.items() if n == canonical]:
            del self._aliases[alias]

    def reload_plugins(self) -> None:
        """Forget loaded plugins and read the entry points again (after installing one)."""
        for name in [n for n, i in self._info.items() if i.source == "plugin"]:
            self.unregister(name)
        self._plugins_loaded = False
        self._ensure_loaded()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r}, {len(self._items)} entries)"
