"""``[initial.pv] clouds``: passing clouds over the PV plant, checked like the rest of a sequence file and
applied to the simulated plant by ``harness.run.plant_for``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.run import plant_for
from harness.sequence import Cloud, SequenceError, parse_sequence_text

DURATION_S = 60.0


def text_with_pv(pv: str) -> str:
    return f"""
id = "clouds"
title = "Clouds over the PV plant"
duration_s = {DURATION_S}

[initial]
pv = {pv}

[[criteria]]
name = "load_served"
"""


def test_clouds_read_as_records_in_file_order_with_the_plant_default_ramp():
    sequence = parse_sequence_text(
        text_with_pv(
            "{ rated_w = 12.0e6, clouds = ["
            "{ at_s = 10, depth = 0.8, duration_s = 20.0, ramp_s = 2.0 }, "
            "{ at_s = 5.0, depth = 0.3, duration_s = 4.0 }] }"
        )
    )
    assert sequence.initial.pv.clouds == (
        Cloud(at_s=10.0, depth=0.8, duration_s=20.0, ramp_s=2.0),
        Cloud(at_s=5.0, depth=0.3, duration_s=4.0, ramp_s=5.0),
    )
    assert parse_sequence_text(sequence.to_toml()) == sequence


def test_no_clouds_is_a_clear_sky():
    assert parse_sequence_text(text_with_pv("{ rated_w = 1.0e6 }")).initial.pv.clouds == ()


@pytest.mark.parametrize(
    ("clouds", "key", "problem"),
    [
        ("[{ at_s = 1.0, depth = 1.5, duration_s = 5.0 }]", "clouds[0].depth", "must be within [0.0, 1.0]"),
        (
            "[{ at_s = 1.0, depth = 0.5, duration_s = 5.0 }, { at_s = 2.0, depth = 0.5 }]",
            "clouds[1].duration_s",
            "missing",
        ),
        (
            "[{ at_s = 1.0, depth = 0.5, duration_s = 0.0 }]",
            "clouds[0].duration_s",
            "must be within (0.0, inf]",
        ),
        ("[{ at_s = 1.0, depth = 0.5, duration_s = 5.0, ramp_s = -1.0 }]", "clouds[0].ramp_s", "within [0.0"),
        ("[{ at_s = -1.0, depth = 0.5, duration_s = 5.0 }]", "clouds[0].at_s", "must be within [0.0, 60.0]"),
        ("[{ at_s = 60.0, depth = 0.5, duration_s = 5.0 }]", "clouds[0].at_s", "before the end"),
        ('[{ at_s = 1.0, depth = "deep", duration_s = 5.0 }]', "clouds[0].depth", "must be a number"),
        ("[{ at_s = 1.0, depth = 0.5, duration_s = 5.0, speed = 3 }]", "clouds[0].speed", "unknown argument"),
        ("{ at_s = 1.0, depth = 0.5, duration_s = 5.0 }", "clouds", "must be an array"),
    ],
)
def test_a_bad_cloud_is_an_error_naming_the_table_and_the_key(clouds, key, problem):
    with pytest.raises(SequenceError) as caught:
        parse_sequence_text(text_with_pv(f"{{ rated_w = 1.0e6, clouds = {clouds} }}"), "lab/sun.toml")
    error = caught.value
    assert (error.source, error.where, error.key) == ("lab/sun.toml", "[initial.pv]", key)
    assert problem in error.problem
    assert str(error).startswith(f"lab/sun.toml: [initial.pv]: {key}: ")


def test_clouds_without_pv_are_refused():
    with pytest.raises(SequenceError) as caught:
        parse_sequence_text(text_with_pv("{ clouds = [{ at_s = 1.0, depth = 0.5, duration_s = 5.0 }] }"))
    assert (caught.value.where, caught.value.key) == ("[initial.pv]", "clouds")
    assert "no PV" in caught.value.problem


clouds = st.lists(
    st.builds(
        Cloud,
        at_s=st.floats(0.0, DURATION_S, exclude_max=True),
        depth=st.floats(0.0, 1.0),
        duration_s=st.floats(1e-3, 1e4),
        ramp_s=st.floats(0.0, 100.0),
    ),
    max_size=4,
)


def cloud_table(cloud: Cloud) -> str:
    return (
        f"{{ at_s = {cloud.at_s!r}, depth = {cloud.depth!r}, duration_s = {cloud.duration_s!r}, "
        f"ramp_s = {cloud.ramp_s!r} }}"
    )


@settings(max_examples=100, deadline=None)
@given(clouds=clouds)
def test_any_valid_clouds_read_back_as_written_and_round_trip(clouds):
    tables = ", ".join(cloud_table(cloud) for cloud in clouds)
    sequence = parse_sequence_text(text_with_pv(f"{{ rated_w = 5.0e6, clouds = [{tables}] }}"))
    assert sequence.initial.pv.clouds == tuple(clouds)
    assert parse_sequence_text(sequence.to_toml()) == sequence


def test_the_simulated_plant_is_shaded_by_the_sequences_clouds():
    sequence = parse_sequence_text(
        text_with_pv(
            "{ rated_w = 12.0e6, clouds = [{ at_s = 10.0, depth = 0.8, duration_s = 20.0, ramp_s = 4.0 }] }"
        )
    )
    shaded = plant_for(sequence, seed=0, packs=8).pv
    clear = plant_for(parse_sequence_text(text_with_pv("{ rated_w = 12.0e6 }")), seed=0, packs=8).pv
    assert shaded.rated_ac_w == pytest.approx(12.0e6 * 8 / 805), "the PV rating scales with the fleet"
    assert clear.output_w(0.0) > 0.5 * clear.rated_ac_w, "the plant's clock starts in daylight"
    for t_s in (5.0, 9.9, 35.0):
        assert shaded.irradiance_w_m2(t_s) == pytest.approx(clear.irradiance_w_m2(t_s))
    assert shaded.irradiance_w_m2(12.0) == pytest.approx(0.6 * clear.irradiance_w_m2(12.0))
    assert shaded.irradiance_w_m2(20.0) == pytest.approx(0.2 * clear.irradiance_w_m2(20.0))
    assert shaded.output_w(20.0) < 0.3 * clear.output_w(20.0)
