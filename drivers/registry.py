"""Drivers by name, so a bench file can say ``driver = "chroma-17040"``.

Built-in drivers register themselves with :func:`register` when ``drivers.builtin`` is imported.
A lab adds its own from its own package through the ``gridhil.drivers`` entry-point group::

    [project.entry-points."gridhil.drivers"]
    acme-bms = "acme_lab.bms:AcmeBmsDriver"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from drivers.base import Driver

ENTRY_POINT_GROUP = "gridhil.drivers"

_REGISTRY: dict[str, type[Driver]] = {}


def register(name: str) -> Callable[[type[Driver]], type[Driver]]:
    """Class decorator: make a driver available under ``name``."""

    def add(cls: type[Driver]) -> type[Driver]:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            owner = f"{existing.__module__}.{existing.__qualname__}"
            raise ValueError(f"driver name {name!r} is taken by {owner}")
        _REGISTRY[name] = cls
        return cls

    return add


def _load_all() -> None:
    import_module("drivers.builtin")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _REGISTRY:
            register(entry.name)(entry.load())


def driver_class(name: str) -> type[Driver]:
    """The driver registered as ``name``; KeyError listing the known names otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no driver named {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def driver_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)
