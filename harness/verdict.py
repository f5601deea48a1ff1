"""The outcome of one criterion on one trace: what was measured, against what limit, and the evidence.

A verdict carries its *margin* in the unit of the measurement, signed so that every criterion reads
the same way: ``margin > 0`` is room left, ``margin < 0`` is by how much the limit was missed, and
``passed`` is ``margin >= 0``. A measurement that cannot be made (NaN) fails. ``to_json`` gives
strict JSON (no NaN/Infinity literals): non-finite numbers become the strings ``"inf"``,
``"-inf"``, ``"nan"``, which ``float()`` reads back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _json_number(value: float) -> float | str:
    number = float(value)
    return number if math.isfinite(number) else str(number)


def _json_array(values: np.ndarray) -> list[Any]:
    array = np.asarray(values)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        cells = np.vectorize(_json_number, otypes=[object])(array) if array.size else array
        return np.asarray(cells, dtype=object).tolist()
    return array.tolist()


@dataclass(frozen=True)
class Verdict:
    """One criterion's judgement. ``when`` is the (t0, t1) span judged, or None if not tied to time."""

    name: str
    passed: bool
    measured: float
    limit: float
    margin: float
    unit: str
    when: tuple[float, float] | None = None
    reference: str = ""
    detail: str = ""
    evidence: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False)

    @classmethod
    def at_most(cls, name: str, measured: float, limit: float, unit: str, **rest: Any) -> Verdict:
        """A verdict for "measured must not exceed limit"."""
        margin = float(limit) - float(measured)
        return cls(name, bool(margin >= 0.0), float(measured), float(limit), margin, unit, **rest)

    @classmethod
    def at_least(cls, name: str, measured: float, limit: float, unit: str, **rest: Any) -> Verdict:
        """A verdict for "measured must reach at least limit"."""
        margin = float(measured) - float(limit)
        return cls(name, bool(margin >= 0.0), float(measured), float(limit), margin, unit, **rest)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; evidence arrays become (nested) lists."""
        return {
            "name": self.name,
            "passed": self.passed,
            "measured": _json_number(self.measured),
            "limit": _json_number(self.limit),
            "margin": _json_number(self.margin),
            "unit": self.unit,
            "when": None if self.when is None else [_json_number(t) for t in self.when],
            "reference": self.reference,
            "detail": self.detail,
            "evidence": {key: _json_array(value) for key, value in self.evidence.items()},
        }
