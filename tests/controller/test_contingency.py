"""The two controller questions of docs/fuzz.md "What it found" (findings 4 and 5), answered.

Finding 4: with three of four PCS units tripped at high load, the reference capped the racks only
once islanded, so a grid loss interrupted the bus for a control period. It now keeps the racks to
what an island could carry while grid-connected (islanding readiness). Finding 5: a planned island
carrying a large PV surplus stepped the island's frequency by the droop of the whole charge; the
PCS now forms from the operating point it was following (a seamless transfer).

Over the wire (``run_sequence``, 24 packs, the reference controller) for the findings themselves, on
synthetic views for the decision's invariants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.controller.model import Alarm, ControllerMode, PcsState
from harness.controller.reference import ControllerConfig, ReferenceController
from harness.controller.variants import build_controller
from harness.run import RunResult, run_sequence
from harness.sequence import Sequence
from harness.sequence_builder import SequenceBuilder
from harness.sim.pcs import Pcs
from harness.trace import (
    BUS_FREQUENCY_HZ,
    CONTROLLER_MODE,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    PCS_W,
    POWER_CAP_W,
    Trace,
)
from tests.controller.test_reference import DEAD_BUS, ISLANDED, VIEW_DEFAULTS, Loop, plant_view

PACKS = 24
"""The fuzzer's fleet size; ratings scale with it (the PCS 12 MW x 24/805, about 358 kW)."""
PCS_UNITS = 4
PCS_RATED_W = 12e6 * PACKS / 805
UNIT_W = PCS_RATED_W / PCS_UNITS
CONFIG = ControllerConfig()
GRID_CONNECTED = float(ControllerMode.GRID_CONNECTED)
ISLANDED_MODE = float(ControllerMode.ISLANDED)
BAND_HIGH_HZ = 60.5


def verdicts(result: RunResult) -> dict[str, bool]:
    return {verdict.name.split("[")[0]: verdict.passed for verdict in result.verdicts}


def capped_j(trace: Trace) -> float:
    """Energy the racks wanted above the cap in force (a soft shed), sample by sample."""
    cap = np.nan_to_num(trace.channel(POWER_CAP_W), nan=np.inf)
    above = np.clip(trace.channel(LOAD_DEMAND_W) - cap, 0.0, None)
    return float(np.sum(above[1:] * np.diff(trace.t)))


def units_out_on_the_grid(sequence_id: str) -> SequenceBuilder:
    """Finding 4's start: racks at 0.9, three of the four PCS units tripped one by one on the grid."""
    builder = (
        SequenceBuilder(sequence_id)
        .title("Three PCS units trip while grid-connected at high rack load")
        .reference("gridhil issue 8, docs/fuzz.md finding 4")
        .initial(soc=0.8, load={"profile": "constant", "level": 0.9}, grid={"voltage_pu": 1.0})
    )
    for relay, at_s in enumerate((5.0, 6.0, 7.0)):
        builder.at(at_s).call("relays", "on", relay=relay)
    return builder.criterion("itic", profile="itic").criterion("load_served", max_unserved_j=0)


def run(sequence: Sequence, out_dir: Path) -> tuple[RunResult, Trace]:
    result = run_sequence(sequence, out_dir=out_dir, packs=PACKS)
    return result, Trace.load(result.trace_dir)


# ---------------------------------------------------------------------------------------- finding 4


def test_finding_4_three_units_out_then_the_grid_goes_is_ridden_on_a_cap_set_beforehand(tmp_path):
    sequence = units_out_on_the_grid("finding-4").at(15.0).call("grid", "outage").duration(25.0).build()
    result, trace = run(sequence, tmp_path)
    assert verdicts(result) == {"itic": True, "load_served": True}

    t, cap, mode = trace.t, trace.channel(POWER_CAP_W), trace.channel(CONTROLLER_MODE)
    assert np.all(np.isnan(cap[t < 5.0])), "all four units running: nothing is capped"
    ready = (t > 7.5) & (t <= 15.0)
    assert np.all(mode[ready] == GRID_CONNECTED)
    assert np.all(cap[ready] <= UNIT_W - CONFIG.contingency_margin_fraction * PCS_RATED_W + 1.0), (
        "on the grid, the racks are capped to what the one remaining unit can form"
    )
    served = trace.channel(LOAD_SERVED_W)
    assert np.all(served[ready] == pytest.approx(cap[ready], rel=0.01)), "and keep running at the cap"
    assert np.all(np.isfinite(cap[t > 7.5])), "the cap carries over into the island without a gap"
    assert np.all(mode[t > 15.2] == ISLANDED_MODE)
    assert capped_j(trace) > 0.0, "the shed is capped energy, and load_served found none unserved"


def test_the_readiness_cap_is_lifted_once_the_units_return(tmp_path):
    back_s = 9.0
    sequence = units_out_on_the_grid("units-return").at(back_s)
    for relay in range(3):
        sequence.call("relays", "off", relay=relay)
    result, trace = run(sequence.duration(back_s + CONFIG.cap_release_s + 1.5).build(), tmp_path)
    assert verdicts(result) == {"itic": True, "load_served": True}

    t, cap, demand = trace.t, trace.channel(POWER_CAP_W), trace.channel(LOAD_DEMAND_W)
    assert np.all(np.isfinite(cap[(t > 7.5) & (t <= back_s)])), "capped while a single unit runs"
    after = t > back_s + 0.5
    assert np.all(np.nan_to_num(cap[after], nan=np.inf) > demand[after]), "units back: the cap binds no more"
    assert np.isnan(cap[-1]), "and it is released after cap_release_s"
    assert np.all(trace.channel(CONTROLLER_MODE) == GRID_CONNECTED)


# ---------------------------------------------------------------------------------------- finding 5


def test_finding_5_a_planned_island_carrying_a_pv_surplus_holds_the_frequency_band(tmp_path):
    sequence = (
        SequenceBuilder("finding-5")
        .title("Planned island with PV far above the racks")
        .reference("gridhil issue 8, docs/fuzz.md finding 5")
        .initial(soc=0.5, load={"profile": "constant", "level": 0.1}, pv={"rated_w": 11e6})
        .at(2.0)
        .call("controller", "planned_island")
        .duration(7.0)
        .criterion("frequency_band", low_hz=59.3, high_hz=BAND_HIGH_HZ)
        .criterion("load_served", max_unserved_j=0)
        .build()
    )
    result, trace = run(sequence, tmp_path)
    assert verdicts(result) == {"frequency_band": True, "load_served": True}
    mode = trace.channel(CONTROLLER_MODE)
    assert mode[-1] == ISLANDED_MODE, "the planned island did open"
    charging_pu = -trace.channel(PCS_W)[-1] / PCS_RATED_W
    assert charging_pu > 0.8, "the island absorbs the PV surplus: the finding's situation holds"
    assert np.nanmax(trace.channel(BUS_FREQUENCY_HZ)) < 60.05, (
        "the breaker opened on a balanced bus: the frequency does not step by the droop of the charge"
    )


@settings(max_examples=100, deadline=None)
@given(output_pu=st.floats(-1.0, 1.0), dt_s=st.sampled_from([0.001, 0.1]))
def test_a_pcs_starts_forming_where_it_was_following_whatever_it_carries(output_pu, dt_s):
    pcs = Pcs.of_rating(PCS_RATED_W, PCS_UNITS)
    pcs.output_w = output_pu * PCS_RATED_W
    following_hz = pcs.frequency_hz
    pcs.start_forming()
    assert pcs.forming_frequency_hz(dt_s, pcs.output_w) == pytest.approx(following_hz, abs=1e-9)
    more_load_w = pcs.output_w + 0.5 * PCS_RATED_W
    assert pcs.forming_frequency_hz(dt_s, more_load_w) < following_hz, "further load still droops it"


# ---------------------------------------------------------------------------------------- the decision

RATED_W = float(VIEW_DEFAULTS["pcs_rated_w"])  # type: ignore[arg-type]
MARGIN_W = CONFIG.contingency_margin_fraction * RATED_W


@settings(max_examples=200, deadline=None)
@given(
    units=st.integers(1, 4),
    fleet_w=st.floats(0.0, 2e6),
    pcs_w=st.floats(-1e6, 1e6),
    pcc_w=st.floats(-1e6, 2e6),
)
def test_grid_connected_caps_exactly_when_an_island_could_not_carry_the_net_demand(
    units, fleet_w, pcs_w, pcc_w
):
    """Net demand (PCS output plus PCC import) beyond the firm supply less the headroom: capped to
    that; an island that could carry nothing beyond the headroom is none to prepare for."""
    view = plant_view(
        pcs_units_available=units, fleet_discharge_max_w=fleet_w, pcs_output_w=pcs_w, pcc_w=pcc_w
    )
    _, status = Loop(ReferenceController()).step(view)
    island_w = min(fleet_w, RATED_W * units / 4) - MARGIN_W
    if island_w <= 0.0 or island_w >= pcs_w + pcc_w:
        assert status.power_cap_w is None and not status.alarms & Alarm.POWER_SHORTFALL
    else:
        assert status.power_cap_w == pytest.approx(island_w)
        assert status.alarms & Alarm.POWER_SHORTFALL
    assert status.mode is ControllerMode.GRID_CONNECTED


ONE_UNIT_SHORT = {"pcs_units_available": 1, "pcs_output_w": 0.0, "pcc_w": 300e3}


def test_the_readiness_cap_is_held_through_the_transfer_and_taken_over_by_the_island():
    run = Loop(ReferenceController())
    _, before = run.step(plant_view(**ONE_UNIT_SHORT))
    assert before.power_cap_w == pytest.approx(RATED_W / 4 - MARGIN_W)
    _, transfer = run.step(plant_view(**{**DEAD_BUS, "pcs_units_available": 1}))
    assert transfer.power_cap_w == before.power_cap_w, "the dead bus of the transfer drops no cap"
    island_margin_w = CONFIG.cap_margin_fraction * RATED_W
    _, island = run.step(plant_view(**{**ISLANDED, "pcs_units_available": 1, "pcs_output_w": 200e3}))
    assert island.power_cap_w == pytest.approx(RATED_W / 4 - island_margin_w)


@pytest.mark.parametrize(
    ("controller", "view"),
    [
        ("reference", {**ONE_UNIT_SHORT, "pcs_state": PcsState.TRIPPED}),
        ("reference", {**ONE_UNIT_SHORT, "pcs_state": PcsState.OFF}),
        ("never-island", ONE_UNIT_SHORT),
        ("reference", {**ONE_UNIT_SHORT, "fleet_discharge_max_w": 0.0}),
    ],
    ids=["pcs-tripped", "pcs-off", "islanding-disabled", "fleet-cannot-discharge"],
)
def test_nothing_is_capped_on_the_grid_where_no_island_can_form(controller, view):
    _, status = Loop(build_controller(controller)).step(plant_view(**view))
    assert status.power_cap_w is None


@pytest.mark.parametrize("margin", [-0.01, 1.0])
def test_config_rejects_a_contingency_margin_outside_the_rating(margin):
    with pytest.raises(ValueError, match="contingency_margin_fraction"):
        ControllerConfig(contingency_margin_fraction=margin)
