"""Deliberately broken controllers: each is the reference with ONE realistic bug.

The acceptance suite must catch every one of them; a variant that passes shows a blind spot in the
tests. Each overrides exactly one small method of :class:`ReferenceController`.
"""

from __future__ import annotations

import numpy as np

from harness.controller.model import BreakerCommand, ControllerCommands, PcsControl, PlantView
from harness.controller.reference import ControllerConfig, ReferenceController

REFERENCE = "reference"


class NeverIsland(ReferenceController):
    """Islanding is disabled: on grid loss the PCS ceases and the racks see a dead bus."""

    def _islanding_enabled(self) -> bool:
        return False


class IgnoresPackFaults(ReferenceController):
    """Reports faulted packs but never opens their contactors."""

    def _fault_isolations(self, view: PlantView) -> np.ndarray:
        return np.zeros(view.packs.n, bool)


class EqualSharing(ReferenceController):
    """Splits power equally over the packs, blind to their SoH, SOC and limits: weak packs empty
    first and strong ones are held back."""

    def _share(self, total_w: float, view: PlantView, usable: np.ndarray, reserve_soc: float) -> np.ndarray:
        count = int(usable.sum())
        return np.where(usable, total_w / count, 0.0) if count else np.zeros(view.packs.n)


class NoSyncCheck(ReferenceController):
    """Recloses onto the grid bypassing the relay's sync check (out-of-phase closing)."""

    def _close_command(self) -> BreakerCommand:
        return BreakerCommand.CLOSE_BYPASSING_SYNC_CHECK


class NoSmoothing(ReferenceController):
    """Leaves the PCS in plain power mode, so the racks' training swings reach the grid."""

    def _grid_control(self) -> PcsControl:
        return PcsControl.POWER


class TrustsStaleBms(ReferenceController):
    """Never watches BMS heartbeats: keeps using packs whose data stopped."""

    def _stale_packs(self, now_s: float, heartbeat_moved_s: np.ndarray) -> np.ndarray:
        return np.zeros(heartbeat_moved_s.shape, bool)


class NoReserve(ReferenceController):
    """Never checks the SOC reserve: discharges the fleet below it."""

    def _at_reserve(self, view: PlantView, commands: ControllerCommands) -> bool:
        return False


class NoPowerCap(ReferenceController):
    """Never asks the racks for a power cap when the fleet falls short: the bus sags instead."""

    def _shortfall_cap_w(self, now_s: float, view: PlantView) -> float | None:
        return None


VARIANTS: dict[str, type[ReferenceController]] = {
    "never-island": NeverIsland,
    "ignores-pack-faults": IgnoresPackFaults,
    "equal-sharing": EqualSharing,
    "no-sync-check": NoSyncCheck,
    "no-smoothing": NoSmoothing,
    "trusts-stale-bms": TrustsStaleBms,
    "no-reserve": NoReserve,
    "no-power-cap": NoPowerCap,
}
"""Broken variants by name; ``build_controller`` also takes ``"reference"`` (or None)."""


def variant_names() -> list[str]:
    """The broken variants' names, sorted."""
    return sorted(VARIANTS)


def build_controller(name: str | None, config: ControllerConfig | None = None) -> ReferenceController:
    """The controller called ``name``: None or ``"reference"`` for the reference, else a variant."""
    if name is None or name == REFERENCE:
        return ReferenceController(config)
    try:
        cls = VARIANTS[name]
    except KeyError:
        known = ", ".join([REFERENCE, *variant_names()])
        raise ValueError(f"unknown controller {name!r}; known: {known}") from None
    return cls(config)
