"""Builders of small, realistic fleets for tests of the plant physics."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from harness.sim.chemistry import Chemistry
from harness.sim.fleet import FleetSpec

PACK_DEFAULTS: dict[str, float] = {
    "make": 0,
    "series_cells": 96,
    "capacity_new_ah": 200.0,
    "resistance_ratio": 1.0,
    "r0_new_ohm": 0.1,
    "r1_new_ohm": 0.05,
    "tau_s": 30.0,
    "weakest_cell": 0.97,
    "strongest_cell": 1.03,
    "max_discharge_a": 300.0,
    "max_charge_a": 300.0,
    "thermal_mass_j_per_k": 1.5e5,
    "thermal_resistance_k_per_w": 0.02,
    "knee": False,
}
"""One 96s pack of about 70 kWh when new; every value is overridable per field in :func:`uniform_fleet`."""

_INTEGER_FIELDS = {"make", "chemistry", "series_cells"}


def uniform_fleet(
    n: int,
    chemistry: Chemistry | np.ndarray = Chemistry.NMC,
    soh: float | np.ndarray = 0.8,
    **overrides: object,
) -> FleetSpec:
    """A fleet of ``n`` packs, identical unless a FleetSpec field is overridden by an (n,) array.

    Any field may be overridden by a scalar (every pack) or an array of shape (n,).
    """
    values = {**PACK_DEFAULTS, "chemistry": chemistry, "soh": soh, **overrides}
    names = {f.name for f in fields(FleetSpec)}
    unknown = set(values) - names
    if unknown:
        raise TypeError(f"not FleetSpec fields: {sorted(unknown)}")
    columns = {}
    for name in names:
        dtype = np.intp if name in _INTEGER_FIELDS else (bool if name == "knee" else float)
        columns[name] = np.array(np.broadcast_to(np.asarray(values[name], dtype=dtype), (n,)))
    return FleetSpec(**columns)
