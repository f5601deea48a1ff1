"""Which invariants judge a fuzz example, and over which windows."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition

from harness.fuzz import draws
from harness.fuzz.campaign import _bench_error, _first_broken
from harness.fuzz.draft import Draft, Start
from harness.fuzz.invariants import (
    INVARIANTS,
    SILENT_BMS,
    InvariantBroken,
    invariants_for,
    welded_fault_s,
    welded_with_s,
)
from harness.sequence import Cloud, Step
from harness.verdict import Verdict

CONSTANT = MappingProxyType({"profile": "constant", "level": 0.8})


def start(*, grid_live: bool = True, pv_rated_w: float = 0.0, soc: float = 0.7) -> Start:
    return Start(24, 0, 0.75, 0.0, soc, CONSTANT, pv_rated_w, grid_live)


def fault(at_s: float, channel: int, kind: str, call: str = "battery.insert_fault") -> Step:
    return Step(at_s, call, MappingProxyType({"channel": channel, "kind": kind}))


def by_name(draft: Draft, now_s: float) -> dict[str, dict[str, object]]:
    return {c.name: dict(c.limits) for c in invariants_for(draft, now_s)}


def test_an_example_is_judged_by_every_standard_invariant_from_its_start():
    judged = by_name(Draft(start()), 5.0)
    assert {c.name for c in INVARIANTS} <= set(judged)
    assert all("window" not in judged[c.name] for c in INVARIANTS)


def test_smoothing_is_judged_on_the_grid_from_10_s_until_the_first_step_that_may_jar_the_grid():
    quiet = Draft(start(), [Step(12.0, "controller.set_dispatch", MappingProxyType({"w": 1e4}))])
    assert by_name(quiet, 30.0)["grid_ramp"]["window"] == [10.0, 30.0]
    assert "grid_ramp" not in by_name(quiet, 10.2), "not before half a second of it"
    tripped = Draft(start(), [Step(25.0, "relays.on", MappingProxyType({"relay": 2}))])
    assert by_name(tripped, 60.0)["grid_ramp"]["window"] == [10.0, 25.0]
    clouded = Draft(start(pv_rated_w=1e6), clouds=[Cloud(18.0, 0.5, 10.0)])
    assert by_name(clouded, 60.0)["grid_ramp"]["window"] == [10.0, 18.0]
    assert "grid_ramp" not in by_name(Draft(start(grid_live=False)), 60.0), "not in an island"


def swinging(soc: float = 0.7, *, grid_live: bool = True) -> Start:
    swings = {"profile": "training_swings", "period_s": 1.0, "duty": 0.5, "low": 0.2, "high": 0.9}
    return replace(start(grid_live=grid_live, soc=soc), load=MappingProxyType(swings))


def test_swing_energy_is_judged_on_the_grid_for_swinging_charged_racks_until_a_dispatch_or_jar():
    quiet = Draft(swinging())
    assert by_name(quiet, 30.0)["grid_band_energy"]["window"] == [10.0, 30.0]
    assert "grid_band_energy" not in by_name(quiet, 19.9), "the band's bottom needs 10 s"
    dispatched = Draft(swinging(), [Step(25.0, "controller.set_dispatch", MappingProxyType({"w": 1e4}))])
    assert by_name(dispatched, 60.0)["grid_band_energy"]["window"] == [10.0, 25.0]
    assert by_name(dispatched, 60.0)["grid_ramp"]["window"] == [10.0, 60.0], "a dispatch keeps the ramp"
    for other in (start(), swinging(soc=0.1505), swinging(grid_live=False)):
        assert "grid_band_energy" not in by_name(Draft(other), 60.0)


def windows(draft: Draft, now_s: float, name: str) -> list[object]:
    return [c.limits["window"] for c in invariants_for(draft, now_s) if c.name == name]


def test_sharing_is_judged_over_every_sure_island_without_pv_between_pack_and_grid_steps():
    island = Draft(start(grid_live=False), [Step(9.0, "relays.on", MappingProxyType({"relay": 1}))])
    assert windows(island, 40.0, "sharing_balance") == [[5.0, 40.0]], "a PCS trip keeps it"
    island.steps.append(fault(22.0, 3, "open"))
    assert windows(island, 40.0, "sharing_balance") == [[5.0, 22.0], [27.0, 40.0]], "again after a fault"
    island.steps.append(Step(45.0, "grid.output", MappingProxyType({"on": True})))
    assert windows(island, 80.0, "sharing_balance") == [[5.0, 22.0], [27.0, 45.0]], "until the grid is back"
    assert windows(Draft(start(grid_live=False)), 14.0, "sharing_balance") == [], "not before 10 s of it"
    lost = Draft(start(), [Step(20.0, "relays.on", MappingProxyType({"relay": draws.GRID_BREAKER_RELAY}))])
    lost.steps.append(Step(50.0, "relays.off", MappingProxyType({"relay": draws.GRID_BREAKER_RELAY})))
    assert windows(lost, 80.0, "sharing_balance") == [[25.0, 50.0]], "a grid loss islands the plant"
    aged = replace(start(grid_live=False), aged_years=5.0)
    for other in (start(), start(grid_live=False, pv_rated_w=1e6), start(grid_live=False, soc=0.151), aged):
        assert windows(Draft(other), 40.0, "sharing_balance") == []


def test_the_soc_bounds_end_at_the_first_soc_drift():
    """A drift moves the fleet SOC the controller reports, which the islanded reserve is judged on."""
    drifted = Draft(start(), [fault(8.0, 4, "isolation"), fault(20.0, 2, "drift"), fault(30.0, 5, "drift")])
    assert by_name(drifted, 60.0)["soc_bounds"]["window"] == [0.0, 20.0]
    assert "window" not in by_name(Draft(start(), [fault(8.0, 4, "isolation")]), 60.0)["soc_bounds"]


def test_the_pack_contract_ends_when_a_welded_pack_latches_a_fault():
    draft = Draft(start(), [fault(5.0, 3, "weld"), fault(8.0, 4, "isolation"), fault(15.0, 3, "thermal")])
    assert welded_fault_s(draft) == 15.0
    judged = by_name(draft, 30.0)
    assert judged["fault_isolation"]["window"] == [0.0, 15.0]
    assert judged["isolation_current"]["window"] == [0.0, 15.0]
    assert "window" not in judged["load_served"]
    opened = Draft(start(), [fault(5.0, 3, "weld"), fault(6.0, 3, "open"), fault(7.0, 3, "isolation")])
    cleared = Draft(start(), [fault(5.0, 3, "weld"), fault(6.0, 3, "weld", "battery.clear_fault")])
    cleared.steps.append(fault(7.0, 3, "isolation"))
    assert welded_fault_s(opened) is None and welded_fault_s(cleared) is None


def test_a_silent_bms_is_judged_once_a_link_is_cut_until_a_welded_pack_loses_its_link():
    assert "silent_bms" not in by_name(Draft(start(), [fault(5.0, 3, "isolation")]), 30.0)
    draft = Draft(start(), [fault(5.0, 3, "comms"), fault(6.0, 3, "comms", "battery.clear_fault")])
    assert by_name(draft, 30.0)["silent_bms"] == dict(SILENT_BMS.limits), "the whole example, once cut"
    draft.steps += [fault(8.0, 4, "weld"), fault(9.0, 5, "comms"), fault(12.0, 4, "comms")]
    assert by_name(draft, 30.0)["silent_bms"] == {**SILENT_BMS.limits, "window": [0.0, 12.0]}
    assert "window" not in by_name(draft, 30.0)["fault_isolation"], "a silent weld latches nothing"
    assert welded_with_s(draft, ("comms",)) == 12.0 and welded_fault_s(draft) is None


def test_a_failure_hypothesis_could_not_replay_is_still_found_in_its_report():
    broken = InvariantBroken(Draft(start()), 2.0, INVARIANTS, {"resync": Verdict.at_most("resync", 2, 1, "")})
    flaky = FlakyFailure("inconsistent results", [ValueError("other"), broken])
    assert _first_broken(flaky) is broken
    assert _first_broken(FlakyFailure("inconsistent results", [ValueError("other")])) is None


def test_a_bench_error_hypothesis_could_not_replay_surfaces_as_itself():
    """An instrument that failed once and answered on the replay: the campaign ends with its error."""
    unavailable = ConnectionError("controller: cannot connect to 127.0.0.1:5020")
    flaky = FlakyFailure("inconsistent results", [FlakyStrategyDefinition("data drawn differs"), unavailable])
    assert _bench_error(flaky) is unavailable
    only_hypothesis = FlakyFailure("inconsistent", [FlakyStrategyDefinition("only this")])
    assert _bench_error(only_hypothesis) is only_hypothesis
