"""The recorder: samples the bench through its drivers into a :class:`~harness.trace.TraceWriter`.

Everything recorded comes over the wire, as on a lab bench:

- ``load_meter`` (power analyzer at the rack bus, items ``URMS,1``, ``FU,1``, ``P,SIGMA``): bus
  voltage in pu of the phase-to-neutral nominal, bus frequency, load served;
- ``pcc_meter``: grid power (import +);
- ``controller`` link: mode, power cap (NaN when uncapped), fleet SOC, PCS power;
- ``battery`` emulator: per-pack SOC, current, whether the pack's contactor is open (isolated), its
  fault bits, and the conditions the emulator inserted (``FAULt:MASK?``, the stand-in's extension). An
  emulator without that extension (a real 17040) refuses the first read: from then on
  ``pack_injected`` is :data:`~harness.trace.INJECTED_UNKNOWN` and no longer asked, the trace's events
  say why, and the run goes on (a criterion that needs the channel says it cannot judge).

**Rates.** The fast channels are read every ``fast_period_s`` (default 0.1 s, the analyzer's update
interval: reading faster returns the same values). The per-pack channels cost six queries per pack
(``MEASure`` voltage, current, power, SOC and state, ``FAULt:MASK?``), about 4,800 for a reference
fleet (six in all with the battery's ``channel_lists`` option), so they are read every
``pack_period_s`` (default 1 s) and hold their last values in the samples between reads, as a trace
sample holds its value until the next (harness.trace). Sub-second events are not lost:
the analyzer logs voltage events to 1 ms, read into the trace by :meth:`Recorder.finish`.

``load_demand_w`` is not measured: it is the demand the electronic load was programmed to, computed
from the sequence's load profile by the ``demand_w`` function the runner gives, and averaged over the
sample's interval as the analyzer averages the power served over it, so a step in demand is not taken
for a deficit before the meter could have seen it. The average holds the profile's value from the
start of each ``demand_step_s``: on a simulated bench that is the plant's step, over which the plant
holds the racks' draw and the analyzer the bus (harness.clock.VirtualTime), so demand and served
agree through a load edge; on a lab bench a short step approximates the continuous mean.

On a simulated bench the plant's ground truth may also be read: :class:`PlantTruth` copies the
plant's journal and the PCC breaker's closes (what the sync-check saw) into the trace as they happen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from drivers.chroma_17040 import BatteryEmulator, ExtensionMissing
from drivers.controller_link import ControllerLink
from drivers.sunspec_meter import SunSpecMeter
from drivers.yokogawa_wt import PowerAnalyzer
from harness.sim.plant import Plant
from harness.sim.voltage_events import VoltageEvent, VoltageEventKind
from harness.trace import (
    BUS_FREQUENCY_HZ,
    BUS_VOLTAGE_PU,
    CONTROLLER_MODE,
    FLEET_SOC,
    GRID_W,
    INJECTED_UNKNOWN,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    PACK_CURRENT_A,
    PACK_FAULT,
    PACK_INJECTED,
    PACK_ISOLATED,
    PACK_SOC,
    PCS_W,
    POWER_CAP_W,
    BreakerClose,
    ChannelSpec,
    TraceEvent,
    TraceWriter,
)

FAST_PERIOD_S = 0.1
PACK_PERIOD_S = 1.0
ANALYZER_ITEMS = (("URMS", 1), ("FU", 1), ("P", "SIGMA"))
_URMS, _FU, _P = (f"{function},{element}" for function, element in ANALYZER_ITEMS)
PERCENT = 100.0
DEMAND_STEP_S = 0.001
_Driver = TypeVar("_Driver")


@dataclass(frozen=True)
class RecorderRates:
    fast_period_s: float = FAST_PERIOD_S
    pack_period_s: float = PACK_PERIOD_S
    demand_step_s: float = DEMAND_STEP_S

    def __post_init__(self) -> None:
        if not 0.0 < self.demand_step_s <= self.fast_period_s <= self.pack_period_s:
            raise ValueError(f"need 0 < demand_step_s <= fast_period_s <= pack_period_s, got {self}")


DEFAULT_RATES = RecorderRates()


def trace_channels(packs: int) -> dict[str, ChannelSpec]:
    """The channels a :class:`Recorder` writes for a bench of ``packs`` battery channels."""
    per_pack = ChannelSpec("float64", (packs,))
    return {
        BUS_VOLTAGE_PU: ChannelSpec(),
        BUS_FREQUENCY_HZ: ChannelSpec(),
        LOAD_DEMAND_W: ChannelSpec(),
        LOAD_SERVED_W: ChannelSpec(),
        GRID_W: ChannelSpec(),
        PCS_W: ChannelSpec(),
        POWER_CAP_W: ChannelSpec(),
        FLEET_SOC: ChannelSpec(),
        CONTROLLER_MODE: ChannelSpec("int64"),
        PACK_SOC: per_pack,
        PACK_CURRENT_A: per_pack,
        PACK_ISOLATED: ChannelSpec("bool", (packs,)),
        PACK_FAULT: ChannelSpec("int64", (packs,)),
        PACK_INJECTED: ChannelSpec("int64", (packs,)),
    }


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


class Recorder:
    """Reads the bench's meters, controller and battery emulator into ``writer``, one sample a call."""

    def __init__(
        self,
        writer: TraceWriter,
        drivers: Mapping[str, object],
        *,
        demand_w: Callable[[float], float],
        nominal_phase_v: float,
        rates: RecorderRates = DEFAULT_RATES,
    ) -> None:
        self.writer = writer
        self.analyzer = _role(drivers, "load_meter", PowerAnalyzer)
        self.pcc_meter = _role(drivers, "pcc_meter", SunSpecMeter)
        self.controller = _role(drivers, "controller", ControllerLink)
        self.battery = _role(drivers, "battery", BatteryEmulator)
        self.demand_w = demand_w
        self.nominal_phase_v = nominal_phase_v
        self.rates = rates
        packs = self.battery.channels
        self._pack_soc = np.full(packs, math.nan)
        self._pack_current_a = np.full(packs, math.nan)
        self._pack_isolated = np.zeros(packs, dtype=bool)
        self._pack_fault = np.zeros(packs, dtype=np.int64)
        self._pack_injected = np.zeros(packs, dtype=np.int64)
        self._reads_injected = True
        self._next_pack_read_s = -math.inf
        self.analyzer.configure(ANALYZER_ITEMS)

    @property
    def packs(self) -> int:
        return int(self._pack_soc.size)

    def sample(self, t_s: float) -> None:
        """One sample at ``t_s``; the packs are read again if ``pack_period_s`` has passed."""
        if t_s >= self._next_pack_read_s - 1e-9:
            self._read_packs(t_s)
            self._next_pack_read_s = t_s + self.rates.pack_period_s
        bus = self.analyzer.read()
        status = self.controller.status()
        self.writer.append(
            t_s,
            {
                BUS_VOLTAGE_PU: _number(bus[_URMS]) / self.nominal_phase_v,
                BUS_FREQUENCY_HZ: _number(bus[_FU]),
                LOAD_DEMAND_W: self._mean_demand_w(t_s),
                LOAD_SERVED_W: _number(bus[_P]),
                GRID_W: self.pcc_meter.read().power_w,
                PCS_W: status.pcs_w,
                POWER_CAP_W: _number(status.power_cap_w),
                FLEET_SOC: status.fleet_soc,
                CONTROLLER_MODE: int(status.mode),
                PACK_SOC: self._pack_soc,
                PACK_CURRENT_A: self._pack_current_a,
                PACK_ISOLATED: self._pack_isolated,
                PACK_FAULT: self._pack_fault,
                PACK_INJECTED: self._pack_injected,
            },
        )

    def _mean_demand_w(self, t_s: float) -> float:
        start_s = max(0.0, t_s - self.rates.fast_period_s)
        steps = max(1, round((t_s - start_s) / self.rates.demand_step_s))
        span_s = (t_s - start_s) / steps
        return sum(self.demand_w(start_s + k * span_s) for k in range(steps)) / steps

    def _read_packs(self, t_s: float) -> None:
        readings, states = self.battery.measure_all(), self.battery.state_all()
        self._pack_soc[:] = [reading.soc_pct / PERCENT for reading in readings]
        self._pack_current_a[:] = [reading.current_a for reading in readings]
        self._pack_isolated[:] = [not state.output_on for state in states]
        self._pack_fault[:] = [state.fault_bits for state in states]
        if self._reads_injected:
            self._read_injected(t_s)

    def _read_injected(self, t_s: float) -> None:
        try:
            self._pack_injected[:] = [int(mask) for mask in self.battery.injected_all()]
        except ExtensionMissing as missing:
            self._reads_injected = False
            self._pack_injected[:] = INJECTED_UNKNOWN
            self.writer.event(
                TraceEvent(t_s, "recorder", f"{PACK_INJECTED} unknown from here on: {missing.problem}")
            )

    def finish(self) -> None:
        """Copy the analyzer's voltage event log into the trace and flush it."""
        for event in self.analyzer.events():
            kind = VoltageEventKind(event.kind.value.lower())
            self.writer.voltage_event(VoltageEvent(kind, event.start_s, event.duration_s, event.residual_pu))
        self.writer.flush()


def _role(drivers: Mapping[str, object], role: str, kind: type[_Driver]) -> _Driver:
    driver = drivers.get(role)
    if not isinstance(driver, kind):
        found = "nothing" if driver is None else type(driver).__name__
        raise TypeError(f"the recorder needs a {kind.__name__} as role {role!r}, the bench has {found}")
    return driver


class PlantTruth:
    """Copies a simulated plant's journal lines and breaker closes into the trace as they appear."""

    def __init__(self, plant: Plant, lock: threading.RLock, writer: TraceWriter) -> None:
        self.plant = plant
        self.lock = lock
        self.writer = writer
        self._journal_seen = 0
        self._closes_seen = 0

    def drain(self, _t_s: float = 0.0) -> None:
        with self.lock:
            journal = self.plant.journal[self._journal_seen :]
            closes = self.plant.pcc.closes[self._closes_seen :]
        self._journal_seen += len(journal)
        self._closes_seen += len(closes)
        for entry in journal:
            self.writer.event(TraceEvent(entry.t, "plant", entry.text))
        for close in closes:
            sync = close.sync
            self.writer.breaker_close(
                BreakerClose(close.t, sync.dv_pu, sync.df_hz, sync.dtheta_deg, close.sync_checked)
            )
