"""Modbus stand-ins: register maps declared as data, SunSpec images, and the pymodbus server that serves them.

``registers`` and ``sunspec`` are pure (no I/O); ``server`` is the only server-side module importing pymodbus.
"""

from harness.sim.modbus.registers import (
    Access,
    EncodeError,
    ExceptionCode,
    ModbusError,
    OneOf,
    Point,
    PointType,
    Range,
    RegisterMap,
    Value,
    decode,
    encode,
    sentinel,
)
from harness.sim.modbus.server import Framing, ModbusStandIn, UnknownUnit
from harness.sim.modbus.sunspec import (
    SUNSPEC_BASE_ADDRESS,
    Model,
    common_model,
    sunspec_map,
    sunspec_points,
)

__all__ = [
    "SUNSPEC_BASE_ADDRESS",
    "Access",
    "EncodeError",
    "ExceptionCode",
    "Framing",
    "ModbusError",
    "ModbusStandIn",
    "Model",
    "OneOf",
    "Point",
    "PointType",
    "Range",
    "RegisterMap",
    "UnknownUnit",
    "Value",
    "common_model",
    "decode",
    "encode",
    "sentinel",
    "sunspec_map",
    "sunspec_points",
]
