"""The controller under test, through its own Modbus face: a stub until the controller's register map lands.

What it does now: open the link, check that a SunSpec device answers, and say who it is from the common
model (1). The controller's state (mode, heartbeat, alarms, dispatch) comes with the Controller issue.
"""

from __future__ import annotations

from typing import Self

from drivers.base import DriverConfig, Identity
from drivers.modbus import ModbusDriver
from drivers.registry import register
from drivers.sunspec import SunSpecDevice, sunspec_identity


@register("gridhil-controller")
class ControllerLink(ModbusDriver):
    """The controller under test on Modbus TCP (or RTU), identified by its SunSpec common model."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.device = SunSpecDevice(self.transport)

    def open(self) -> Self:
        """Connect, find the SunSpec models and read the common model (raises if any of that fails)."""
        super().open()
        try:
            self.identity()
        except BaseException:
            self.close()
            raise
        return self

    def identity(self) -> Identity:
        """Manufacturer, model, serial number and version from the common model (1)."""
        return sunspec_identity(self.device, self.role, self.resource)

    def safe(self) -> None:
        """Does nothing yet: the controller is the device under test, not an output of the bench, and what
        "safe" asks of it (e.g. a stop command in its register map) is decided with the Controller issue.
        It does not touch the link, so a safe-state pass never fails on the controller."""
