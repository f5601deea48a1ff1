"""SunSpec Modbus client on a :class:`ModbusTransport`: find the models, read them scaled, write points.

Layout (reference/protocols.md §6): the marker ``SunS`` (0x5375 0x6E53) at PDU address 40000, 0 or 50000
(probed in that order), then models back to back, each ``ID, L, <L registers>``, closed by ``0xFFFF, 0``.
A model's *address* here is the address of its ``ID`` register.

Values: integers carry a scale factor (``value = raw x 10^sf``, the ``sf`` naming a ``sunssf`` point of the
same model); every type has a "not implemented" pattern, read as None, and a scaled point whose scale factor
is not implemented reads None too. Scaled integers come back as int for ``sf >= 0`` and float otherwise.
``pad`` points are left out of what a read returns.

:data:`SUNSPEC_MODELS` holds the point definitions of the common model and the meter models from the
SunSpec model definitions (``sunspec/models`` JSON): 201-204 (integer + scale factors, 105 registers; 201
single phase, 202 split phase, 203 wye, 204 delta, all with the same points) and 211-214 (float32, 124
registers). Their spelling is the standard's, quirks included: 20x names line-to-line voltages ``PhVphAB``
and reactive energies ``TotVArhImpQ1PhA``, 21x ``PPVphAB`` and ``TotVArhImpQ1phA``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from drivers.base import Identity
from drivers.errors import GarbageReply, IdentityMismatch, InstrumentRejected, LimitViolation
from drivers.modbus import ADDRESS_SPACE, ModbusTransport

BASE_ADDRESSES = (40000, 0, 50000)
SUNS_MARKER = [0x5375, 0x6E53]
END_MODEL_ID = 0xFFFF
COMMON_MODEL_ID = 1
_HEADER_REGISTERS = 2
_ILLEGAL_ADDRESS = 0x02
_SF_LIMIT = 10

PointValue = int | float | str | None


class Kind(Enum):
    """How a SunSpec type's registers read, and its "not implemented" pattern."""

    SIGNED = "signed"
    UNSIGNED = "unsigned"
    ACCUMULATOR = "accumulator"
    SCALE_FACTOR = "scale factor"
    FLOAT = "float"
    STRING = "string"
    PAD = "pad"


_TYPES: dict[str, tuple[int, Kind]] = {
    "int16": (1, Kind.SIGNED),
    "uint16": (1, Kind.UNSIGNED),
    "acc16": (1, Kind.ACCUMULATOR),
    "enum16": (1, Kind.UNSIGNED),
    "bitfield16": (1, Kind.UNSIGNED),
    "sunssf": (1, Kind.SCALE_FACTOR),
    "pad": (1, Kind.PAD),
    "int32": (2, Kind.SIGNED),
    "uint32": (2, Kind.UNSIGNED),
    "acc32": (2, Kind.ACCUMULATOR),
    "enum32": (2, Kind.UNSIGNED),
    "bitfield32": (2, Kind.UNSIGNED),
    "int64": (4, Kind.SIGNED),
    "uint64": (4, Kind.UNSIGNED),
    "acc64": (4, Kind.ACCUMULATOR),
    "float32": (2, Kind.FLOAT),
    "string": (0, Kind.STRING),
}


@dataclass(frozen=True)
class PointDef:
    """One point of a model definition, as the standard declares it."""

    name: str
    type: str
    size: int = 0
    """Registers; 0 takes the type's width (strings must give theirs)."""
    sf: str | None = None
    units: str = ""
    writable: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"{self.name}: unknown SunSpec type {self.type!r}")
        width, kind = _TYPES[self.type]
        if kind is Kind.STRING and self.size < 1:
            raise ValueError(f"{self.name}: a string point needs its size")
        if kind is not Kind.STRING:
            object.__setattr__(self, "size", width)

    @property
    def kind(self) -> Kind:
        return _TYPES[self.type][1]


@dataclass(frozen=True)
class ModelDef:
    model_id: int
    name: str
    points: tuple[PointDef, ...]

    @property
    def length(self) -> int:
        """``L``: registers after ``ID`` and ``L``."""
        return sum(point.size for point in self.points)

    @cached_property
    def offsets(self) -> dict[str, tuple[int, PointDef]]:
        """Point name -> (offset from the first body register, definition)."""
        placed, offset = {}, 0
        for point in self.points:
            placed[point.name] = (offset, point)
            offset += point.size
        return placed


# ----------------------------------------------------------------------------- model definitions


def _common() -> ModelDef:
    return ModelDef(
        COMMON_MODEL_ID,
        "common",
        (
            PointDef("Mn", "string", 16),
            PointDef("Md", "string", 16),
            PointDef("Opt", "string", 8),
            PointDef("Vr", "string", 8),
            PointDef("SN", "string", 16),
            PointDef("DA", "uint16", writable=True),
            PointDef("Pad", "pad"),
        ),
    )


def _group(names: Iterable[str], point_type: str, units: str, sf: str | None) -> list[PointDef]:
    return [PointDef(name, point_type, sf=sf, units=units) for name in names]


def _per_phase(name: str, phase_prefix: str = "ph") -> list[str]:
    return [name, *(f"{name}{phase_prefix}{phase}" for phase in "ABC")]


def _meter_quantities(line_voltage_prefix: str) -> list[tuple[list[str], str, str]]:
    """Names, units and scale factor of the instantaneous quantities, in order."""
    return [
        (_per_phase("A"), "A", "A_SF"),
        (
            [*_per_phase("PhV"), "PPV", *(f"{line_voltage_prefix}ph{pair}" for pair in ("AB", "BC", "CA"))],
            "V",
            "V_SF",
        ),
        (["Hz"], "Hz", "Hz_SF"),
        (_per_phase("W"), "W", "W_SF"),
        (_per_phase("VA"), "VA", "VA_SF"),
        (_per_phase("VAR"), "var", "VAR_SF"),
        (_per_phase("PF"), "Pct", "PF_SF"),
    ]


def _meter_energies(reactive_phase_prefix: str) -> list[tuple[list[str], str, str]]:
    reactive = ("TotVArhImpQ1", "TotVArhImpQ2", "TotVArhExpQ3", "TotVArhExpQ4")
    return [
        ([*_per_phase("TotWhExp", "Ph"), *_per_phase("TotWhImp", "Ph")], "Wh", "TotWh_SF"),
        ([*_per_phase("TotVAhExp", "Ph"), *_per_phase("TotVAhImp", "Ph")], "VAh", "TotVAh_SF"),
        (
            [name for total in reactive for name in _per_phase(total, reactive_phase_prefix)],
            "varh",
            "TotVArh_SF",
        ),
    ]


def _integer_meter(model_id: int, name: str) -> ModelDef:
    points: list[PointDef] = []
    for names, units, sf in _meter_quantities("PhV"):
        points += [*_group(names, "int16", units, sf), PointDef(sf, "sunssf")]
    for names, units, sf in _meter_energies("Ph"):
        points += [*_group(names, "acc32", units, sf), PointDef(sf, "sunssf")]
    return ModelDef(model_id, name, (*points, PointDef("Evt", "bitfield32")))


def _float_meter(model_id: int, name: str) -> ModelDef:
    points: list[PointDef] = []
    for names, units, _ in [*_meter_quantities("PPV"), *_meter_energies("ph")]:
        points += _group(names, "float32", "PF" if units == "Pct" else units, None)
    return ModelDef(model_id, name, (*points, PointDef("Evt", "bitfield32")))


_METER_KINDS = {1: "single phase", 2: "split phase", 3: "wye three phase", 4: "delta three phase"}

SUNSPEC_MODELS: Mapping[int, ModelDef] = {
    COMMON_MODEL_ID: _common(),
    **{200 + n: _integer_meter(200 + n, f"ac_meter ({kind}, integer)") for n, kind in _METER_KINDS.items()},
    **{210 + n: _float_meter(210 + n, f"ac_meter ({kind}, float)") for n, kind in _METER_KINDS.items()},
}
"""Model id -> definition: 1 (66 registers), 201-204 (105), 211-214 (124)."""


# ----------------------------------------------------------------------------- registers <-> values


def _raw_integer(registers: Sequence[int]) -> int:
    raw = 0
    for register in registers:
        raw = (raw << 16) | register
    return raw


def _not_implemented(kind: Kind, bits: int) -> int:
    if kind in (Kind.SIGNED, Kind.SCALE_FACTOR):
        return 1 << (bits - 1)
    if kind is Kind.ACCUMULATOR:
        return 0
    return (1 << bits) - 1


def decode(point: PointDef, registers: Sequence[int]) -> int | float | str | None:
    """The unscaled value of ``point`` from its registers; None for its "not implemented" pattern."""
    kind = point.kind
    if kind is Kind.PAD:
        return None
    if kind is Kind.STRING:
        text = (
            struct.pack(f">{len(registers)}H", *registers).rstrip(b"\x00").decode("utf-8", errors="replace")
        )
        return text.rstrip() or None
    if kind is Kind.FLOAT:
        number: float = struct.unpack(">f", struct.pack(">HH", *registers))[0]
        return None if math.isnan(number) else number
    bits = 16 * len(registers)
    raw = _raw_integer(registers)
    if raw == _not_implemented(kind, bits):
        return None
    if kind in (Kind.SIGNED, Kind.SCALE_FACTOR) and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return raw


def scaled(raw: int | float | str | None, sf: int) -> int | float | str | None:
    """``raw x 10^sf``: int for ``sf >= 0``, float otherwise (exact division, no 0.1-multiplication error)."""
    if not isinstance(raw, int):
        return raw
    return raw * 10**sf if sf >= 0 else raw / 10**-sf


def encode(point: PointDef, value: float | int | str, sf: int) -> list[int]:
    """The registers carrying ``value`` (engineering units) at scale factor ``sf``; ValueError if none can."""
    kind = point.kind
    if kind is Kind.STRING:
        if not isinstance(value, str):
            raise ValueError(f"{point.name} takes text, got {value!r}")
        data = value.encode("utf-8")
        if len(data) > 2 * point.size:
            raise ValueError(f"{point.name}: {value!r} does not fit {point.size} registers")
        return list(struct.unpack(f">{point.size}H", data.ljust(2 * point.size, b"\x00")))
    if isinstance(value, str):
        raise ValueError(f"{point.name} takes a number, got {value!r}")
    if kind is Kind.FLOAT:
        if not math.isfinite(value) or abs(value) > 3.4e38:
            raise ValueError(f"{point.name}: float32 cannot carry {value!r}")
        return list(struct.unpack(">HH", struct.pack(">f", value)))
    if kind is Kind.PAD:
        raise ValueError(f"{point.name} is padding")
    raw = round(value * 10**-sf) if sf <= 0 else round(value / 10**sf)
    bits = 16 * point.size
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if kind is Kind.SIGNED else (0, (1 << bits) - 1)
    if not low <= raw <= high or (raw % (1 << bits)) == _not_implemented(kind, bits):
        raise ValueError(f"{point.name}: {value!r} (raw {raw} at sf {sf}) does not fit {point.type}")
    raw %= 1 << bits
    return [(raw >> (16 * shift)) & 0xFFFF for shift in range(point.size - 1, -1, -1)]


# ----------------------------------------------------------------------------- the device


@dataclass(frozen=True)
class _Found:
    address: int
    length: int


class SunSpecDevice:
    """The SunSpec models of one Modbus unit. ``models`` adds or replaces definitions (default: the standard's
    common and meter models); :meth:`scan` runs on first use if not called."""

    def __init__(self, transport: ModbusTransport, models: Mapping[int, ModelDef] = SUNSPEC_MODELS) -> None:
        self.transport = transport
        self.models = models
        self._found: dict[int, list[_Found]] | None = None

    def scan(self) -> dict[int, list[int]]:
        """Model id -> addresses of its instances, walking the chain from the first base with ``SunS``."""
        return {
            model_id: [found.address for found in instances] for model_id, instances in self._scan().items()
        }

    def read_model(self, model_id: int, index: int = 0) -> dict[str, PointValue]:
        """Every point of instance ``index`` of ``model_id``, scale factors applied.

        Models of up to 125 registers (all of :data:`SUNSPEC_MODELS`) are read in one request, so values and
        their scale factors are of one moment.
        """
        definition, found = self._locate(model_id, index)
        length = min(found.length, definition.length)
        registers = self.transport.read_registers(
            found.address + _HEADER_REGISTERS, length, f"model {model_id} ({definition.name})"
        )
        raw: dict[str, int | float | str | None] = {}
        for name, (offset, point) in definition.offsets.items():
            if offset + point.size <= length and point.kind is not Kind.PAD:
                raw[name] = decode(point, registers[offset : offset + point.size])
        return {name: self._apply_sf(definition, name, value, raw) for name, value in raw.items()}

    def write_point(self, model_id: int, name: str, value: float | int | str, index: int = 0) -> None:
        """Write one point (scaled by its scale factor, read from the device first)."""
        definition, found = self._locate(model_id, index)
        offset, point = self._point(definition, name)
        if not point.writable:
            raise ValueError(f"model {model_id} point {name} is read-only in the SunSpec definition")
        sf = self._read_sf(definition, found, point) if point.sf else 0
        command = f"write {name} = {value!r}"
        if sf is None:
            raise LimitViolation(
                self.transport.role,
                self.transport.resource,
                command,
                f"scale factor {point.sf} not implemented",
            )
        try:
            registers = encode(point, value, sf)
        except ValueError as exc:
            raise LimitViolation(self.transport.role, self.transport.resource, command, str(exc)) from None
        address = found.address + _HEADER_REGISTERS + offset
        self.transport.write_registers(address, registers, f"model {model_id} {name}")

    def common(self) -> dict[str, PointValue]:
        """Model 1: ``Mn`` (manufacturer), ``Md`` (model), ``Opt``, ``Vr`` (version), ``SN``, ``DA``."""
        return self.read_model(COMMON_MODEL_ID)

    # ------------------------------------------------------------------ internals

    def _scan(self) -> dict[int, list[_Found]]:
        for base in BASE_ADDRESSES:
            if self._has_marker(base):
                self._found = self._walk(base + len(SUNS_MARKER))
                return self._found
        raise IdentityMismatch(
            self.transport.role,
            self.transport.resource,
            "scan",
            f"not a SunSpec device: no 'SunS' marker at {', '.join(map(str, BASE_ADDRESSES))}",
        )

    def _has_marker(self, base: int) -> bool:
        try:
            return self.transport.read_registers(base, len(SUNS_MARKER), "SunS marker") == SUNS_MARKER
        except InstrumentRejected as exc:
            if exc.code == _ILLEGAL_ADDRESS:
                return False
            raise

    def _walk(self, address: int) -> dict[int, list[_Found]]:
        found: dict[int, list[_Found]] = {}
        while address + _HEADER_REGISTERS <= ADDRESS_SPACE:
            try:
                model_id, length = self.transport.read_registers(address, _HEADER_REGISTERS, "model header")
            except InstrumentRejected as exc:
                if exc.code == _ILLEGAL_ADDRESS and found:
                    return found  # a chain without the end model: tolerated, as common clients do
                raise
            if model_id == END_MODEL_ID:
                return found
            found.setdefault(model_id, []).append(_Found(address, length))
            address += _HEADER_REGISTERS + length
        raise GarbageReply(
            self.transport.role,
            self.transport.resource,
            "scan",
            "the model chain runs past the address space",
        )

    def _locate(self, model_id: int, index: int) -> tuple[ModelDef, _Found]:
        if model_id not in self.models:
            raise KeyError(f"no definition for SunSpec model {model_id}; known: {sorted(self.models)}")
        found_models = self._found if self._found is not None else self._scan()
        instances = found_models.get(model_id, [])
        if not 0 <= index < len(instances):
            raise IdentityMismatch(
                self.transport.role,
                self.transport.resource,
                f"model {model_id}",
                f"the device has {len(instances)} instance(s) of model {model_id}, not an index {index}; "
                f"models found: {sorted(found_models)}",
            )
        return self.models[model_id], instances[index]

    @staticmethod
    def _point(definition: ModelDef, name: str) -> tuple[int, PointDef]:
        try:
            return definition.offsets[name]
        except KeyError:
            raise KeyError(f"model {definition.model_id} has no point {name!r}") from None

    def _read_sf(self, definition: ModelDef, found: _Found, point: PointDef) -> int | None:
        offset, sf_point = self._point(definition, str(point.sf))
        registers = self.transport.read_registers(
            found.address + _HEADER_REGISTERS + offset, 1, str(point.sf)
        )
        sf = decode(sf_point, registers)
        return sf if isinstance(sf, int) and -_SF_LIMIT <= sf <= _SF_LIMIT else None

    @staticmethod
    def _apply_sf(
        definition: ModelDef, name: str, value: PointValue, raw: Mapping[str, PointValue]
    ) -> PointValue:
        point = definition.offsets[name][1]
        if point.sf is None or value is None:
            return value
        sf = raw.get(point.sf)
        if not isinstance(sf, int) or not -_SF_LIMIT <= sf <= _SF_LIMIT:
            return None
        return scaled(value, sf)


def sunspec_identity(device: SunSpecDevice, role: str, resource: str) -> Identity:
    """Who the device says it is in model 1: ``Mn``, ``Md``, ``SN``, ``Vr``.

    IdentityMismatch, naming ``role`` and ``resource``, if it names no manufacturer or model.
    """
    common = device.common()
    manufacturer, model = common.get("Mn"), common.get("Md")
    if not manufacturer or not model:
        raise IdentityMismatch(
            role,
            resource,
            f"model {COMMON_MODEL_ID}",
            f"no manufacturer or model in the common model: {common}",
        )
    return Identity(str(manufacturer), str(model), str(common.get("SN") or ""), str(common.get("Vr") or ""))
