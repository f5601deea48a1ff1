"""What each relay of the fault-insertion relay box is wired to in the plant.

A relay that is on (energised) holds its fault; turning it off undoes the fault, not its consequences
(a contactor that opened stays open until the controller closes it, a tripped PCS stays tripped).

- :class:`PackContactor` — on: the pack's contactor is forced open and cannot close
  (``InjectedFault.CONTACTOR_FAILED_OPEN``); off: the contactor may close again.
- :class:`PackBmsLink` — on: the pack's BMS link is cut (``InjectedFault.BMS_COMMS_LOSS``); off: restored.
- :class:`PcsUnit` — on: the PCS unit trips (``pcs.set_unit_available(unit, False)``); off: available again.
- :class:`GridBreaker` — on: the utility's breaker upstream of the PCC opens
  (``plant.utility_breaker_open``), so the grid is gone at the PCC whatever the grid simulator does;
  off: it closes again.

:meth:`RelayWiring.default` wires a plant as: relays 0-3 the PCS units (as many as the plant has),
relay 4 the grid breaker, then the contactors of the first few packs, then those packs' BMS links.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from harness.sim.packs import InjectedFault
from harness.sim.plant import Plant

DEFAULT_RELAY_COUNT = 16
PCS_RELAYS = 4
GRID_BREAKER_RELAY = 4
DEFAULT_WIRED_PACKS = 5


class WiringTarget(Protocol):
    """What a relay switches: a fault it inserts while on and removes when turned off."""

    def check(self, plant: Plant) -> None:
        """Raise ValueError if the plant has no such part."""

    def energise(self, plant: Plant) -> None: ...

    def release(self, plant: Plant) -> None: ...


@dataclass(frozen=True)
class _PackFault:
    pack: int
    fault: ClassVar[InjectedFault]

    def check(self, plant: Plant) -> None:
        if not 0 <= self.pack < plant.packs.n:
            raise ValueError(f"{self} wired to a plant of {plant.packs.n} packs")

    def energise(self, plant: Plant) -> None:
        plant.packs.inject(self.fault, self.pack)

    def release(self, plant: Plant) -> None:
        plant.packs.clear(self.fault, self.pack)


@dataclass(frozen=True)
class PackContactor(_PackFault):
    fault: ClassVar[InjectedFault] = InjectedFault.CONTACTOR_FAILED_OPEN


@dataclass(frozen=True)
class PackBmsLink(_PackFault):
    fault: ClassVar[InjectedFault] = InjectedFault.BMS_COMMS_LOSS


@dataclass(frozen=True)
class PcsUnit:
    unit: int

    def check(self, plant: Plant) -> None:
        if not 0 <= self.unit < len(plant.pcs.units):
            raise ValueError(f"{self} wired to a PCS of {len(plant.pcs.units)} units")

    def energise(self, plant: Plant) -> None:
        plant.pcs.set_unit_available(self.unit, False)

    def release(self, plant: Plant) -> None:
        plant.pcs.set_unit_available(self.unit, True)


@dataclass(frozen=True)
class GridBreaker:
    def check(self, plant: Plant) -> None:
        """Every plant has a grid."""

    def energise(self, plant: Plant) -> None:
        plant.utility_breaker_open = True

    def release(self, plant: Plant) -> None:
        plant.utility_breaker_open = False


@dataclass(frozen=True)
class RelayWiring:
    """Relay number (0-based) -> what it is wired to, for a box of ``relay_count`` relays.

    Relays not in ``targets`` are spare: they switch, and nothing in the plant notices.
    """

    relay_count: int = DEFAULT_RELAY_COUNT
    targets: Mapping[int, WiringTarget] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.relay_count <= 36:
            raise ValueError(f"a relay box has 1..36 relays (0-9 then A-Z), not {self.relay_count}")
        outside = sorted(relay for relay in self.targets if not 0 <= relay < self.relay_count)
        if outside:
            raise ValueError(f"relays {outside} outside 0..{self.relay_count - 1}")

    @classmethod
    def default(cls, plant: Plant, relay_count: int = DEFAULT_RELAY_COUNT) -> RelayWiring:
        targets: dict[int, WiringTarget] = {
            relay: PcsUnit(relay) for relay in range(min(PCS_RELAYS, len(plant.pcs.units), relay_count))
        }
        if relay_count > GRID_BREAKER_RELAY:
            targets[GRID_BREAKER_RELAY] = GridBreaker()
        first = GRID_BREAKER_RELAY + 1
        packs = max(0, min(DEFAULT_WIRED_PACKS, plant.packs.n, (relay_count - first) // 2))
        for pack in range(packs):
            targets[first + pack] = PackContactor(pack)
            targets[first + packs + pack] = PackBmsLink(pack)
        return cls(relay_count, targets)

    def check(self, plant: Plant) -> None:
        """Raise ValueError if a relay is wired to something ``plant`` does not have."""
        for target in self.targets.values():
            target.check(plant)

    def target(self, relay: int) -> WiringTarget | None:
        return self.targets.get(relay)
