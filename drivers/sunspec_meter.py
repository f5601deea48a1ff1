"""Any SunSpec meter: models 201-204 (integers with scale factors) and 211-214 (float32), found by a scan.

201 is single phase, 202 split phase, 203 three-phase wye, 204 three-phase delta; 211-214 the same in
float32. The points used are the ones every one of those models has, so the meter's wiring does not
matter: total ``W``, ``VA``, ``VAR``, ``PF``, ``Hz``, ``PhV`` (line-to-neutral average), ``PPV``
(line-to-line average), ``A`` (total current), ``TotWhImp``/``TotWhExp`` and ``Evt``.

A reading is one read of the whole model, so its values belong together. Points the standard makes
mandatory (``W``, ``Hz``, ``A``, ``Evt``) must be implemented, or the reading fails; the optional ones
read ``None`` when the meter does not implement them (a delta meter has no line-to-neutral voltage, a
single-phase one may have no line-to-line voltage). The energy totals are mandatory too, but an integer
meter's accumulators (``acc32``) use 0 as their "not implemented" pattern, so a total that has not
counted yet cannot be told from a missing one: both read 0 Wh.

Sign convention: as the meter reports it. SunSpec leaves it open and vendors differ; the gridhil PCC
meter counts ``W`` > 0 as power imported from the grid.

Bench options: ``meter_index`` (which meter model of the device, in address order, 0 = the first:
multi-circuit meters carry several), ``timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from drivers.base import DriverConfig, Identity
from drivers.errors import GarbageReply, IdentityMismatch
from drivers.modbus import ModbusDriver
from drivers.registry import register
from drivers.sunspec import SunSpecDevice, sunspec_identity

INTEGER_METERS = (201, 202, 203, 204)
"""SunSpec AC meter models in integers with scale factors; their ``PF`` is in percent."""
FLOAT_METERS = (211, 212, 213, 214)
"""The same in float32; their ``PF`` is the ratio itself (the definitions' unit is ``PF``, not ``Pct``)."""
METER_MODELS = INTEGER_METERS + FLOAT_METERS
PERCENT = 100.0


@dataclass(frozen=True)
class MeterReading:
    """One reading of a meter, in SI units; None where the meter does not implement the point."""

    power_w: float
    va: float | None
    """Apparent power, VA."""
    var: float | None
    """Reactive power, var."""
    pf: float | None
    """Power factor as a ratio, -1..1 (20x meters report percent, 21x meters the ratio)."""
    frequency_hz: float
    voltage_v: float | None
    """Line-to-neutral voltage, average of the active phases."""
    current_a: float
    """``A``, "total AC current" (the gridhil PCC meter sums the phase currents; vendors differ)."""
    energy_imported_wh: float
    energy_exported_wh: float
    events: int
    """``Evt`` bits (SunSpec meter event flags: 2 power failure, 3 under-voltage, 6 over-voltage, ...)."""
    voltage_ll_v: float | None
    """Line-to-line voltage, average of the active phases."""


@register("sunspec-meter")
class SunSpecMeter(ModbusDriver):
    """A SunSpec meter on Modbus (TCP, RTU over TCP or RTU on a serial line)."""

    OPTIONS = frozenset({"meter_index"})

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.meter_index = config.option("meter_index", 0)
        if self.meter_index < 0:
            raise ValueError(f"{self.role}: meter_index = {self.meter_index}: an index from 0")
        self.device = SunSpecDevice(self.transport)
        self.model_id: int | None = None
        """Which meter model the scan found (201-204, 211-214); None until opened."""
        self._model_index = 0
        self._address = 0

    def open(self) -> Self:
        super().open()
        try:
            self._find_meter()
        except BaseException:
            self.close()
            raise
        return self

    def _find_meter(self) -> None:
        found = self.device.scan()
        meters = sorted(
            (address, model_id, index)
            for model_id in METER_MODELS
            for index, address in enumerate(found.get(model_id, []))
        )
        if self.meter_index >= len(meters):
            raise IdentityMismatch(
                self.role,
                self.resource,
                "SunSpec scan",
                f"expected at least {self.meter_index + 1} SunSpec meter model(s) "
                f"({', '.join(map(str, METER_MODELS))}); the device has models {sorted(found)}",
            )
        self._address, self.model_id, self._model_index = meters[self.meter_index]

    def identity(self) -> Identity:
        """Manufacturer, model, serial number and version from the common model (1)."""
        return sunspec_identity(self.device, self.role, self.resource)

    def read(self) -> MeterReading:
        """One reading: the whole meter model in one request."""
        model_id = self._opened_model()
        points = self.device.read_model(model_id, self._model_index)

        def required(name: str) -> float:
            value = points.get(name)
            if not isinstance(value, int | float):
                raise GarbageReply(
                    self.role,
                    self.resource,
                    f"read model {model_id}",
                    f"{name} is mandatory in a SunSpec meter, but reads {value!r} (not implemented)",
                )
            return float(value)

        def optional(name: str) -> float | None:
            return None if points.get(name) is None else required(name)

        def accumulated(name: str) -> float:
            return 0.0 if points.get(name) is None else required(name)

        pf = optional("PF")
        return MeterReading(
            power_w=required("W"),
            va=optional("VA"),
            var=optional("VAR"),
            pf=pf / PERCENT if pf is not None and model_id in INTEGER_METERS else pf,
            frequency_hz=required("Hz"),
            voltage_v=optional("PhV"),
            current_a=required("A"),
            energy_imported_wh=accumulated("TotWhImp"),
            energy_exported_wh=accumulated("TotWhExp"),
            events=int(required("Evt")),
            voltage_ll_v=optional("PPV"),
        )

    def safe(self) -> None:
        """A meter has no outputs: nothing to bring to safety. Checks the link instead (the meter model's
        header still reads back), so a safe-state pass notices a meter that went away."""
        model_id = self._opened_model()
        header = self.transport.read_registers(self._address, 1, what="meter model id")
        if header != [model_id]:
            raise GarbageReply(
                self.role, self.resource, "read meter model id", f"expected [{model_id}], got {header}"
            )

    def _opened_model(self) -> int:
        if self.model_id is None:
            raise RuntimeError(f"{self.role}: open the meter first")
        return self.model_id
