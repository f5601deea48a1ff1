"""The action catalogue: read from the role drivers by introspection, checking step arguments."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.chroma_17040 import FaultKind
from drivers.chroma_61800 import ListStep
from drivers.chroma_63200 import LoadStep
from drivers.registry import driver_class
from harness.actions import (
    STANDARD_DRIVERS,
    ArgumentError,
    ScalarType,
    UnknownAction,
    catalogue_for,
    standard_catalogue,
)

CATALOGUE = standard_catalogue()
INFRASTRUCTURE = ("open", "close", "safe", "identity", "check", "ceiling", "check_resource")


def test_catalogue_offers_the_driver_commands_each_role_needs():
    for call in (
        "grid.outage",
        "grid.restore",
        "grid.play",
        "battery.insert_fault",
        "battery.clear_fault",
        "load.program",
        "load.constant_power",
        "relays.on",
        "controller.planned_island",
        "controller.set_dispatch",
    ):
        assert CATALOGUE.lookup(call).call == call
    assert CATALOGUE.roles() == sorted(STANDARD_DRIVERS)
    assert dict(CATALOGUE.skipped) == {}


def test_catalogue_leaves_out_driver_infrastructure_and_queries():
    methods = {call.partition(".")[2] for call in CATALOGUE.actions}
    assert not methods & set(INFRASTRUCTURE)
    for query in ("grid.measure", "battery.state", "controller.status", "relays.read", "relays.read_all"):
        assert query not in CATALOGUE.actions


def test_every_action_mirrors_its_method_signature():
    for action in CATALOGUE.actions.values():
        cls = driver_class(STANDARD_DRIVERS[action.role])
        signature = inspect.signature(getattr(cls, action.method))
        expected = [name for name in signature.parameters if name != "self"]
        assert [parameter.name for parameter in action.parameters] == expected, action.call
        for parameter in action.parameters:
            declared = signature.parameters[parameter.name]
            has_default = declared.default is not inspect.Parameter.empty
            assert parameter.required == (not has_default and not parameter.optional), action.call


@pytest.mark.parametrize(
    ("call", "args", "key", "problem"),
    [
        ("grid.set_frequency", {}, "args.hz", "missing"),
        ("grid.set_frequency", {"hz": 60.0, "volts": 1.0}, "args.volts", "unknown argument; it takes: hz"),
        ("grid.set_frequency", {"hz": "60"}, "args.hz", "must be a number, not a string"),
        ("grid.set_frequency", {"hz": True}, "args.hz", "must be a number, not a boolean"),
        ("grid.set_frequency", {"hz": float("nan")}, "args.hz", "finite"),
        ("relays.on", {"relay": 1.0}, "args.relay", "must be an integer, not a float"),
        ("grid.output", {"on": 1}, "args.on", "must be a boolean, not an integer"),
        ("battery.insert_fault", {"channel": 1, "kind": "melt"}, "args.kind", "one of 'ISOLATION'"),
        ("grid.play", {"steps": {}}, "args.steps", "must be an array"),
        ("grid.play", {"steps": [{"dwell_s": 1.0}]}, "args.steps[0].voltage_start_v", "missing"),
        ("load.program", {"steps": [{"power_w": 1, "dwell_s": 1}, 3]}, "args.steps[1]", "a table with"),
        (
            "load.program",
            {"steps": [{"power_w": 1, "dwell_s": 1, "ramp_s": 1}]},
            "args.steps[0].ramp_s",
            "unknown argument",
        ),
    ],
)
def test_arguments_that_do_not_fit_name_the_argument(call, args, key, problem):
    with pytest.raises(ArgumentError) as caught:
        CATALOGUE.lookup(call).check(args)
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_check_normalises_ints_to_floats_and_enums_to_their_value():
    assert CATALOGUE.lookup("grid.set_voltage").check({"v_ln": 230}) == {"v_ln": 230.0}
    assert type(CATALOGUE.lookup("grid.set_voltage").check({"v_ln": 230})["v_ln"]) is float
    checked = CATALOGUE.lookup("battery.insert_fault").check({"channel": 2, "kind": "thermal", "value": 50})
    assert checked == {"channel": 2, "kind": "THERMAL", "value": 50.0}


def test_bind_builds_the_values_the_driver_takes():
    play = CATALOGUE.lookup("grid.play").bind(
        {
            "steps": [
                {
                    "dwell_s": 1,
                    "voltage_start_v": 230,
                    "voltage_end_v": 0,
                    "frequency_start_hz": 60,
                    "frequency_end_hz": 60,
                }
            ]
        }
    )
    assert play == {"steps": (ListStep(1.0, 230.0, 0.0, 60.0, 60.0),)}
    fault = CATALOGUE.lookup("battery.insert_fault").bind({"channel": 1, "kind": "WELD"})
    assert fault == {"channel": 1, "kind": FaultKind.WELD, "value": None}
    program = CATALOGUE.lookup("load.program").bind({"steps": [{"power_w": 5e5, "dwell_s": 2}]})
    assert program == {"steps": (LoadStep(5e5, 2.0),)}


def test_a_left_out_optional_parameter_without_default_is_passed_as_none():
    assert CATALOGUE.lookup("load.power_limit").bind({}) == {"w": None}
    assert CATALOGUE.lookup("load.power_limit").bind({"w": 1e6}) == {"w": 1e6}


def test_invoke_calls_the_method_on_the_driver_with_bound_arguments():
    calls = []

    class Recorder:
        def insert_fault(self, channel: int, kind: FaultKind, value: float | None = None) -> None:
            calls.append((channel, kind, value))

    CATALOGUE.lookup("battery.insert_fault").invoke(Recorder(), {"channel": 4, "kind": "drift", "value": -3})
    assert calls == [(4, FaultKind.DRIFT, -3.0)]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ("outage", "is not role.method"),
        ("grid.", "is not role.method"),
        ("packs.fault", "unknown role 'packs'"),
        ("grid.explode", "role grid has no action 'explode'; it has: outage, output, play"),
        ("grid.measure", "role grid has no action 'measure'"),
        ("grid.safe", "role grid has no action 'safe'"),
    ],
)
def test_unknown_calls_say_what_there_is(call, problem):
    with pytest.raises(UnknownAction) as caught:
        CATALOGUE.lookup(call)
    assert caught.value.key == "call"
    assert problem in caught.value.problem


class Mood(Enum):
    CALM = "calm"


@dataclass(frozen=True)
class Point:
    t_s: float
    level: float = 1.0


class FakeBase:
    def open(self) -> None: ...

    def close(self) -> None: ...


class FakeDriver(FakeBase):
    def set_mood(self, mood: Mood, points: Sequence[Point] = (), pair: tuple[int, float] = (0, 0.0)) -> None:
        """Set the mood."""

    def read_mood(self) -> Mood:
        return Mood.CALM

    def callback(self, handler: typing.Callable[[], None]) -> None: ...

    def either(self, value: int | str) -> None: ...

    def spread(self, *values: int) -> None: ...

    @property
    def mood(self) -> Mood:
        return Mood.CALM


class FakeVariant(FakeDriver):
    def extra(self, n: int) -> None: ...


def test_catalogue_from_any_driver_classes_skips_what_toml_cannot_express():
    catalogue = catalogue_for({"fake": FakeDriver, "variant": FakeVariant})
    assert sorted(catalogue.actions) == ["fake.set_mood", "variant.extra", "variant.set_mood"]
    assert catalogue.lookup("fake.set_mood").summary == "Set the mood."
    assert set(catalogue.skipped) == {
        f"{role}.{name}" for role in ("fake", "variant") for name in ("callback", "either", "spread")
    }
    assert "only X | None" in catalogue.skipped["fake.either"]
    with pytest.raises(UnknownAction, match="not callable from a sequence"):
        catalogue.lookup("fake.callback")
    bound = catalogue.lookup("fake.set_mood").bind({"mood": "CALM", "points": [{"t_s": 1}], "pair": [2, 3]})
    assert bound == {"mood": Mood.CALM, "points": (Point(1.0, 1.0),), "pair": (2, 3.0)}
    with pytest.raises(ArgumentError) as caught:
        catalogue.lookup("fake.set_mood").check({"mood": "calm", "pair": [1, 2, 3]})
    assert caught.value.key == "args.pair"


SCALAR_VALUES = {
    bool: st.booleans(),
    int: st.integers(-(2**31), 2**31),
    float: st.floats(allow_nan=False, allow_infinity=False),
    str: st.text(max_size=5),
}
SCALAR_ACTIONS = [
    action
    for action in CATALOGUE.actions.values()
    if action.parameters and all(isinstance(p.type, ScalarType) for p in action.parameters)
]


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_scalar_arguments_of_the_declared_type_pass_and_others_fail(data):
    action = data.draw(st.sampled_from(SCALAR_ACTIONS))
    args = {p.name: data.draw(SCALAR_VALUES[p.type.kind]) for p in action.parameters}
    assert action.check(args).keys() == args.keys()
    victim = data.draw(st.sampled_from(action.parameters))
    accepted = {victim.type.kind, int} if victim.type.kind is float else {victim.type.kind}
    wrong_kinds = [kind for kind in (bool, int, float, str) if kind not in accepted]
    wrong = data.draw(st.sampled_from(wrong_kinds).flatmap(SCALAR_VALUES.__getitem__))
    with pytest.raises(ArgumentError) as caught:
        action.check({**args, victim.name: wrong})
    assert caught.value.key == f"args.{victim.name}"


def test_the_documented_catalogue_is_the_catalogue():
    text = (Path(__file__).resolve().parents[2] / "docs" / "sequences.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", text, flags=re.M))
    assert documented == set(CATALOGUE.actions)
