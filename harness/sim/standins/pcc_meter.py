"""The revenue meter at the point of common coupling: a SunSpec model 203 (wye three-phase) meter, Modbus TCP.

The meter's voltage transformers sit on the grid side of the PCC breaker and its current transformers in the
breaker, so it reads the grid's voltage and frequency even while the plant is islanded, and the power that
crosses the breaker. Sign convention (the SunSpec meter model text leaves it open; vendors differ): ``W`` > 0
is power imported from the grid into the plant, ``W`` < 0 power exported; ``TotWhImp`` grows while W > 0 and
``TotWhExp`` while W < 0, straight from the plant's energy ledger.

The plant runs at unity power factor and balanced phases: VA = |W|, VAR = 0, each phase carries a third.
``A`` is the sum of the three phase currents. Without grid voltage, frequency reads 0 and the power failure
event bit is set; under- and over-voltage event bits follow the PCC's most sensitive trip pickups.
"""

from __future__ import annotations

import math
import threading

from harness.sim.modbus import ModbusStandIn, RegisterMap, Value, common_model, sunspec_map
from harness.sim.plant import Plant
from harness.sim.standins import StandIn
from harness.sim.standins.sunspec_models import (
    METER,
    MeterEventBit,
    NormalBand,
    meter_model,
)

METER_UNIT = 1
MANUFACTURER = "gridhil"
METER_MODEL_NAME = "PCC-SIM-203"
METER_SERIAL = "SIM-PCC-0001"
METER_VERSION = "1.00"
IDENTITY = f"{MANUFACTURER},{METER_MODEL_NAME},{METER_SERIAL},{METER_VERSION}"
"""Model 1's manufacturer, model, serial number and version."""
J_PER_WH = 3600.0
SQRT3 = math.sqrt(3.0)
PHASES = "ABC"


def meter_map(plant: Plant, lock: threading.RLock) -> RegisterMap:
    """The meter's SunSpec image (models 1 and 203) with every reading bound to the plant."""
    common = common_model(
        manufacturer=MANUFACTURER,
        model=METER_MODEL_NAME,
        serial_number=METER_SERIAL,
        version=METER_VERSION,
    )
    regmap = sunspec_map([common, meter_model()], lock=lock, title=f"PCC meter, unit {METER_UNIT}")
    band = NormalBand.of(plant.pcc.settings)
    with lock:  # the block's names are those of one reading
        names = tuple(_readings(plant, band))
    regmap.bind_block(names, lambda: _readings(plant, band))
    return regmap


def _readings(plant: Plant, band: NormalBand) -> dict[str, Value]:
    """Every reading, named as in the map, from one look at the plant."""
    grid = plant.grid.state_at(plant.t)
    voltage_ll = grid.voltage_pu * plant.grid.nominal_voltage_v if grid.available else 0.0
    voltage_ln = voltage_ll / SQRT3
    power_w = plant.bus.grid_w
    phase_w = power_w / 3.0
    phase_a = abs(phase_w) / voltage_ln if voltage_ln > 0.0 else 0.0
    power_factor_pct = 100.0 if power_w != 0.0 and voltage_ll > 0.0 else None
    events = 1 << MeterEventBit.POWER_FAILURE if voltage_ll <= 0.0 else 0
    if voltage_ll > 0.0:
        events |= band.voltage_bits(grid.voltage_pu, MeterEventBit.UNDER_VOLTAGE, MeterEventBit.OVER_VOLTAGE)
    values: dict[str, Value] = {
        "A": 3.0 * phase_a,
        "PhV": voltage_ln,
        "PPV": voltage_ll,
        "Hz": grid.frequency_hz if voltage_ll > 0.0 else 0.0,
        "W": power_w,
        "VA": abs(power_w),
        "VAR": 0.0,
        "PF": power_factor_pct,
        "TotWhExp": plant.energy.grid_export_j / J_PER_WH,
        "TotWhImp": plant.energy.grid_import_j / J_PER_WH,
        "Evt": events,
    }
    for phase, pair in zip(PHASES, ("AB", "BC", "CA"), strict=True):
        values[f"Aph{phase}"] = phase_a
        values[f"PhVph{phase}"] = voltage_ln
        values[f"PhVph{pair}"] = voltage_ll
        values[f"Wph{phase}"] = phase_w
        values[f"VAph{phase}"] = abs(phase_w)
        values[f"VARph{phase}"] = 0.0
        values[f"PFph{phase}"] = power_factor_pct
    return {f"{METER}.{name}": value for name, value in values.items()}


class PccMeter(StandIn):
    """The PCC meter stand-in: unit 1 on ``host:port`` (port 0: ephemeral), reading ``plant`` under ``lock``.

    Read-only apart from model 1's ``DA``. ``maps`` (unit -> register map) is what the register doc renders.
    """

    def __init__(self, plant: Plant, lock: threading.RLock, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(plant, lock)
        self.maps = {METER_UNIT: meter_map(plant, lock)}
        self._address = (host, port)

    @property
    def identity(self) -> str:
        return IDENTITY

    def _make_server(self) -> ModbusStandIn:
        host, port = self._address
        return ModbusStandIn(self.maps, host=host, port=port)
