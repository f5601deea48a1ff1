"""Each broken variant differs from the reference in exactly its bug: same inputs, one difference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
import pytest

from harness.controller.model import Actions, BreakerCommand, ControllerStatus, PcsControl
from harness.controller.reference import ControllerConfig, ReferenceController
from harness.controller.variants import VARIANTS, build_controller, variant_names
from tests.controller.test_reference import GRID_BACK, ISLANDED, Loop, pack_view, plant_view

Outputs = list[tuple[Actions, ControllerStatus]]
CONFIG = ControllerConfig(grid_stable_s=1.0)


def differing_fields(left: Outputs, right: Outputs) -> set[str]:
    """Names of the Actions / ControllerStatus fields that differ in any cycle."""
    differ = set()
    for (actions_l, status_l), (actions_r, status_r) in zip(left, right, strict=True):
        for record_l, record_r in ((actions_l, actions_r), (status_l, status_r)):
            for field in fields(record_l):
                a, b = getattr(record_l, field.name), getattr(record_r, field.name)
                arrays = isinstance(a, np.ndarray) or isinstance(b, np.ndarray)
                if not (np.array_equal(a, b) if arrays else a == b):
                    differ.add(field.name)
    return differ


def grid_connected(run: Loop) -> Outputs:
    return run.run(plant_view(), 0.3)


def heterogeneous(run: Loop) -> Outputs:
    return run.run(plant_view(pack_view(soh=[0.9, 0.6, 0.8, 0.7], soc=[0.7, 0.5, 0.6, 0.4])), 0.3)


def one_pack_faults(run: Loop) -> Outputs:
    return run.run(plant_view(pack_view(fault_bits=[0, 16, 0, 0], contactor_closed=[1, 1, 1, 1])), 0.3)


def grid_returns_to_an_island(run: Loop) -> Outputs:
    return run.run(plant_view(**GRID_BACK), 1.5)


def one_bms_goes_silent(run: Loop) -> Outputs:
    run.frozen = np.array([False, True, False, False])
    return run.run(plant_view(), 2.5)


def discharge_asked_at_the_reserve(run: Loop) -> Outputs:
    run.commands.dispatch_w = 300e3
    run.commands.reserve_soc = 0.2
    return run.run(plant_view(fleet_soc=0.19), 0.3)


def islanded_fleet_falls_short(run: Loop) -> Outputs:
    return run.run(plant_view(**ISLANDED, bus_voltage_pu=0.9), 0.3)


CASES: dict[str, tuple[Callable[[Loop], Outputs], set[str]]] = {
    "never-island": (grid_connected, {"auto_island_enabled", "islanding_enabled"}),
    "no-smoothing": (grid_connected, {"control"}),
    "equal-sharing": (heterogeneous, {"pack_power_w"}),
    "ignores-pack-faults": (
        one_pack_faults,
        {"pack_contactors", "alarms", "packs_online", "packs_isolated", "available_energy_wh"},
    ),
    "no-sync-check": (grid_returns_to_an_island, {"breaker"}),
    "trusts-stale-bms": (
        one_bms_goes_silent,
        {"pack_power_w", "pack_contactors", "alarms", "packs_online", "packs_isolated",
         "available_energy_wh"},
    ),
    "no-reserve": (discharge_asked_at_the_reserve, {"dispatch_w", "alarms"}),
    "no-power-cap": (islanded_fleet_falls_short, {"power_cap_w", "alarms"}),
}
"""Per variant: a scenario that shows its bug, and every output field its bug changes there."""


def outputs(name: str | None, scenario: Callable[[Loop], Outputs]) -> Outputs:
    return scenario(Loop(build_controller(name, CONFIG)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_variant_differs_from_the_reference_only_where_its_bug_acts(name):
    scenario, expected = CASES[name]
    assert differing_fields(outputs(None, scenario), outputs(name, scenario)) == expected


def stopped(run: Loop) -> Outputs:
    run.commands.enabled = False
    return run.run(plant_view(), 0.3)


SCENARIOS = [
    grid_connected, heterogeneous, one_pack_faults, grid_returns_to_an_island, one_bms_goes_silent,
    discharge_asked_at_the_reserve, islanded_fleet_falls_short, stopped,
]
GRID_CONNECTED_SCENARIOS = {
    grid_connected, heterogeneous, one_pack_faults, one_bms_goes_silent, discharge_asked_at_the_reserve
}
ACTS_IN: dict[str, set[Callable[[Loop], Outputs]]] = {
    "never-island": set(SCENARIOS) - {stopped},
    "no-smoothing": GRID_CONNECTED_SCENARIOS,
    **{
        name: {scenario}
        for name, (scenario, _) in CASES.items()
        if name not in {"never-island", "no-smoothing"}
    },
}
"""The scenarios in which each variant's bug acts; in every other one it must be the reference."""
QUIET = [
    pytest.param(name, scenario, id=f"{name}-{scenario.__name__}")
    for name in sorted(CASES)
    for scenario in SCENARIOS
    if scenario not in ACTS_IN[name]
]


@pytest.mark.parametrize(("name", "scenario"), QUIET)
def test_a_variant_is_the_reference_where_its_bug_does_not_act(name, scenario):
    assert differing_fields(outputs(None, scenario), outputs(name, scenario)) == set()


def test_the_bugs_act_the_way_their_names_say():
    never, _ = outputs("never-island", grid_connected)[-1]
    assert never.islanding_enabled is False and never.auto_island_enabled is False
    assert outputs("no-smoothing", grid_connected)[-1][0].control is PcsControl.POWER
    assert outputs("no-sync-check", grid_returns_to_an_island)[-1][0].breaker is (
        BreakerCommand.CLOSE_BYPASSING_SYNC_CHECK
    )
    assert outputs("ignores-pack-faults", one_pack_faults)[-1][0].pack_contactors.all()
    stale_power = outputs("trusts-stale-bms", one_bms_goes_silent)[-1][0].pack_power_w
    assert stale_power[1] > 0
    assert outputs("no-reserve", discharge_asked_at_the_reserve)[-1][0].dispatch_w == 300e3
    assert outputs("no-power-cap", islanded_fleet_falls_short)[-1][1].power_cap_w is None
    equal = outputs("equal-sharing", heterogeneous)[-1][0].pack_power_w
    assert np.all(equal == equal[0]) and equal[0] > 0


def test_the_registry_names_at_least_the_six_core_variants_each_its_own_class():
    core = {"never-island", "ignores-pack-faults", "equal-sharing", "no-sync-check", "no-smoothing",
            "trusts-stale-bms"}
    assert core <= set(variant_names())
    assert variant_names() == sorted(VARIANTS)
    assert set(CASES) == set(VARIANTS), "every variant has its scenario here"
    classes = [type(build_controller(name, CONFIG)) for name in variant_names()]
    assert len(set(classes)) == len(classes)
    assert all(issubclass(cls, ReferenceController) and cls is not ReferenceController for cls in classes)


@pytest.mark.parametrize("name", [None, "reference"])
def test_none_or_reference_builds_the_reference(name):
    controller = build_controller(name, CONFIG)
    assert type(controller) is ReferenceController and controller.config is CONFIG


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="no-such-bug") as error:
        build_controller("no-such-bug", CONFIG)
    assert all(name in str(error.value) for name in ["reference", *variant_names()])
