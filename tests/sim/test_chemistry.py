"""Cell chemistries: OCV tables, their lookup, and the segment tables the pack model gathers from."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.sim.chemistry import (
    CELL_V_MAX,
    CELL_V_MIN,
    OCV_TABLE,
    SOC_GRID,
    SOC_GRID_POINTS,
    Chemistry,
    ocv_cell,
    segment_position,
    segment_table,
    table_offsets,
)

CHEMISTRIES = list(Chemistry)
socs = hnp.arrays(float, st.integers(1, 50), elements=st.floats(0.0, 1.0))


def ocv_of(chemistry: Chemistry, soc: np.ndarray) -> np.ndarray:
    soc = np.asarray(soc, dtype=float)
    return ocv_cell(table_offsets(np.full(soc.shape, int(chemistry))), soc)


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_ocv_rises_strictly_with_soc(chemistry):
    soc = np.linspace(0.0, 1.0, 2001)
    assert np.all(np.diff(ocv_of(chemistry, soc)) > 0.0)


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_ocv_matches_the_table_at_grid_points(chemistry):
    assert np.array_equal(ocv_of(chemistry, SOC_GRID), OCV_TABLE[chemistry])


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_ocv_is_linear_between_grid_points(chemistry):
    midpoints = (SOC_GRID[:-1] + SOC_GRID[1:]) / 2
    expected = (OCV_TABLE[chemistry][:-1] + OCV_TABLE[chemistry][1:]) / 2
    assert np.allclose(ocv_of(chemistry, midpoints), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_ocv_clamps_outside_zero_to_one(chemistry):
    table = OCV_TABLE[chemistry]
    assert np.array_equal(
        ocv_of(chemistry, [-0.5, -1e-9, 1.0 + 1e-9, 7.0]), [table[0], table[0], table[-1], table[-1]]
    )


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_a_resting_cell_is_inside_its_bms_voltage_window(chemistry):
    table = OCV_TABLE[chemistry]
    assert CELL_V_MIN[chemistry] < table.min() and table.max() < CELL_V_MAX[chemistry]


def test_the_tables_anchor_the_documented_voltages():
    assert OCV_TABLE[Chemistry.NMC][[0, 50, 100]] == pytest.approx([3.200, 3.697, 4.187])
    assert OCV_TABLE[Chemistry.LMO][[0, 100]] == pytest.approx([3.300, 4.180])
    assert 3.30 < OCV_TABLE[Chemistry.LFP][50] < 3.45, "LFP's plateau sits near 3.4 V"


@settings(max_examples=150, deadline=None)
@given(soc=socs, chemistry=st.sampled_from(CHEMISTRIES))
def test_segment_table_reproduces_ocv_cell(soc, chemistry):
    intercept, slope = segment_table(OCV_TABLE)
    position = segment_position(int(chemistry), soc)
    segment = position.astype(np.intp)
    value = intercept[segment] + slope[segment] * position
    assert np.allclose(value, ocv_of(chemistry, soc), rtol=1e-13, atol=0)


@settings(max_examples=100, deadline=None)
@given(
    rows=hnp.arrays(
        float, st.tuples(st.integers(1, 4), st.just(SOC_GRID_POINTS)), elements=st.floats(-1e3, 1e3)
    ),
    data=st.data(),
)
def test_segment_table_interpolates_any_rows(rows, data):
    row = data.draw(st.integers(0, rows.shape[0] - 1))
    soc = data.draw(socs)
    intercept, slope = segment_table(rows)
    position = segment_position(row, soc)
    segment = position.astype(np.intp)
    expected = np.interp(soc, SOC_GRID, rows[row])
    assert np.allclose(intercept[segment] + slope[segment] * position, expected, rtol=1e-9, atol=1e-9)


def test_segment_table_reads_end_values_just_outside_zero_to_one():
    intercept, slope = segment_table(OCV_TABLE)
    for chemistry in CHEMISTRIES:
        position = segment_position(int(chemistry), np.array([-0.004, 1.004]))
        segment = position.astype(np.intp)
        value = intercept[segment] + slope[segment] * position
        assert np.array_equal(value, OCV_TABLE[chemistry][[0, -1]])
