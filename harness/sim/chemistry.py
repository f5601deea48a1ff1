"""Cell chemistries of second-life EV packs: open-circuit voltage tables and cell voltage limits.

Every table is sampled on one uniform 101-point SOC grid so that the OCV of thousands of packs of
mixed chemistry is a single gather plus a linear blend (see :func:`ocv_cell`), with no Python loop
over chemistries on the hot path of a plant step.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

SOC_GRID_POINTS = 101
SOC_GRID = np.linspace(0.0, 1.0, SOC_GRID_POINTS)


class Chemistry(IntEnum):
    """Cell chemistry of a pack; the value indexes the rows of :data:`OCV_TABLE`."""

    NMC = 0
    LMO = 1
    LFP = 2


_TEN_PERCENT = np.linspace(0.0, 1.0, 11)

# NMC: the 11-point OCV table of PyBaMM's ECM example cell (reference/domain.md §3.3).
_NMC_OCV = np.interp(
    SOC_GRID,
    _TEN_PERCENT,
    [3.200, 3.494, 3.575, 3.625, 3.655, 3.697, 3.768, 3.854, 3.937, 4.046, 4.187],
)

# LMO-NMC blend of first-generation Nissan Leaf cells: 4.2 V full, 3.75 V nominal (360 V at 96s).
_LMO_OCV = np.interp(
    SOC_GRID,
    _TEN_PERCENT,
    [3.300, 3.550, 3.630, 3.680, 3.720, 3.770, 3.830, 3.900, 3.980, 4.070, 4.180],
)


def _lfp_ocv(soc: np.ndarray) -> np.ndarray:
    """LFP cathode potential (Afshar 2017, as used by Prada 2013) against the cathode lithiation x = 1 - SOC.

    The lithiation is kept inside [0.02, 0.98], the cathode window of a full cell, so the ends are finite.
    """
    x = 0.98 - 0.96 * soc
    return 3.4077 - 0.020269 * x + 0.5 * np.exp(-150.0 * x) - 0.9 * np.exp(-30.0 * (1.0 - x))


OCV_TABLE = np.stack([_NMC_OCV, _LMO_OCV, _lfp_ocv(SOC_GRID)])
"""Cell OCV in volts, shape (chemistries, SOC_GRID_POINTS), rows indexed by :class:`Chemistry`."""

_OCV_FLAT = OCV_TABLE.ravel()
_OCV_STEP_FLAT = np.diff(OCV_TABLE, axis=1, append=OCV_TABLE[:, -1:]).ravel()

CELL_V_MAX = np.array([4.20, 4.20, 3.65])
"""Cell over-voltage limit of the BMS per chemistry, volts."""
CELL_V_MIN = np.array([3.00, 3.00, 2.50])
"""Cell under-voltage limit of the BMS per chemistry, volts."""
CELL_V_NOMINAL = np.array([3.65, 3.75, 3.25])
"""Nominal cell voltage per chemistry, volts: what a nameplate kWh figure is computed at."""


def table_offsets(chemistry: np.ndarray) -> np.ndarray:
    """Row offsets into the flattened OCV table for each pack; compute once per fleet."""
    return np.asarray(chemistry, dtype=np.intp) * SOC_GRID_POINTS


def ocv_cell(offsets: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Cell OCV for packs whose table rows start at ``offsets`` (from :func:`table_offsets`).

    SOC outside [0, 1] is clamped to the table ends.
    """
    position = np.clip(soc, 0.0, 1.0) * (SOC_GRID_POINTS - 1)
    index = position.astype(np.intp)
    flat = offsets + index
    return _OCV_FLAT[flat] + (position - index) * _OCV_STEP_FLAT[flat]


SEGMENT_STRIDE = SOC_GRID_POINTS + 1
"""Segments per row of a :func:`segment_table`: a flat guard below SOC 0, one segment per grid interval,
and a flat segment from SOC 1."""


def segment_table(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (intercept, slope) of the linear segments of SOC-grid tables ``rows``, shape (k, 101).

    A value at SOC ``s`` of row ``j`` is ``intercept[i] + slope[i] * x`` with the table position
    ``x = segment_position(j, s)`` and ``i = int(x)``: one truncation, two gathers, a multiply and an
    add, with no per-row offsets or fractions to form. Each segment carries its line in the absolute
    position, so a row index never has to be subtracted. The guard segment (SOC in [-0.01, 0)) and the
    top one (SOC in [1, 1.01)) are flat, so rounding just outside [0, 1] reads the end values.
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    k = rows.shape[0]
    slope = np.zeros((k, SEGMENT_STRIDE))
    slope[:, 1:SOC_GRID_POINTS] = np.diff(rows, axis=1)
    start = np.concatenate([rows[:, :1], rows], axis=1)
    first_position = np.arange(k * SEGMENT_STRIDE, dtype=float).reshape(k, SEGMENT_STRIDE)
    return (start - slope * first_position).ravel(), slope.ravel()


def segment_position(row: np.ndarray | int, soc: np.ndarray | float) -> np.ndarray:
    """Position of ``soc`` in row ``row`` of a :func:`segment_table`."""
    return (
        np.asarray(row) * float(SEGMENT_STRIDE) + 1.0 + np.asarray(soc, dtype=float) * (SOC_GRID_POINTS - 1)
    )
