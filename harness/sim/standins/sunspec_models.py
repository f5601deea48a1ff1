"""SunSpec model layouts served by the PCC meter and the PCS/BMS face, and the codes their enumerations use.

Layouts follow the SunSpec model definitions (the JSON of ``sunspec/models`` that pysunspec2 ships): the
points in order with their types and scale-factor names, so a generic SunSpec client walks and decodes them.
Model lengths: 203 is 105 registers, 701 is 153, 704 is 65, 802 is 62.

Points the simulation has nothing for are declared without a value and read as their type's "not implemented"
pattern. Writable points among them are declared read-only here, so a write to one answers exception 02
instead of being accepted and ignored.

Scale factors are fixed per stand-in (``sunssf`` points with a constant value, stated in each one's
description), chosen so the reference plant (12 MW PCS, ~805 packs, 480 V, 63 MWh) fits with headroom.
The vendor model 64900 uses fixed exponents on its points instead: no generic client knows it anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from harness.sim.modbus import Access, Model, OneOf, Point, PointType, Range
from harness.sim.pcc import PccSettings

T = PointType
RW = Access.RW

METER_MODEL_ID = 203
DER_MEASURE_MODEL_ID = 701
DER_CONTROL_MODEL_ID = 704
BATTERY_MODEL_ID = 802
MICROGRID_MODEL_ID = 64900
"""Vendor model: SunSpec reserves 64000-65535 for vendor models."""

METER = "ac_meter"
DER_MEASURE = "DERMeasureAC"
DER_CONTROL = "DERCtlAC"
BATTERY = "battery"
MICROGRID = "microgrid"
"""Model names: the SunSpec group names, which prefix every point name in a map (``ac_meter.W``)."""

ALARM_TEXT_REGISTERS = 32


# ----------------------------------------------------------------------------- codes: SunSpec models


class MeterEventBit(IntEnum):
    """Model 203 ``Evt`` bit positions this meter sets."""

    POWER_FAILURE = 2
    UNDER_VOLTAGE = 3
    OVER_VOLTAGE = 6


class OperatingState(IntEnum):
    """Model 701 ``St``."""

    OFF = 1
    ON = 2


class InverterState(IntEnum):
    """Model 701 ``InvSt``."""

    OFF = 1
    SLEEPING = 2
    STARTING = 3
    RUNNING = 4
    THROTTLED = 5
    SHUTTING_DOWN = 6
    FAULT = 7
    STANDBY = 8


class ConnectionState(IntEnum):
    """Model 701 ``ConnSt``."""

    DISCONNECTED = 1
    CONNECTED = 2


class DerAlarmBit(IntEnum):
    """Model 701 ``Alrm`` bit positions this face sets."""

    GRID_DISCONNECT = 4
    OVER_FREQUENCY = 8
    UNDER_FREQUENCY = 9
    AC_OVER_VOLT = 10
    AC_UNDER_VOLT = 11
    MANUFACTURER_ALRM = 16
    """The PCS has tripped; ``MnAlrmInfo`` carries the trip reason."""


class DerModeBit(IntEnum):
    """Model 701 ``DERMode`` bit positions."""

    GRID_FOLLOWING = 0
    GRID_FORMING = 1


class Enable(IntEnum):
    DISABLED = 0
    ENABLED = 1


class PowerSetMode(IntEnum):
    """Model 704 ``WSetMod``: whether ``WSetPct`` or ``WSet`` is the active power setpoint."""

    W_MAX_PCT = 0
    WATTS = 1


class ChargeStatus(IntEnum):
    """Model 802 ``ChaSt``."""

    OFF = 1
    EMPTY = 2
    DISCHARGING = 3
    CHARGING = 4
    FULL = 5
    HOLDING = 6
    TESTING = 7


class BankState(IntEnum):
    """Model 802 ``State``."""

    DISCONNECTED = 1
    INITIALIZING = 2
    CONNECTED = 3
    STANDBY = 4
    SOC_PROTECTION = 5
    SUSPENDING = 6
    FAULT = 99


class BatteryEventBit(IntEnum):
    """Model 802 ``Evt1`` bit positions this face sets, one per latched pack fault kind."""

    OVER_TEMP_ALARM = 1
    OVER_DISCHARGE_CURRENT_ALARM = 7
    """The pack model's over-current trip does not tell the direction; it is reported here."""
    OVER_VOLT_ALARM = 9
    UNDER_VOLT_ALARM = 11
    GROUND_FAULT = 22
    """Isolation fault."""


class BankOperation(IntEnum):
    """Model 802 ``SetOp``: close (CONNECT) or open (DISCONNECT) every pack contactor."""

    CONNECT = 1
    DISCONNECT = 2


REMOTE_CONTROL = 0
BATTERY_TYPE_LITHIUM_ION = 4


# ----------------------------------------------------------------------------- codes: vendor model


class ModeRequest(IntEnum):
    """``ModeReq``: write STOP, FOLLOW or FORM to act (NONE does nothing); reads back NONE."""

    NONE = 0
    STOP = 1
    FOLLOW = 2
    FORM = 3


class PcsModeCode(IntEnum):
    """``PcsMode``: the PCS mode now."""

    OFF = 1
    GRID_FOLLOWING = 2
    GRID_FORMING = 3
    TRIPPED = 4


class PcsControlCode(IntEnum):
    """``Ctl``: how the PCS picks its output while grid-following."""

    POWER = 0
    """Follow the active power setpoint of model 704."""
    PCC_SMOOTHING = 1
    """Hold the grid-side power on a ramp-limited track (``PccRmp``) of net load minus the setpoint."""


class BreakerState(IntEnum):
    OPEN = 0
    CLOSED = 1


class BreakerPending(IntEnum):
    """``PccPend``: the breaker request waiting to be carried out."""

    NONE = 0
    OPEN = 1
    CLOSE_SYNC_CHECKED = 2
    CLOSE_SYNC_BYPASSED = 3


class BreakerCommand(IntEnum):
    """``PccCmd``: write to act (NONE does nothing); reads back NONE. Carried out at the next plant step."""

    NONE = 0
    OPEN = 1
    CLOSE = 2
    """Close through the sync-check relay: waits until dV, df and dtheta are inside the window."""
    CLOSE_NO_SYNC = 3
    """Close bypassing the sync-check relay (an out-of-phase close hurts the bus)."""
    CANCEL = 4
    """Withdraw a pending close."""


class OpenReason(IntEnum):
    """``PccOpenRsn``: why the breaker last opened; IEEE 1547 trips by their setting's name."""

    NONE = 0
    PLANNED = 1
    LOSS_OF_GRID = 2
    OV2 = 10
    OV1 = 11
    UV1 = 12
    UV2 = 13
    OF2 = 20
    OF1 = 21
    UF1 = 22
    UF2 = 23
    OTHER = 99


class Act(IntEnum):
    """Write-to-act registers (``BlkStrt``, ``PcsRst``, ``AlmRst``, ``FltRst``): ACT acts, NONE is a no-op."""

    NONE = 0
    ACT = 1


class Contactor(IntEnum):
    OPEN = 0
    CLOSED = 1


def bits(positions: Iterable[int]) -> int:
    """A bitfield with the given bit positions set."""
    value = 0
    for position in positions:
        value |= 1 << position
    return value


@dataclass(frozen=True)
class NormalBand:
    """Voltage (pu) and frequency (Hz) inside which no under/over alarm or event bit is set.

    The band is the most sensitive pickups of the PCC's interconnection trip settings (Category III:
    0.88-1.10 pu, 58.5-61.2 Hz), so an alarm bit is up exactly while some trip timer runs.
    """

    low_pu: float
    high_pu: float
    low_hz: float
    high_hz: float

    @classmethod
    def of(cls, settings: PccSettings) -> NormalBand:
        voltage, frequency = settings.voltage_trips, settings.frequency_trips
        return cls(
            low_pu=max((t.pickup for t in voltage if not t.over), default=0.0),
            high_pu=min((t.pickup for t in voltage if t.over), default=math.inf),
            low_hz=max((t.pickup for t in frequency if not t.over), default=0.0),
            high_hz=min((t.pickup for t in frequency if t.over), default=math.inf),
        )

    def voltage_bits(self, voltage_pu: float, low_bit: int, high_bit: int) -> int:
        """``low_bit`` set below the band, ``high_bit`` above it."""
        return (1 << low_bit if voltage_pu < self.low_pu else 0) | (
            1 << high_bit if voltage_pu > self.high_pu else 0
        )

    def frequency_bits(self, frequency_hz: float, low_bit: int, high_bit: int) -> int:
        return (1 << low_bit if frequency_hz < self.low_hz else 0) | (
            1 << high_bit if frequency_hz > self.high_hz else 0
        )


# ----------------------------------------------------------------------------- helpers


def _p(
    name: str, point_type: PointType, units: str = "", scale_factor: str | int | None = None, text: str = ""
) -> Point:
    """A read-only point."""
    return Point(name, point_type, units=units, scale_factor=scale_factor, description=text)


def _sf(name: str, exponent: int | None, what: str) -> Point:
    if exponent is None:
        return Point(name, T.SUNSSF, description=f"{what} scale factor: not implemented")
    return Point(name, T.SUNSSF, value=exponent, description=f"{what} scale factor, fixed at {exponent}")


def _enable(name: str, description: str) -> Point:
    return Point(name, T.ENUM16, access=RW, validator=OneOf.members(Enable), description=description)


def _unused(name: str, point_type: PointType, units: str = "", scale_factor: str | None = None) -> Point:
    """A point of the standard this simulation has nothing for: reads "not implemented", refuses writes."""
    return Point(name, point_type, units=units, scale_factor=scale_factor, description="not implemented")


# ----------------------------------------------------------------------------- 203: wye three-phase meter

METER_SCALE_FACTORS = {"A_SF": 1, "V_SF": -1, "Hz_SF": -2, "W_SF": 3, "VA_SF": 3, "VAR_SF": 3, "PF_SF": -1}
"""Fixed exponents: A in 10 A (a sum of three phase currents reaches 43 kA at 12 MW and 480 V), V in 0.1 V,
Hz in 0.01 Hz, powers in kW / kVA / kvar (int16: +-32.7 MW), PF in 0.1 %."""
METER_ENERGY_SF = 3
"""Energies in kWh: an acc32 of kWh takes 40 years of 12 MW to roll over."""


def _phases(name: str, units: str, scale_factor: str, description: str) -> list[Point]:
    points = [_p(name, T.INT16, units, scale_factor, description)]
    points += [_p(f"{name}ph{phase}", T.INT16, units, scale_factor, f"phase {phase}") for phase in "ABC"]
    return points


def _energies(name: str, units: str, scale_factor: str, description: str, implemented: bool) -> list[Point]:
    total = Point(name, T.ACC32, units=units, scale_factor=scale_factor, description=description)
    phases = [_unused(f"{name}Ph{phase}", T.ACC32, units, scale_factor) for phase in "ABC"]
    return [total if implemented else _unused(name, T.ACC32, units, scale_factor), *phases]


def meter_model() -> Model:
    """Model 203. Sign convention: W > 0 is power imported from the grid into the plant, W < 0 exported."""
    sf = METER_SCALE_FACTORS
    points = [
        _p("A", T.INT16, "A", "A_SF", "sum of the three phase currents"),
        *(_p(f"Aph{phase}", T.INT16, "A", "A_SF", f"phase {phase} current") for phase in "ABC"),
        _sf("A_SF", sf["A_SF"], "current"),
        _p("PhV", T.INT16, "V", "V_SF", "line-to-neutral voltage, grid side"),
        *(_p(f"PhVph{phase}", T.INT16, "V", "V_SF", f"phase {phase}-N") for phase in "ABC"),
        _p("PPV", T.INT16, "V", "V_SF", "line-to-line voltage, grid side"),
        *(_p(f"PhVph{pair}", T.INT16, "V", "V_SF", f"phases {pair}") for pair in ("AB", "BC", "CA")),
        _sf("V_SF", sf["V_SF"], "voltage"),
        _p("Hz", T.INT16, "Hz", "Hz_SF", "grid frequency; 0 without voltage"),
        _sf("Hz_SF", sf["Hz_SF"], "frequency"),
        *_phases("W", "W", "W_SF", "real power: + imported from the grid, - exported"),
        _sf("W_SF", sf["W_SF"], "real power"),
        *_phases("VA", "VA", "VA_SF", "apparent power (the plant runs at unity power factor)"),
        _sf("VA_SF", sf["VA_SF"], "apparent power"),
        *_phases("VAR", "var", "VAR_SF", "reactive power (the plant runs at unity power factor)"),
        _sf("VAR_SF", sf["VAR_SF"], "reactive power"),
        *_phases("PF", "Pct", "PF_SF", "power factor in %; not implemented while no power flows"),
        _sf("PF_SF", sf["PF_SF"], "power factor"),
        *_energies("TotWhExp", "Wh", "TotWh_SF", "energy exported to the grid", implemented=True),
        *_energies("TotWhImp", "Wh", "TotWh_SF", "energy imported from the grid", implemented=True),
        _sf("TotWh_SF", METER_ENERGY_SF, "real energy"),
        *_energies("TotVAhExp", "VAh", "TotVAh_SF", "", implemented=False),
        *_energies("TotVAhImp", "VAh", "TotVAh_SF", "", implemented=False),
        _sf("TotVAh_SF", None, "apparent energy"),
        *(
            point
            for name in ("TotVArhImpQ1", "TotVArhImpQ2", "TotVArhExpQ3", "TotVArhExpQ4")
            for point in _energies(name, "varh", "TotVArh_SF", "", implemented=False)
        ),
        _sf("TotVArh_SF", None, "reactive energy"),
        _p("Evt", T.BITFIELD32, text="meter events: bit 2 power failure, 3 under-voltage, 6 over-voltage"),
    ]
    return Model(METER_MODEL_ID, METER, tuple(points))


# ----------------------------------------------------------------------------- 701: DER AC measurement

DER_MEASURE_SCALE_FACTORS = {
    "A_SF": 1,
    "V_SF": -1,
    "Hz_SF": -3,
    "W_SF": 3,
    "PF_SF": -3,
    "VA_SF": 3,
    "Var_SF": 3,
}


def _der_phase(index: int, line_pair: str) -> list[Point]:
    n = f"L{index}"
    return [
        _p(f"W{n}", T.INT16, "W", "W_SF", f"active power {n}"),
        _p(f"VA{n}", T.INT16, "VA", "VA_SF", f"apparent power {n}"),
        _p(f"Var{n}", T.INT16, "var", "Var_SF", f"reactive power {n}"),
        _p(f"PF{n}", T.UINT16, "", "PF_SF", f"power factor {n}"),
        _p(f"A{n}", T.INT16, "A", "A_SF", f"current {n}"),
        _p(f"V{line_pair}", T.INT16, "V", "V_SF", f"voltage {line_pair}"),
        _p(f"V{n}", T.INT16, "V", "V_SF", f"voltage {n}-N"),
        _unused(f"TotWhInj{n}", T.UINT64, "Wh", "TotWh_SF"),
        _unused(f"TotWhAbs{n}", T.UINT64, "Wh", "TotWh_SF"),
        _unused(f"TotVarhInj{n}", T.UINT64, "varh", "TotVarh_SF"),
        _unused(f"TotVarhAbs{n}", T.UINT64, "varh", "TotVarh_SF"),
    ]


def der_measure_model() -> Model:
    """Model 701, measured on the AC bus at the PCS terminals. W > 0: the PCS injects (packs discharge)."""
    sf = DER_MEASURE_SCALE_FACTORS
    points = [
        Point("ACType", T.ENUM16, value=3, description="3: three phase"),
        _p("St", T.ENUM16, text="1 off, 2 on (PCS running)"),
        _p("InvSt", T.ENUM16, text="PCS mode: 1 off, 4 running, 7 fault (tripped)"),
        _p("ConnSt", T.ENUM16, text="2 connected: PCS running with the PCC breaker closed, else 1"),
        Point(
            "Alrm",
            T.BITFIELD32,
            description="bits: 4 PCC open, 8/9 bus over/under frequency, "
            "10/11 bus over/under voltage, 16 PCS tripped (see MnAlrmInfo)",
        ),
        _p("DERMode", T.BITFIELD32, text="bit 0 grid-following, bit 1 grid-forming"),
        _p("W", T.INT16, "W", "W_SF", "active power, + injected into the bus"),
        _p("VA", T.INT16, "VA", "VA_SF", "apparent power (unity power factor)"),
        _p("Var", T.INT16, "var", "Var_SF", "reactive power (always 0)"),
        _p("PF", T.UINT16, "", "PF_SF", "power factor; not implemented while stopped"),
        _p("A", T.INT16, "A", "A_SF", "sum of the three phase currents"),
        _p("LLV", T.INT16, "V", "V_SF", "bus line-to-line voltage"),
        _p("LNV", T.INT16, "V", "V_SF", "bus line-to-neutral voltage"),
        _p("Hz", T.UINT32, "Hz", "Hz_SF", "bus frequency; 0 on a dead bus"),
        _unused("TotWhInj", T.UINT64, "Wh", "TotWh_SF"),
        _unused("TotWhAbs", T.UINT64, "Wh", "TotWh_SF"),
        _unused("TotVarhInj", T.UINT64, "varh", "TotVarh_SF"),
        _unused("TotVarhAbs", T.UINT64, "varh", "TotVarh_SF"),
        *(
            _unused(name, T.INT16, "C", "Tmp_SF")
            for name in ("TmpAmb", "TmpCab", "TmpSnk", "TmpTrns", "TmpSw", "TmpOt")
        ),
        *_der_phase(1, "L1L2"),
        *_der_phase(2, "L2L3"),
        *_der_phase(3, "L3L1"),
        _unused("ThrotPct", T.UINT16, "Pct"),
        _unused("ThrotSrc", T.BITFIELD32),
        _sf("A_SF", sf["A_SF"], "current"),
        _sf("V_SF", sf["V_SF"], "voltage"),
        _sf("Hz_SF", sf["Hz_SF"], "frequency"),
        _sf("W_SF", sf["W_SF"], "active power"),
        _sf("PF_SF", sf["PF_SF"], "power factor"),
        _sf("VA_SF", sf["VA_SF"], "apparent power"),
        _sf("Var_SF", sf["Var_SF"], "reactive power"),
        _sf("TotWh_SF", None, "active energy (the plant's ledger keeps net PCS energy only)"),
        _sf("TotVarh_SF", None, "reactive energy"),
        _sf("Tmp_SF", None, "temperature"),
        Point("MnAlrmInfo", T.STRING, size=ALARM_TEXT_REGISTERS, description="PCS trip reason while tripped"),
    ]
    return Model(DER_MEASURE_MODEL_ID, DER_MEASURE, tuple(points))


# ----------------------------------------------------------------------------- 704: DER AC controls

WSET_SF = 0
WSET_PCT_SF = -2
WMAX_LIM_PCT_SF = -1


def der_control_model(rated_w: float) -> Model:
    """Model 704. The active power setpoint becomes the PCS dispatch (W, + discharge) used grid-following."""
    percent = Range(-100.0, 100.0)
    points = [
        _unused("PFWInjEna", T.ENUM16),
        _unused("PFWInjEnaRvrt", T.ENUM16),
        _unused("PFWInjRvrtTms", T.UINT32, "Secs"),
        _unused("PFWInjRvrtRem", T.UINT32, "Secs"),
        _unused("PFWAbsEna", T.ENUM16),
        _unused("PFWAbsEnaRvrt", T.ENUM16),
        _unused("PFWAbsRvrtTms", T.UINT32, "Secs"),
        _unused("PFWAbsRvrtRem", T.UINT32, "Secs"),
        _enable("WMaxLimPctEna", "1: cap the dispatch at WMaxLimPct of the PCS rating"),
        Point(
            "WMaxLimPct",
            T.UINT16,
            units="Pct",
            scale_factor="WMaxLimPct_SF",
            access=RW,
            validator=Range(0.0, 100.0),
            value=100.0,
            description="discharge cap, % of the PCS rating",
        ),
        _unused("WMaxLimPctRvrt", T.UINT16, "Pct", "WMaxLimPct_SF"),
        _unused("WMaxLimPctEnaRvrt", T.ENUM16),
        _unused("WMaxLimPctRvrtTms", T.UINT32, "Secs"),
        _unused("WMaxLimPctRvrtRem", T.UINT32, "Secs"),
        _enable("WSetEna", "1: the setpoint below is the PCS dispatch; 0: the dispatch is 0 W"),
        Point(
            "WSetMod",
            T.ENUM16,
            access=RW,
            validator=OneOf.members(PowerSetMode),
            description="0: WSetPct is the setpoint, 1: WSet is",
        ),
        Point(
            "WSet",
            T.INT32,
            units="W",
            scale_factor="WSet_SF",
            access=RW,
            validator=Range(-rated_w, rated_w),
            description="active power setpoint, + discharge",
        ),
        _unused("WSetRvrt", T.INT32, "W", "WSet_SF"),
        Point(
            "WSetPct",
            T.INT16,
            units="Pct",
            scale_factor="WSetPct_SF",
            access=RW,
            validator=percent,
            description="active power setpoint, % of the PCS rating, + discharge",
        ),
        _unused("WSetPctRvrt", T.INT16, "Pct", "WSetPct_SF"),
        _unused("WSetEnaRvrt", T.ENUM16),
        _unused("WSetRvrtTms", T.UINT32, "Secs"),
        _unused("WSetRvrtRem", T.UINT32, "Secs"),
        _unused("VarSetEna", T.ENUM16),
        _unused("VarSetMod", T.ENUM16),
        _unused("VarSetPri", T.ENUM16),
        _unused("VarSet", T.INT32, "var", "VarSet_SF"),
        _unused("VarSetRvrt", T.INT32, "var", "VarSet_SF"),
        _unused("VarSetPct", T.INT16, "Pct", "VarSetPct_SF"),
        _unused("VarSetPctRvrt", T.INT16, "Pct", "VarSetPct_SF"),
        _unused("VarSetEnaRvrt", T.ENUM16),
        _unused("VarSetRvrtTms", T.UINT32, "Secs"),
        _unused("VarSetRvrtRem", T.UINT32, "Secs"),
        _unused("WRmp", T.UINT16, "%Max/Sec"),
        _unused("WRmpRef", T.ENUM16),
        _unused("VarRmp", T.UINT16, "%Max/Sec"),
        _enable("AntiIslEna", "1: the PCS ceases when the PCC breaker opens (islanding disabled)"),
        _sf("PF_SF", None, "power factor"),
        _sf("WMaxLimPct_SF", WMAX_LIM_PCT_SF, "power limit"),
        _sf("WSet_SF", WSET_SF, "active power setpoint"),
        _sf("WSetPct_SF", WSET_PCT_SF, "active power percent setpoint"),
        _sf("VarSet_SF", None, "reactive power setpoint"),
        _sf("VarSetPct_SF", None, "reactive power percent setpoint"),
        *(
            _unused(f"{group}.{name}", point_type, scale_factor="PF_SF" if name == "PF" else None)
            for group in ("PFWInj", "PFWInjRvrt", "PFWAbs", "PFWAbsRvrt")
            for name, point_type in (("PF", T.UINT16), ("Ext", T.ENUM16))
        ),
    ]
    return Model(DER_CONTROL_MODEL_ID, DER_CONTROL, tuple(points))


# ----------------------------------------------------------------------------- 802: battery base

BATTERY_SCALE_FACTORS = {
    "AHRtg_SF": 2,
    "WHRtg_SF": 4,
    "WChaDisChaMax_SF": 4,
    "SoC_SF": -2,
    "SoH_SF": -2,
    "V_SF": -1,
    "CellV_SF": -3,
    "A_SF": 1,
    "W_SF": 3,
}
"""Fixed exponents for a fleet of up to ~5000 packs: 100 Ah, 10 kWh, 10 kW (the packs' summed limits reach
~90 MW for 805 packs), 0.01 %, 0.1 V, 1 mV, 10 A, 1 kW."""


def battery_model() -> Model:
    """Model 802 for the fleet as one bank, from what the pack BMSes report."""
    sf = BATTERY_SCALE_FACTORS
    soc = Range(0.0, 100.0)
    points = [
        _p("AHRtg", T.UINT16, "Ah", "AHRtg_SF", "sum of the packs' capacity when new"),
        _p("WHRtg", T.UINT16, "Wh", "WHRtg_SF", "sum of the packs' energy when new"),
        Point(
            "WChaRteMax",
            T.UINT16,
            units="W",
            scale_factor="WChaDisChaMax_SF",
            description="sum of the charge power limits the BMSes publish now",
        ),
        Point(
            "WDisChaRteMax",
            T.UINT16,
            units="W",
            scale_factor="WChaDisChaMax_SF",
            description="sum of the discharge power limits the BMSes publish now",
        ),
        _unused("DisChaRte", T.UINT16, "%WHRtg", "DisChaRte_SF"),
        _unused("SoCMax", T.UINT16, "%WHRtg", "SoC_SF"),
        _unused("SoCMin", T.UINT16, "%WHRtg", "SoC_SF"),
        Point(
            "SoCRsvMax",
            T.UINT16,
            units="%WHRtg",
            scale_factor="SoC_SF",
            access=RW,
            validator=soc,
            value=100.0,
            description="stored for the controller; the plant does not act on it",
        ),
        Point(
            "SoCRsvMin",
            T.UINT16,
            units="%WHRtg",
            scale_factor="SoC_SF",
            access=RW,
            validator=soc,
            value=0.0,
            description="stored for the controller; the plant does not act on it",
        ),
        _p("SoC", T.UINT16, "%WHRtg", "SoC_SF", "energy-weighted reported pack SOC"),
        _unused("DoD", T.UINT16, "%", "DoD_SF"),
        _p("SoH", T.UINT16, "%", "SoH_SF", "fleet energy now over when new"),
        _unused("NCyc", T.UINT32),
        _p("ChaSt", T.ENUM16, text="1 off (no pack online), 3 discharging, 4 charging, 6 holding"),
        Point("LocRemCtl", T.ENUM16, value=REMOTE_CONTROL, description="0: remote"),
        _p("Hb", T.UINT16, text="seconds of plant time, wrapping at 65535"),
        Point("CtrlHb", T.UINT16, access=RW, value=0, description="controller heartbeat: stored, read back"),
        Point(
            "AlmRst",
            T.UINT16,
            access=RW,
            validator=OneOf.members(Act),
            value=0,
            description="write 1: clear every pack's latched faults (contactors stay open); 0 no-op; reads 0",
        ),
        Point("Typ", T.ENUM16, value=BATTERY_TYPE_LITHIUM_ION, description="4: lithium-ion"),
        Point(
            "State",
            T.ENUM16,
            description="3 connected (a pack online), 99 fault (none online, some faulted), 1 disconnected",
        ),
        _unused("StateVnd", T.ENUM16),
        _unused("WarrDt", T.UINT32),
        Point(
            "Evt1",
            T.BITFIELD32,
            description="any pack latched: bit 1 over-temperature, 7 over-current, "
            "9 over-voltage, 11 under-voltage, 22 isolation",
        ),
        Point("Evt2", T.BITFIELD32, value=0, description="always 0"),
        Point("EvtVnd1", T.BITFIELD32, value=0, description="always 0"),
        Point("EvtVnd2", T.BITFIELD32, value=0, description="always 0"),
        _p("V", T.UINT16, "V", "V_SF", "mean reported voltage of online packs"),
        _p("VMax", T.UINT16, "V", "V_SF", "highest reported pack voltage (online)"),
        _p("VMin", T.UINT16, "V", "V_SF", "lowest reported pack voltage (online)"),
        _p("CellVMax", T.UINT16, "V", "CellV_SF", "highest reported cell voltage"),
        _p("CellVMaxStr", T.UINT16, text="index of the pack holding it (0-based, as the per-pack block)"),
        _unused("CellVMaxMod", T.UINT16),
        _p("CellVMin", T.UINT16, "V", "CellV_SF", "lowest reported cell voltage"),
        _p("CellVMinStr", T.UINT16, text="index of the pack holding it (0-based, as the per-pack block)"),
        _unused("CellVMinMod", T.UINT16),
        _unused("CellVAvg", T.UINT16, "V", "CellV_SF"),
        _p("A", T.INT16, "A", "A_SF", "sum of reported pack currents, + discharge"),
        _unused("AChaMax", T.UINT16, "A", "AMax_SF"),
        _unused("ADisChaMax", T.UINT16, "A", "AMax_SF"),
        _p("W", T.INT16, "W", "W_SF", "sum of reported V x I, + discharge"),
        _unused("ReqInvState", T.ENUM16),
        _unused("ReqW", T.INT16, "W", "W_SF"),
        Point(
            "SetOp",
            T.ENUM16,
            access=RW,
            validator=OneOf.members(BankOperation),
            value=BankOperation.CONNECT,
            description="1: close every pack contactor, 2: open every one; reads the last operation written",
        ),
        _unused("SetInvState", T.ENUM16),
        _sf("AHRtg_SF", sf["AHRtg_SF"], "charge capacity"),
        _sf("WHRtg_SF", sf["WHRtg_SF"], "energy capacity"),
        _sf("WChaDisChaMax_SF", sf["WChaDisChaMax_SF"], "charge/discharge rate"),
        _sf("DisChaRte_SF", None, "self-discharge rate"),
        _sf("SoC_SF", sf["SoC_SF"], "state of charge"),
        _sf("DoD_SF", None, "depth of discharge"),
        _sf("SoH_SF", sf["SoH_SF"], "state of health"),
        _sf("V_SF", sf["V_SF"], "voltage"),
        _sf("CellV_SF", sf["CellV_SF"], "cell voltage"),
        _sf("A_SF", sf["A_SF"], "current"),
        _sf("AMax_SF", None, "current limit"),
        _sf("W_SF", sf["W_SF"], "power"),
    ]
    return Model(BATTERY_MODEL_ID, BATTERY, tuple(points))


# ----------------------------------------------------------------------------- 64900: gridhil microgrid

SETPOINT_SPAN = 0.1
"""Grid-forming voltage and frequency setpoints are accepted within +-10 % of nominal."""
MAX_RAMP_W_PER_S = 1e9
MAX_PCS_UNITS = 15
"""``UnitAvail`` is a bitfield16 whose all-ones pattern means "not implemented"."""


def microgrid_model(*, nominal_v: float, nominal_hz: float, pcs_units: int) -> Model:
    """Model 64900: what a microgrid controller needs beyond the DER models (PCS mode, PCC breaker, sync
    check, black start, PCS units, pack sharing). Enumerations: the code tables in docs/register-map.md."""
    if not 1 <= pcs_units <= MAX_PCS_UNITS:
        raise ValueError(f"UnitAvail carries 1..{MAX_PCS_UNITS} PCS units, not {pcs_units}")
    low, high = 1.0 - SETPOINT_SPAN, 1.0 + SETPOINT_SPAN
    points = [
        Point(
            "ModeReq",
            T.ENUM16,
            access=RW,
            validator=OneOf.members(ModeRequest),
            value=ModeRequest.NONE,
            description="write 1 stop (a trip stays), 2 grid-follow, 3 grid-form; 0 no-op; reads 0",
        ),
        _p("PcsMode", T.ENUM16, text="1 off, 2 grid-following, 3 grid-forming, 4 tripped"),
        Point(
            "Ctl",
            T.ENUM16,
            access=RW,
            validator=OneOf.members(PcsControlCode),
            description="grid-following control: 0 power setpoint, 1 PCC smoothing",
        ),
        Point(
            "PccRmp",
            T.UINT32,
            units="W/s",
            access=RW,
            validator=Range(0.0, MAX_RAMP_W_PER_S),
            description="grid-side ramp limit of PCC smoothing",
        ),
        _enable("AutoIslEna", "1: the static switch opens the breaker on loss of grid"),
        _enable("IslEna", "1: the PCS forms the island when the breaker opens; 0: it ceases"),
        Point(
            "HzSet",
            T.UINT16,
            units="Hz",
            scale_factor=-2,
            access=RW,
            validator=Range(low * nominal_hz, high * nominal_hz),
            description="grid-forming frequency setpoint",
        ),
        Point(
            "VSet",
            T.UINT16,
            units="V",
            scale_factor=-1,
            access=RW,
            validator=Range(low * nominal_v, high * nominal_v),
            description="grid-forming line-to-line voltage setpoint",
        ),
        _p("PccSt", T.ENUM16, text="PCC breaker: 0 open, 1 closed"),
        _p("PccPend", T.ENUM16, text="pending request: 0 none, 1 open, 2 sync-checked close, 3 bypassed"),
        Point(
            "PccCmd",
            T.ENUM16,
            access=RW,
            validator=OneOf.members(BreakerCommand),
            value=BreakerCommand.NONE,
            description="write 1 open, 2 close (sync-checked), 3 close unchecked, 4 cancel; 0 no-op; reads 0",
        ),
        _p("PccOpenRsn", T.ENUM16, text="why the breaker last opened (code table)"),
        _p("PccCloses", T.UINT16, text="breaker closes so far, wrapping at 65535"),
        _p("SyncDV", T.INT16, "V", -1, "bus minus grid voltage across the breaker"),
        _p("SyncDHz", T.INT16, "Hz", -2, "bus minus grid frequency"),
        _p("SyncDAng", T.INT16, "deg", -1, "bus minus grid phase, -180..180"),
        _p("GridV", T.UINT16, "V", -1, "grid line-to-line voltage at the PCC"),
        _p("GridHz", T.UINT16, "Hz", -2, "grid frequency; 0 without voltage"),
        _p("BusV", T.UINT16, "V", -1, "bus line-to-line voltage"),
        _p("BusHz", T.UINT16, "Hz", -2, "bus frequency; 0 on a dead bus"),
        _p("PccW", T.INT32, "W", text="power through the PCC breaker: + imported from the grid, - exported"),
        Point(
            "BlkStrt",
            T.UINT16,
            access=RW,
            validator=OneOf.members(Act),
            value=Act.NONE,
            description="write 1: black start (islanded, PCS off): soft-start the bus; 0 no-op; reads 0",
        ),
        Point(
            "PcsRst",
            T.UINT16,
            access=RW,
            validator=OneOf.members(Act),
            value=Act.NONE,
            description="write 1: clear a PCS trip (it comes back off); 0 no-op; reads 0",
        ),
        Point("NUnit", T.UINT16, value=pcs_units, description="PCS units"),
        _p("WRtg", T.UINT32, "W", text="PCS AC rating: the sum of its units' ratings"),
        Point(
            "UnitAvail",
            T.BITFIELD16,
            access=RW,
            validator=Range(0, (1 << pcs_units) - 1),
            description="bit i: PCS unit i available; clearing every bit trips the PCS",
        ),
        _enable(
            "PackShrEna", "1: the per-pack WCmd registers share the PCS power; 0: shared by available energy"
        ),
        _p("NPack", T.UINT16, text="packs in the fleet"),
        _p("NPackUnit", T.UINT16, text="Modbus units carrying per-pack blocks (1, 2, ...)"),
        _p("PacksOnl", T.UINT16, text="packs online: contactor closed, no latched fault"),
        _p("PacksFlt", T.UINT16, text="packs with a latched fault"),
        _p("Hb", T.UINT16, text="face heartbeat: seconds of plant time, wrapping at 65535"),
    ]
    return Model(MICROGRID_MODEL_ID, MICROGRID, tuple(points))
