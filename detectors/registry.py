"""Name -> detector class registry, spec parsing and state dispatch.

Why: the service configures detectors from YAML/JSON (``{"name": ..., "params": {...}}``) and
restores checkpointed state without knowing the concrete class, so both go through one table.
``default`` is an *alias* (chosen by ``benchmarks/nab_benchmark.py`` measurements), so restoring
a ``default`` detector's state yields the concrete detector it pointed to when it was saved.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from .base import BaseDetector

_REGISTRY: dict[str, type[BaseDetector]] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, cls: type[BaseDetector] | None = None, *, replace: bool = False) -> Any:
    """Register ``cls`` under ``name``; usable as ``register("x", Cls)`` or a class decorator."""

    def deco(c: type[BaseDetector]) -> type[BaseDetector]:
        if not name or not isinstance(name, str):
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if not replace and (name in _REGISTRY or name in _ALIASES):
            raise ValueError(f"name {name!r} is already registered")
        if getattr(c, "name", None) != name:
            raise ValueError(f"name {name!r} must equal {c.__name__}.name ({c.name!r})")
        _ALIASES.pop(name, None)
        _REGISTRY[name] = c
        return c

    return deco if cls is None else deco(cls)


def alias(name: str, target: str) -> None:
    """Make ``name`` (e.g. ``"default"``) point at the registered detector ``target``."""
    if target not in _REGISTRY:
        raise ValueError(f"target {target!r} is not a registered detector")
    if name in _REGISTRY:
        raise ValueError(f"name {name!r} is a detector, not an alias")
    _ALIASES[name] = target


def resolve(name: str) -> type[BaseDetector]:
    name = _ALIASES.get(name, name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; known: {list_detectors()}") from None


def discover() -> list[str]:
    """Import every public module of this package so that all detectors register themselves.

    The package ``__init__`` imports the core detectors; modules contributed elsewhere (e.g. the
    rules' seasonal baseline) register on import. Tests and benchmarks call this to cover them.
    """
    package = __name__.rpartition(".")[0]
    path = importlib.import_module(package).__path__
    for mod in pkgutil.iter_modules(path):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
    return list_detectors()


def list_detectors(*, include_aliases: bool = False) -> list[str]:
    """Registered detector names (sorted); aliases such as ``default`` only on request."""
    names = sorted(_REGISTRY)
    if include_aliases:
        names += sorted(_ALIASES)
    return names


def aliases() -> dict[str, str]:
    return dict(_ALIASES)


def create(spec: str | Mapping[str, Any] = "default", **params: Any) -> BaseDetector:
    """Build a detector from a name or a spec ``{"name": ..., "params": {...}}``.

    Keyword arguments override/extend the spec's params.
    """
    if isinstance(spec, str):
        name, p = spec, {}
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "params"}
        if unknown:
            raise ValueError(f"spec has unknown keys {sorted(unknown)}")
        if "name" not in spec:
            raise ValueError("spec needs a 'name'")
        name, p = spec["name"], dict(spec.get("params") or {})
    else:
        raise ValueError(f"spec must be a name or a mapping, got {type(spec).__name__}")
    p.update(params)
    cls = resolve(name)
    bad = set(p) - set(cls.param_names())
    if bad:
        raise ValueError(f"unknown params {sorted(bad)} for detector {cls.name!r}")
    return cls(**p)


def from_state(state: Mapping[str, Any]) -> BaseDetector:
    """Restore any registered detector from ``to_state()`` output (dispatch on ``"name"``)."""
    if not isinstance(state, Mapping) or "name" not in state:
        raise ValueError("state must be a mapping with a 'name' key")
    return resolve(state["name"]).from_state(state)
