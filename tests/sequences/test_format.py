"""The sequence file format: the library and the documented example validate, every mistake is one
SequenceError naming the file, the step or table and the key, and no input crashes the reader."""

from __future__ import annotations

import copy
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sequence import (
    CRITERIA_NAMES,
    STRING_SOURCE,
    Criterion,
    SequenceError,
    Step,
    dump_toml,
    load_library,
    load_sequence,
    parse_sequence_text,
)
from harness.sim.load import CheckpointDips, Steps, TrainingSwings

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "harness" / "sequences" / "library"
DOC = ROOT / "docs" / "sequences.md"

BASE = {
    "id": "fuzz-base",
    "title": "Base document for mutations",
    "references": ["IEEE 2030.8 (T1)", "ITIC"],
    "duration_s": 60.0,
    "initial": {
        "fleet": {"packs": 10, "seed": 1, "soh_mean": 0.8, "aged_years": 2.0},
        "soc": 0.5,
        "load": {"profile": "training_swings", "period_s": 2.0, "low": 0.2},
        "pv": {"rated_w": 1e6},
        "grid": {"voltage_pu": 1.0, "frequency_hz": 60.0},
    },
    "steps": [
        {"at_s": 5.0, "call": "battery.insert_fault", "args": {"channel": 2, "kind": "ISOLATION"}},
        {
            "at_s": 10.0,
            "call": "grid.play",
            "args": {
                "steps": [
                    {
                        "dwell_s": 0.5,
                        "voltage_start_v": 100.0,
                        "voltage_end_v": 100.0,
                        "frequency_start_hz": 60.0,
                        "frequency_end_hz": 60.0,
                    }
                ],
                "count": 2,
            },
        },
        {"at_s": 30.0, "call": "grid.outage", "args": {}},
    ],
    "criteria": [
        {"name": "itic", "limits": {"profile": "itic"}},
        {"name": "load_served", "limits": {"max_unserved_j": 0}},
    ],
}


def parse(document, source=STRING_SOURCE):
    return parse_sequence_text(dump_toml(document), source)


def mutated(path, value):
    document = copy.deepcopy(BASE)
    target = document
    for part in path[:-1]:
        target = target[part]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


DELETE = object()


def test_the_base_document_is_valid_and_reads_as_written():
    sequence = parse(BASE)
    assert sequence.initial.load.build() == TrainingSwings(period_s=2.0, low=0.2)
    assert sequence.steps[0] == Step(5.0, "battery.insert_fault", {"channel": 2, "kind": "ISOLATION"})
    assert sequence.criteria[1] == Criterion("load_served", {"max_unserved_j": 0})
    assert parse(sequence.to_document()) == sequence


def test_the_library_validates_and_round_trips():
    library = load_library(LIBRARY)
    assert {"unplanned-island-full-load", "repetitive-grid-dips", "isolation-fault-aged-fleet"} <= set(
        library
    )
    island = library["unplanned-island-full-load"]
    assert [step.call for step in island.steps] == ["grid.outage", "grid.restore"]
    assert island.source.endswith("unplanned-island-full-load.toml")
    for sequence in library.values():
        assert parse_sequence_text(sequence.to_toml()) == sequence


def test_the_documented_example_is_valid():
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    complete = [block for block in blocks if block.lstrip().startswith("id =")]
    assert complete, "docs/sequences.md has no complete example"
    for block in complete:
        parse_sequence_text(block, "docs/sequences.md")


def test_defaults_fill_what_initial_leaves_out():
    document = mutated(("initial",), {})
    initial = parse(document).initial
    assert (initial.fleet.packs, initial.soc, initial.grid.frequency_hz, initial.pv.rated_w) == (
        805,
        0.8,
        60.0,
        0.0,
    )
    assert initial.load.build().fraction(0.0) == 0.8


def test_load_profiles_build_the_plant_profiles():
    dips = {"profile": "checkpoint_dips", "base": 1, "interval_s": 60, "duration_s": 10, "level": 0.1}
    assert parse(mutated(("initial", "load"), dips)).initial.load.build() == CheckpointDips(
        1.0, 60.0, 10.0, 0.1
    )
    steps = {"profile": "steps", "points": [[0, 0.5], [10, 1.0]]}
    assert parse(mutated(("initial", "load"), steps)).initial.load.build() == Steps(((0.0, 0.5), (10.0, 1.0)))


@pytest.mark.parametrize(
    ("path", "value", "where", "key", "problem"),
    [
        (("colour",), "red", "", "colour", "unknown key; allowed: id, title"),
        (("id",), "Has Spaces", "", "id", "lowercase"),
        (("title",), DELETE, "", "title", "missing"),
        (("duration_s",), 0, "", "duration_s", "must be within (0.0, inf]"),
        (("references",), "ITIC", "", "references", "array of non-empty strings"),
        (("initial", "wind"), {}, "[initial]", "wind", "unknown key"),
        (("initial", "soc"), 1.5, "[initial]", "soc", "must be within [0.0, 1.0]"),
        (("initial", "fleet", "packs"), 0, "[initial.fleet]", "packs", "at least 1"),
        (("initial", "fleet", "packs"), 10.5, "[initial.fleet]", "packs", "must be an integer, not a float"),
        (("initial", "fleet", "cells"), 96, "[initial.fleet]", "cells", "unknown argument"),
        (("initial", "fleet"), 805, "[initial]", "fleet", "must be a table"),
        (("initial", "load", "profile"), "sawtooth", "[initial.load]", "profile", "must be one of constant"),
        (("initial", "load", "profile"), DELETE, "[initial.load]", "profile", "missing"),
        (("initial", "load", "low"), 1.5, "[initial.load]", "low", "low must be within [0, 1]"),
        (("initial", "load", "level"), 1.0, "[initial.load]", "level", "unknown argument"),
        (("initial", "grid", "frequency_hz"), -60.0, "[initial.grid]", "frequency_hz", "must be within"),
        (("steps", 1, "at_s"), 4.0, "step 2 (at 4.0 s)", "at_s", "time order; the step before is at 5.0 s"),
        (("steps", 2, "at_s"), 60.0, "step 3 (at 60.0 s)", "at_s", "before the end"),
        (("steps", 2, "at_s"), 75, "step 3 (at 75 s)", "at_s", "must be within [0.0, 60.0]"),
        (("steps", 0, "call"), "battery.melt", "step 1 (at 5.0 s)", "call", "no action 'melt'"),
        (("steps", 0, "call"), "pump.on", "step 1 (at 5.0 s)", "call", "unknown role 'pump'"),
        (("steps", 0, "call"), DELETE, "step 1 (at 5.0 s)", "call", "missing"),
        (("steps", 0, "when"), 1, "step 1 (at 5.0 s)", "when", "unknown key; allowed: at_s, call, args"),
        (("steps", 0, "args", "channel"), DELETE, "step 1 (at 5.0 s)", "args.channel", "missing"),
        (("steps", 0, "args", "chanel"), 2, "step 1 (at 5.0 s)", "args.chanel", "unknown argument"),
        (("steps", 0, "args", "channel"), "2", "step 1 (at 5.0 s)", "args.channel", "must be an integer"),
        (
            ("steps", 1, "args", "steps", 0, "dwell_s"),
            "long",
            "step 2 (at 10.0 s)",
            "args.steps[0].dwell_s",
            "must be a number",
        ),
        (("criteria", 0, "name"), "vibes", "criterion 1 (vibes)", "name", "must be one of itic, load_served"),
        (("criteria", 1, "limits"), 3, "criterion 2 (load_served)", "limits", "must be a table"),
        (
            ("criteria", 1, "limits", "max_unserved_j"),
            {"a": 1},
            "criterion 2 (load_served)",
            "limits.max_unserved_j",
            "must be a number, string",
        ),
        (("criteria",), [], "", "criteria", "non-empty"),
        (("criteria",), DELETE, "", "criteria", "name at least one criterion"),
    ],
)
def test_each_mistake_names_file_place_and_key(path, value, where, key, problem):
    with pytest.raises(SequenceError) as caught:
        parse(mutated(path, value), "lab/seq.toml")
    error = caught.value
    assert (error.source, error.where, error.key) == ("lab/seq.toml", where, key)
    assert problem in error.problem
    assert str(error).startswith("lab/seq.toml: ")


def test_steps_at_the_same_time_keep_file_order():
    document = mutated(("steps", 1, "at_s"), 5.0)
    assert [step.at_s for step in parse(document).steps] == [5.0, 5.0, 30.0]


def test_files_that_cannot_be_read_are_errors_naming_them(tmp_path):
    with pytest.raises(SequenceError, match="cannot read it"):
        load_sequence(tmp_path / "absent.toml")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('title = "caf\xe9"'.encode("latin-1"))
    with pytest.raises(SequenceError, match="not UTF-8"):
        load_sequence(latin)
    broken = tmp_path / "broken.toml"
    broken.write_text("id = \n", encoding="utf-8")
    with pytest.raises(SequenceError) as caught:
        load_sequence(broken)
    assert caught.value.source == str(broken)
    assert "TOML syntax error" in caught.value.problem


def test_library_refuses_an_id_used_twice(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "one.toml").write_text(dump_toml(BASE), encoding="utf-8")
    (tmp_path / "b" / "two.toml").write_text(dump_toml(BASE), encoding="utf-8")
    with pytest.raises(SequenceError) as caught:
        load_library(tmp_path)
    assert caught.value.source == str(tmp_path / "b" / "two.toml")
    assert caught.value.key == "id"
    assert str(tmp_path / "a" / "one.toml") in caught.value.problem


def _leaves(value, path=()):
    """Every scalar in a document, by path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


LEAVES = list(_leaves(BASE))


def _expected_place(path):
    """Where and which key the error for a bad value at ``path`` must name."""
    head = path[0]
    if head == "initial":
        return ("[initial]", path[1]) if len(path) == 2 else (f"[initial.{path[1]}]", path[2])
    if head == "steps":
        if path[2] != "args":
            return f"step {path[1] + 1}", path[2]
        rest = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path[3:])
        return f"step {path[1] + 1}", f"args{rest}"
    if head == "criteria":
        return f"criterion {path[1] + 1}", ".".join(str(part) for part in path[2:])
    return "", head


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(LEAVES), bad=st.sampled_from([{"x": 1}, [[1], ["a"]], {}]))
def test_a_value_of_the_wrong_shape_anywhere_is_one_error_at_that_key(path, bad):
    with pytest.raises(SequenceError) as caught:
        parse(mutated(path, bad), "fuzz.toml")
    where, key = _expected_place(path)
    assert caught.value.where.startswith(where), (path, caught.value)
    assert caught.value.key == key, (path, caught.value)


def _tables(value, path=()):
    """Every table in a document, by path, except criteria limits (free: the criterion reads them)."""
    if isinstance(value, dict):
        if path[-1:] != ("limits",):
            yield path
        for key, item in value.items():
            yield from _tables(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _tables(item, (*path, index))


@settings(max_examples=100, deadline=None)
@given(
    table=st.sampled_from(list(_tables(BASE))), name=st.text(string.ascii_lowercase, min_size=1, max_size=6)
)
def test_an_unknown_key_in_any_table_is_named(table, name):
    unknown = f"zz_{name}"
    with pytest.raises(SequenceError) as caught:
        parse(mutated((*table, unknown), 1), "fuzz.toml")
    assert caught.value.key.endswith(unknown), caught.value
    assert "unknown" in caught.value.problem


toml_values = st.recursive(
    st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["grid.outage", "itic", "constant", "ISOLATION", "x.y", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(LEAVES), value=st.none() | toml_values)
def test_any_single_value_anywhere_parses_or_is_a_sequence_error(path, value):
    document = mutated(path, DELETE if value is None else value)
    try:
        sequence = parse(document, "fuzz.toml")
    except SequenceError as error:
        assert error.source == "fuzz.toml"
        assert error.problem
    else:
        assert parse(sequence.to_document()) == sequence


def test_criteria_names_are_the_documented_constant():
    text = DOC.read_text(encoding="utf-8")
    for name in CRITERIA_NAMES:
        assert f"`{name}`" in text


def test_the_documented_library_table_is_the_library():
    """docs/sequences.md lists each library sequence once, in the folder (group) it lives in."""
    on_disk = {path.stem: path.parent.name for path in LIBRARY.rglob("*.toml")}
    groups = "|".join(sorted(set(on_disk.values())))
    rows = re.findall(rf"^\| `([a-z0-9-]+)` \| ({groups}) \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert sorted(name for name, _ in rows) == sorted(on_disk)
    assert {name: group for name, group in rows} == on_disk
    assert sorted(load_library(LIBRARY)) == sorted(on_disk), "each library file is named after its id"
