"""The Python builder makes the same sequences as files, through the same validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sequence import CRITERIA_NAMES, SequenceError, parse_sequence_text
from harness.sequence_builder import SequenceBuilder

ISLANDING_TEXT = """
id = "islanding-full-load"
title = "Unplanned islanding at full rack load"
references = ["IEEE 2030.8 unplanned islanding"]
duration_s = 60
[initial]
fleet = { packs = 805 }
soc = 0.8
load = { profile = "constant", level = 1.0 }
pv = { rated_w = 0 }
grid = { voltage_pu = 1, frequency_hz = 60 }
[[steps]]
at_s = 10
call = "grid.outage"
[[steps]]
at_s = 40
call = "grid.restore"
[[criteria]]
name = "itic"
[[criteria]]
name = "load_served"
limits = { max_unserved_j = 0 }
"""


def islanding():
    return (
        SequenceBuilder("islanding-full-load")
        .title("Unplanned islanding at full rack load")
        .reference("IEEE 2030.8 unplanned islanding")
        .initial(packs=805, soc=0.8, load={"profile": "constant", "level": 1.0}, pv={"rated_w": 0})
        .initial(grid={"voltage_pu": 1, "frequency_hz": 60})
        .at(10.0)
        .call("grid", "outage")
        .at(40.0)
        .call("grid", "restore")
        .duration(60.0)
        .criterion("itic")
        .criterion("load_served", max_unserved_j=0)
    )


def test_builder_makes_the_object_the_file_reads_as():
    built = islanding().build()
    assert built == parse_sequence_text(ISLANDING_TEXT)
    assert built.source == "<builder islanding-full-load>"
    assert parse_sequence_text(built.to_toml()) == built


def test_initial_calls_add_up_and_leave_the_rest_at_defaults():
    sequence = islanding().initial(seed=3).initial(aged_years=4).build()
    fleet = sequence.initial.fleet
    assert (fleet.packs, fleet.seed, fleet.aged_years, fleet.soh_mean) == (805, 3, 4.0, 0.75)


def test_steps_at_one_time_keep_call_order():
    sequence = islanding().at(50.0).call("relays", "on", relay=2).call("relays", "off", relay=2).build()
    assert [(step.at_s, step.call, dict(step.args)) for step in sequence.steps[2:]] == [
        (50.0, "relays.on", {"relay": 2}),
        (50.0, "relays.off", {"relay": 2}),
    ]


def test_a_call_without_a_time_is_refused_at_once():
    with pytest.raises(ValueError, match=r"before at\(\)"):
        SequenceBuilder("x").call("grid", "outage")


@pytest.mark.parametrize(
    ("change", "where", "key"),
    [
        (lambda b: b.at(50.0).call("grid", "set_frequency", hz="sixty"), "step 3 (at 50.0 s)", "args.hz"),
        (lambda b: b.at(5.0).call("grid", "outage"), "step 3 (at 5.0 s)", "at_s"),
        (lambda b: b.at(61.0).call("grid", "outage"), "step 3 (at 61.0 s)", "at_s"),
        (lambda b: b.at(50.0).call("pump", "on"), "step 3 (at 50.0 s)", "call"),
        (lambda b: b.criterion("vibes"), "criterion 3 (vibes)", "name"),
        (lambda b: b.initial(packs=0), "[initial.fleet]", "packs"),
        (lambda b: b.initial(load={"profile": "constant", "level": 2.0}), "[initial.load]", "level"),
    ],
)
def test_builder_mistakes_are_sequence_errors_like_a_files(change, where, key):
    with pytest.raises(SequenceError) as caught:
        change(islanding()).build()
    assert (caught.value.source, caught.value.where, caught.value.key) == (
        "<builder islanding-full-load>",
        where,
        key,
    )


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
share = st.floats(min_value=0.0, max_value=1.0)
list_step = st.fixed_dictionaries(
    {
        "dwell_s": positive,
        "voltage_start_v": positive,
        "voltage_end_v": positive,
        "frequency_start_hz": positive,
        "frequency_end_hz": positive,
    }
)
CALLS = {
    ("grid", "outage"): st.just({}),
    ("grid", "restore"): st.just({}),
    ("grid", "set_frequency"): st.fixed_dictionaries({"hz": finite | st.integers(0, 1000)}),
    ("grid", "play"): st.fixed_dictionaries(
        {"steps": st.lists(list_step, max_size=3)}, optional={"count": st.integers(1, 100)}
    ),
    ("battery", "insert_fault"): st.fixed_dictionaries(
        {"channel": st.integers(1, 800), "kind": st.sampled_from(["isolation", "THERMAL", "Drift"])},
        optional={"value": finite},
    ),
    ("load", "program"): st.fixed_dictionaries(
        {"steps": st.lists(st.fixed_dictionaries({"power_w": finite, "dwell_s": positive}), max_size=3)}
    ),
    ("load", "power_limit"): st.fixed_dictionaries({}, optional={"w": finite}),
    ("relays", "write_all"): st.fixed_dictionaries({"bitmap": st.integers(0, 2**32)}),
    ("controller", "set_reserve_soc"): st.fixed_dictionaries({"fraction": share}),
}
limit_value = st.one_of(
    finite, st.integers(-(10**9), 10**9), st.text(max_size=8), st.booleans(), st.lists(finite)
)
loads = st.one_of(
    st.builds(lambda level: {"profile": "constant", "level": level}, share),
    st.builds(
        lambda low, high, seed: {"profile": "training_swings", "low": low, "high": high, "seed": seed},
        st.floats(0.0, 0.5),
        st.floats(0.5, 1.0),
        st.integers(0, 100),
    ),
    st.builds(
        lambda times, level: {"profile": "steps", "points": [[t, level] for t in times]},
        st.lists(st.floats(0.0, 1e4), min_size=1, max_size=4, unique=True).map(sorted),
        share,
    ),
)


@st.composite
def builders(draw):
    builder = SequenceBuilder(draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)))
    builder.title(draw(st.text(min_size=1, max_size=30).filter(str.strip)))
    for reference in draw(st.lists(st.text(min_size=1, max_size=20).filter(str.strip), max_size=3)):
        builder.reference(reference)
    duration_s = draw(st.floats(min_value=1.0, max_value=1e5))
    builder.duration(duration_s)
    builder.initial(
        packs=draw(st.integers(1, 2000)),
        seed=draw(st.integers(0, 2**32)),
        soh_mean=draw(st.floats(0.5, 1.0)),
        aged_years=draw(st.floats(0.0, 20.0)),
        soc=draw(share),
        load=draw(loads),
        pv={"rated_w": draw(st.floats(0.0, 1e8))},
        grid={"voltage_pu": draw(st.floats(0.0, 2.0)), "frequency_hz": draw(st.floats(40.0, 70.0))},
    )
    times = sorted(draw(st.lists(st.floats(0.0, duration_s, exclude_max=True), max_size=6)))
    for at_s in times:
        role, method = draw(st.sampled_from(sorted(CALLS)))
        builder.at(at_s).call(role, method, **draw(CALLS[role, method]))
    for _ in range(draw(st.integers(1, 3))):
        limits = draw(
            st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), limit_value, max_size=3)
        )
        builder.criterion(draw(st.sampled_from(CRITERIA_NAMES)), **limits)
    return builder


@settings(max_examples=120, deadline=None)
@given(builder=builders())
def test_round_trip_builder_to_toml_to_parse_is_the_same_sequence(builder):
    built = builder.build()
    text = built.to_toml()
    parsed = parse_sequence_text(text, "round-trip.toml")
    assert parsed == built
    assert parsed.to_toml() == text
