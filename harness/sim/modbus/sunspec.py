"""SunSpec register images: the ``SunS`` marker, the chain of models, model 1 (common).

Layout (reference/protocols.md §6): ``SunS`` (0x5375 0x6E53) at PDU address 40000, then the models back to
back, each ``ID, L, <L registers>``, closed by the end model ``0xFFFF, 0``. A client finds every model by
walking the chain from 40002. Model 1 must come first.

A :class:`Model` is declared the way SunSpec model definitions are: its points in order, unplaced, with
scale factors named by the model's own ``*_SF`` points. The image places them and prefixes every name with
the model's name (``meter.W``, ``meter.W_SF``), so two models may share point names; the header points are
``<name>.ID`` and ``<name>.L``, the marker ``SunS``, the end model ``end.ID`` and ``end.L``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace

from harness.sim.modbus.registers import Access, Point, PointType, Range, RegisterMap

SUNSPEC_BASE_ADDRESS = 40000
"""Where the marker goes; SunSpec also allows 0 and 50000, which clients probe after 40000."""
SUNS_MARKER = "SunS"
COMMON_MODEL_ID = 1
END_MODEL_ID = 0xFFFF
_HEADER_REGISTERS = 2


@dataclass(frozen=True)
class Model:
    """One SunSpec model: its id, the name its points are prefixed with, its body points in order."""

    model_id: int
    name: str
    points: tuple[Point, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.model_id < END_MODEL_ID:
            raise ValueError(f"model id {self.model_id} outside 1..{END_MODEL_ID - 1}")
        if not self.name or "." in self.name:
            raise ValueError(f"model name {self.name!r}: non-empty, without dots")
        for point in self.points:
            if point.address is not None:
                raise ValueError(f"{self.name}.{point.name}: the image places model points, not the model")

    @property
    def length(self) -> int:
        """``L``: registers in the body, after ``ID`` and ``L``."""
        return sum(point.size for point in self.points)


def common_model(
    *,
    manufacturer: str,
    model: str,
    serial_number: str,
    version: str = "",
    options: str = "",
    device_address: int = 1,
) -> Model:
    """Model 1 (common): who the device is. ``DA`` is writable (1-247) and reads back what was written."""
    return Model(
        COMMON_MODEL_ID,
        "common",
        (
            Point("Mn", PointType.STRING, size=16, value=manufacturer, description="manufacturer"),
            Point("Md", PointType.STRING, size=16, value=model, description="model"),
            Point("Opt", PointType.STRING, size=8, value=options or None, description="options"),
            Point("Vr", PointType.STRING, size=8, value=version or None, description="version"),
            Point("SN", PointType.STRING, size=16, value=serial_number, description="serial number"),
            Point(
                "DA",
                PointType.UINT16,
                access=Access.RW,
                validator=Range(1, 247),
                value=device_address,
                description="Modbus device address",
            ),
            Point("Pad", PointType.PAD, description="pad to an even length"),
        ),
    )


def sunspec_points(models: Sequence[Model], *, base_address: int = SUNSPEC_BASE_ADDRESS) -> list[Point]:
    """The placed points of an image: marker, each model's header and body, end model."""
    if not models or models[0].model_id != COMMON_MODEL_ID:
        raise ValueError("a SunSpec image starts with model 1 (common)")
    names = [model.name for model in models]
    if len(set(names)) != len(names) or "end" in names:
        raise ValueError(f"model names must be unique and not 'end': {names}")
    placed = [Point(SUNS_MARKER, PointType.STRING, base_address, size=2, value=SUNS_MARKER)]
    address = base_address + 2
    for model in models:
        placed += _header(model.name, address, model.model_id, model.length)
        address += _HEADER_REGISTERS
        for point in model.points:
            placed.append(_place(model.name, point, address))
            address += point.size
    # The end model's ID 0xFFFF is also uint16's "not implemented" pattern, which None encodes.
    placed += _header("end", address, None, 0)
    return placed


def sunspec_map(
    models: Sequence[Model],
    *,
    base_address: int = SUNSPEC_BASE_ADDRESS,
    lock: AbstractContextManager[object] | None = None,
    title: str = "",
) -> RegisterMap:
    """A register map holding just the SunSpec image of ``models``; bind sources to its points after."""
    return RegisterMap(sunspec_points(models, base_address=base_address), lock=lock, title=title)


def _header(name: str, address: int, model_id: int | None, length: int) -> list[Point]:
    return [
        Point(f"{name}.ID", PointType.UINT16, address, value=model_id, description="model id"),
        Point(f"{name}.L", PointType.UINT16, address + 1, value=length, description="model length"),
    ]


def _place(model_name: str, point: Point, address: int) -> Point:
    factor = point.scale_factor
    return replace(
        point,
        name=f"{model_name}.{point.name}",
        address=address,
        scale_factor=f"{model_name}.{factor}" if isinstance(factor, str) else factor,
    )
