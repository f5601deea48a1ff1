"""Chroma 63200 DC electronic load over a pseudo-terminal (serial): it plays the compute racks' profile.

The load is the plant's racks (``plant.load``): what it is set to draw becomes their power profile,
put in force at plant time when the load is switched on or a setting of the running mode changes.
Settings are checked before anything changes; a profile the plant refuses is -221 and changes nothing.

**Scale.** The load works at plant scale and sees the rack bus as a DC-equivalent bus:
``V = bus pu x nominal`` (``nominal`` = ``plant.grid.nominal_voltage_v``), ``P = load_served_w`` and
``I = P / V`` (``MEASure:VOLTage? CURRent? POWer?``). Current settings are converted to power at the
nominal voltage: a current ``I`` is the share ``I x nominal / rated`` of the racks' rated power.

**Modes** (``MODE``; the range letter L/M/H only bounds the values on a real 63200, here all share the
plant's ranges):

- ``CCL|CCM|CCH``: ``CURRent:STATic:L1 <A>`` -> ``Constant``.
- ``CPL|CPM|CPH``: ``POWer:STATic:L1 <W>`` -> ``Constant`` (``W / rated``).
- ``CCDL|CCDM|CCDH``: ``CURRent:DYNamic:L1|L2 <A>``, ``:T1|T2 <s>`` (time at each level), ``:RISE|FALL
  <A/us>`` -> ``TrainingSwings``: ``low``/``high`` = the lower/higher level as a share of rated power,
  ``period = T1 + T2``, ``duty`` = the higher level's time over the period. ``TrainingSwings`` has one edge
  time for both edges: the stand-in uses the mean of the rise and fall times (``|L1 - L2| / slew``), and
  every iteration starts with the higher level's rising edge.
- ``LIST`` (a stand-in-defined list mode; the real 63200's PROGram subsystem of stored files and
  sequences is not modelled): ``LIST:POWer <W>{,<W>}`` and ``LIST:DWELl <s>{,<s>}`` of equal length ->
  ``Steps``: each power holds for its dwell from the moment the load goes on, then the static power
  (``POWer:STATic:L1``) is in force again.

``LOAD ON|OFF`` switches the racks' profile on (the mode's profile) or off (``Constant(0)``);
``POWer:LIMit <W>`` (``INFinity``: none) is ``plant.load.power_cap_w``. ``CONFigure:REMote`` is stored.
The stand-in starts as the plant is: load ON in ``CPH`` at the racks' present uncapped demand.
``*RST`` (as the 63200 manual: factory defaults): load OFF, ``CCH``, every level 0, no power limit.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from enum import Enum
from functools import partial

from harness.sim.load import Constant, Profile, Steps, TrainingSwings
from harness.sim.plant import Plant
from harness.sim.scpi import (
    Boolean,
    Choice,
    CommandTable,
    ErrorCode,
    Number,
    Repeat,
    ScpiEngine,
    ScpiError,
    ScpiPtyServer,
)
from harness.sim.standins import StandIn

IDENTITY = "Chroma,63203,GRIDHIL-SIM,01.00"
DWELL_MIN_S = 0.001
DWELL_MAX_S = 100_000.0
SLEW_MIN_A_PER_US = 1e-6
SLEW_MAX_A_PER_US = 1e6
LIST_STEPS_MAX = 100


class LoadMode(Enum):
    CCL = "CCL"
    CCM = "CCM"
    CCH = "CCH"
    CPL = "CPL"
    CPM = "CPM"
    CPH = "CPH"
    CCDL = "CCDL"
    CCDM = "CCDM"
    CCDH = "CCDH"
    LIST = "LIST"


_LIMIT = Choice(["MINimum", "MAXimum"], optional=True)
"""The optional ``MIN|MAX`` of a numeric setting's query: its range limit instead of its value."""
_STATIC_CURRENT = (LoadMode.CCL, LoadMode.CCM, LoadMode.CCH)
_STATIC_POWER = (LoadMode.CPL, LoadMode.CPM, LoadMode.CPH)
_DYNAMIC_CURRENT = (LoadMode.CCDL, LoadMode.CCDM, LoadMode.CCDH)


@dataclass(frozen=True)
class LoadSettings:
    """Everything the load is set to; the plant sees :meth:`profile` of it while ``on``."""

    on: bool = False
    mode: LoadMode = LoadMode.CCH
    static_current_a: float = 0.0
    static_power_w: float = 0.0
    dynamic_l1_a: float = 0.0
    dynamic_l2_a: float = 0.0
    dynamic_t1_s: float = 0.5
    dynamic_t2_s: float = 0.5
    dynamic_rise_a_per_us: float = SLEW_MAX_A_PER_US
    dynamic_fall_a_per_us: float = SLEW_MAX_A_PER_US
    list_power_w: tuple[float, ...] = ()
    list_dwell_s: tuple[float, ...] = ()
    remote: bool = False
    power_limit_w: float = math.inf

    def profile(self, rated_w: float, nominal_v: float) -> Profile:
        """The racks' profile for these settings; -221 for settings the plant cannot play."""
        if not self.on:
            return Constant(0.0)
        amps = nominal_v / rated_w  # share of rated power per ampere
        try:
            if self.mode in _STATIC_CURRENT:
                return Constant(min(self.static_current_a * amps, 1.0))  # the maximum may round above 1
            if self.mode in _STATIC_POWER:
                return Constant(self.static_power_w / rated_w)
            if self.mode in _DYNAMIC_CURRENT:
                return self._swings(amps)
            return self._steps(rated_w)
        except ValueError as exc:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, str(exc)) from exc

    def _swings(self, amps: float) -> TrainingSwings:
        l1, l2 = self.dynamic_l1_a, self.dynamic_l2_a
        swing_a = abs(l1 - l2)
        edge_s = 0.5 * (swing_a / self.dynamic_rise_a_per_us + swing_a / self.dynamic_fall_a_per_us) * 1e-6
        period_s = self.dynamic_t1_s + self.dynamic_t2_s
        high_s = self.dynamic_t1_s if l1 >= l2 else self.dynamic_t2_s
        return TrainingSwings(
            period_s=period_s,
            duty=high_s / period_s,
            low=min(min(l1, l2) * amps, 1.0),
            high=min(max(l1, l2) * amps, 1.0),
            edge_s=edge_s,
        )

    def _steps(self, rated_w: float) -> Steps:
        if len(self.list_power_w) != len(self.list_dwell_s) or not self.list_power_w:
            raise ValueError(
                f"LIST needs as many powers as dwells: {len(self.list_power_w)} and {len(self.list_dwell_s)}"
            )
        points = []
        t = 0.0
        for power_w, dwell_s in zip(self.list_power_w, self.list_dwell_s, strict=True):
            points.append((t, power_w / rated_w))
            t += dwell_s
        points.append((t, self.static_power_w / rated_w))
        return Steps(tuple(points))


class ElectronicLoad(StandIn):
    """A Chroma 63203 on a pseudo-terminal (``ASRL/dev/pts/N::INSTR``) that is the plant's racks."""

    def __init__(self, plant: Plant, lock: threading.RLock) -> None:
        super().__init__(plant, lock)
        load = plant.load
        self._rated_w = load.rated_w
        self._nominal_v = plant.grid.nominal_voltage_v
        with lock:
            demand_w = load.uncapped_demand_w(plant.t)
            cap_w = load.power_cap_w
        self._settings = LoadSettings(
            on=True,
            mode=LoadMode.CPH,
            static_power_w=demand_w,
            power_limit_w=math.inf if cap_w is None else cap_w,
        )
        self._profile = self._settings.profile(self._rated_w, self._nominal_v)
        self.commands = self._command_table()

    @property
    def identity(self) -> str:
        return IDENTITY

    @property
    def current_max_a(self) -> float:
        """The current that draws the racks' rated power at nominal voltage."""
        return self._rated_w / self._nominal_v

    def _make_server(self) -> ScpiPtyServer:
        return ScpiPtyServer(ScpiEngine(self, lock=self.lock))

    def reset(self) -> None:
        self._apply(LoadSettings())

    def _command_table(self) -> CommandTable:
        table = CommandTable()
        amps = Number(0.0, self.current_max_a, "A")
        watts = Number(0.0, self._rated_w, "W")
        seconds = Number(DWELL_MIN_S, DWELL_MAX_S, "S")
        slew = Number(SLEW_MIN_A_PER_US, SLEW_MAX_A_PER_US, "A/US")
        for pattern, name, spec in (
            ("LOAD[:STATe]", "on", Boolean()),
            ("MODE", "mode", Choice(LoadMode)),
            ("CONFigure:REMote", "remote", Boolean()),
            ("CURRent:STATic:L1", "static_current_a", amps),
            ("POWer:STATic:L1", "static_power_w", watts),
            ("CURRent:DYNamic:L1", "dynamic_l1_a", amps),
            ("CURRent:DYNamic:L2", "dynamic_l2_a", amps),
            ("CURRent:DYNamic:T1", "dynamic_t1_s", seconds),
            ("CURRent:DYNamic:T2", "dynamic_t2_s", seconds),
            ("CURRent:DYNamic:RISE", "dynamic_rise_a_per_us", slew),
            ("CURRent:DYNamic:FALL", "dynamic_fall_a_per_us", slew),
            ("POWer:LIMit", "power_limit_w", replace(watts, keywords={"INFinity": math.inf})),
        ):
            numeric = spec if isinstance(spec, Number) else None
            table.add(
                pattern,
                setter=partial(self._set, name),
                query=partial(self._setting, name, numeric),
                params=(spec,),
                query_params=() if numeric is None else (_LIMIT,),
            )
        for pattern, name, item in (
            ("LIST:POWer", "list_power_w", watts),
            ("LIST:DWELl", "list_dwell_s", seconds),
        ):
            table.add(
                pattern,
                setter=partial(self._set_list, name),
                query=partial(self._setting, name, None),
                params=(Repeat(item, 1, LIST_STEPS_MAX),),
            )
        table.add("MEASure:VOLTage?", query=self._measured_voltage_v)
        table.add("MEASure:CURRent?", query=self._measured_current_a)
        table.add("MEASure:POWer?", query=lambda: self.plant.bus.load_served_w)
        return table

    # ------------------------------------------------------------------ settings -> plant

    def _set(self, name: str, value: object) -> None:
        self._apply(replace(self._settings, **{name: value}))

    def _set_list(self, name: str, values: list[float]) -> None:
        self._set(name, tuple(values))

    def _setting(self, name: str, spec: Number | None, limit: str | None = None) -> object:
        if limit is not None and spec is not None:
            return spec.minimum if limit == "MINIMUM" else spec.maximum
        return getattr(self._settings, name)

    def _apply(self, settings: LoadSettings) -> None:
        """Make ``settings`` current; the racks' profile is put in force again only if it changed."""
        profile = settings.profile(self._rated_w, self._nominal_v)
        load = self.plant.load
        if profile != self._profile:
            load.set_profile(profile, at=self.plant.t)
            self._profile = profile
        if settings.power_limit_w != self._settings.power_limit_w:
            limit = settings.power_limit_w
            load.power_cap_w = None if math.isinf(limit) else limit
        self._settings = settings

    # ------------------------------------------------------------------ measurements

    def _measured_voltage_v(self) -> float:
        return self.plant.bus.voltage_pu * self._nominal_v

    def _measured_current_a(self) -> float:
        voltage_v = self._measured_voltage_v()
        return self.plant.bus.load_served_w / voltage_v if voltage_v > 0.0 else 0.0
