"""The bench file: one clear error for every mistake, before any instrument is touched; Bench by role."""

from __future__ import annotations

import json
import string
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from drivers.base import Identity
from drivers.errors import InstrumentUnavailable
from harness.bench_file import (
    ROLE_NAMES,
    Bench,
    BenchCloseError,
    BenchFileError,
    BenchOpenError,
    BenchSpec,
    Expectation,
    load_bench_file,
    parse_bench_text,
)
from harness.sim.bench import SimBench
from harness.sim.plant import PlantConfig
from tests.harness import FAKE, FAKE_IDENTITY, FakeDriver, bench_text, calls, fake_registry, fake_role

SOURCE = "lab.toml"
PCS = "modbus+tcp://127.0.0.1:41234/1"


@pytest.fixture(autouse=True)
def registry():
    with fake_registry():
        yield


def valid_document() -> dict:
    """A bench file using every key there is, as the dict ``tomllib`` would return."""
    return {
        "bench": {
            "name": "sparks-lab-2",
            "safe_deadline_s": 4.0,
            "racks_rated_w": 4.0e6,
            "nominal_phase_v": 277.0,
        },
        "roles": {
            "battery": {
                "driver": FAKE,
                "resource": "fake://ok",
                "limits": {"voltage_max": 420.0, "current_max": 80},
                "calibration_due": date(2027, 3, 1),
                "expect": {"model": "bx-100", "firmware": "2.1"},
                "options": {"mode": "fast"},
            },
            "grid": {"driver": FAKE, "resource": "fake://ok"},
        },
        "sim": {"pcs": PCS, "seed": 3, "packs": 12},
    }


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are a subset of TOML basic strings
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(value)


def to_toml(document: dict, prefix: str = "") -> str:
    """A TOML writer for the documents these tests build (tables as [headers], bare keys)."""
    scalars = {key: value for key, value in document.items() if not isinstance(value, dict)}
    tables = {key: value for key, value in document.items() if isinstance(value, dict)}
    lines = [f"[{prefix}]"] if prefix and (scalars or not tables) else []
    lines += [f"{key} = {toml_value(value)}" for key, value in scalars.items()]
    for key, value in tables.items():
        lines.append(to_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def parse(text: str) -> BenchSpec:
    return parse_bench_text(text, SOURCE)


def refused(text: str) -> BenchFileError:
    with pytest.raises(BenchFileError) as caught:
        parse(text)
    assert str(caught.value).startswith(f"{SOURCE}: ")
    return caught.value


def test_a_complete_file_reads_into_a_spec_in_file_order():
    spec = parse(to_toml(valid_document()))
    assert spec.name == "sparks-lab-2"
    assert spec.source == SOURCE
    assert spec.safe_deadline_s == 4.0
    assert (spec.racks_rated_w, spec.nominal_phase_v) == (4.0e6, 277.0)
    assert list(spec.roles) == ["battery", "grid"]
    battery = spec.roles["battery"]
    assert (battery.role, battery.driver, battery.resource) == ("battery", FAKE, "fake://ok")
    assert battery.limits == {"voltage_max": 420.0, "current_max": 80.0}
    assert all(isinstance(value, float) for value in battery.limits.values())
    assert battery.calibration_due == date(2027, 3, 1)
    assert battery.expect == Expectation(model="bx-100", firmware="2.1")
    assert battery.options == {"mode": "fast"}
    config = battery.config()
    assert (config.role, config.resource, dict(config.limits)) == ("battery", "fake://ok", battery.limits)
    assert spec.sim is not None
    assert (spec.sim.pcs, spec.sim.seed, spec.sim.packs) == (PCS, 3, 12)


def test_optional_parts_take_their_defaults():
    spec = parse(bench_text(fake_role("relays")))
    assert spec.safe_deadline_s == 5.0
    assert spec.sim is None
    relays = spec.roles["relays"]
    assert (relays.limits, relays.options, relays.calibration_due) == ({}, {}, None)
    assert relays.expect == Expectation()


def test_validating_never_touches_an_instrument():
    parse(to_toml(valid_document()))
    assert FakeDriver.log == []


GRID_WITHOUT_DRIVER = '[roles.grid]\nresource = "fake://ok"\n'
GRID_WITHOUT_RESOURCE = f'[roles.grid]\ndriver = "{FAKE}"\n'
GRID_UNKNOWN_DRIVER = '[roles.grid]\ndriver = "acme-9000"\nresource = "fake://ok"\n'
GRID_VISA_RESOURCE = f'[roles.grid]\ndriver = "{FAKE}"\nresource = "TCPIP::x::SOCKET"\n'
WITH_GRID = bench_text(fake_role("grid"))


def mistake(name: str, text: str, table: str, key: str, words: str):
    """A bench file with one mistake, the table and key the error must name, words its problem contains."""
    return pytest.param(text, table, key, words, id=name)


MISTAKES = [
    mistake("syntax", '[bench]\nname = "x"\n[roles.battery\n', "", "", "line 3, column"),
    mistake("no bench", fake_role("battery"), "", "bench", "missing"),
    mistake("no name", WITH_GRID.replace('name = "fake bench"', ""), "bench", "name", "missing"),
    mistake("empty name", bench_text(fake_role("grid"), name="  "), "bench", "name", "empty"),
    mistake("no roles", bench_text(), "", "roles", "missing"),
    mistake("empty roles", bench_text("[roles]\n"), "roles", "", "at least one of battery"),
    mistake("unknown top key", "colour = 1\n" + WITH_GRID, "", "colour", "unknown key"),
    mistake(
        "zero deadline",
        bench_text(fake_role("grid"), bench_extra="safe_deadline_s = 0"),
        "bench",
        "safe_deadline_s",
        "more than 0",
    ),
    mistake(
        "negative rating",
        bench_text(fake_role("grid"), bench_extra="racks_rated_w = -4e6"),
        "bench",
        "racks_rated_w",
        "more than 0",
    ),
    mistake(
        "infinite voltage",
        bench_text(fake_role("grid"), bench_extra="nominal_phase_v = inf"),
        "bench",
        "nominal_phase_v",
        "finite number more than 0",
    ),
    mistake(
        "unknown role",
        bench_text(fake_role("battery"), fake_role("dc_meter")),
        "roles",
        "dc_meter",
        "unknown role; allowed: battery, grid, load, load_meter, pcc_meter, relays, controller",
    ),
    mistake("no driver", bench_text(GRID_WITHOUT_DRIVER), "roles.grid", "driver", "missing"),
    mistake("no resource", bench_text(GRID_WITHOUT_RESOURCE), "roles.grid", "resource", "missing"),
    mistake("unknown driver", bench_text(GRID_UNKNOWN_DRIVER), "roles.grid", "driver", "no driver named"),
    mistake("bad resource", bench_text(GRID_VISA_RESOURCE), "roles.grid", "resource", "starts with fake://"),
    mistake(
        "unknown limit",
        bench_text(fake_role("battery", extra="limits = { power_max = 1.0 }")),
        "roles.battery",
        "limits",
        f"{FAKE} refuses it: unknown limit(s) ['power_max']",
    ),
    mistake(
        "limit beyond the instrument",
        bench_text(fake_role("battery", extra="limits = { voltage_max = 600 }")),
        "roles.battery",
        "limits",
        "voltage_max = 600.0 V is outside what this instrument can do",
    ),
    mistake(
        "limit as text",
        bench_text(fake_role("battery", extra='limits = { voltage_max = "420" }')),
        "roles.battery.limits",
        "voltage_max",
        "must be a number, not a string ('420')",
    ),
    mistake(
        "calibration as text",
        bench_text(fake_role("load", extra='calibration_due = "2027-03-01"')),
        "roles.load",
        "calibration_due",
        "must be a date like 2027-03-01, not a string",
    ),
    mistake(
        "calibration with a time",
        bench_text(fake_role("load", extra="calibration_due = 2027-03-01T10:00:00")),
        "roles.load",
        "calibration_due",
        "not a date-time",
    ),
    mistake(
        "unknown expect key",
        bench_text(fake_role("load", extra='expect = { serial = "1" }')),
        "roles.load.expect",
        "serial",
        "unknown key; allowed: model, firmware",
    ),
    mistake(
        "option of the wrong type",
        bench_text(fake_role("load", extra="options = { mode = 3 }")),
        "roles.load",
        "options",
        f"{FAKE} refuses it: load: option mode = 3 should be str",
    ),
    mistake("sim without pcs", WITH_GRID + "[sim]\nseed = 1\n", "sim", "pcs", "missing"),
    mistake("sim pcs not modbus", WITH_GRID + '[sim]\npcs = "TCPIP::h::1::SOCKET"\n', "sim", "pcs", "Modbus"),
    mistake("sim of no packs", WITH_GRID + f'[sim]\npcs = "{PCS}"\npacks = 0\n', "sim", "packs", "least 1"),
]


@pytest.mark.parametrize(("text", "table", "key", "words"), MISTAKES)
def test_every_mistake_is_one_error_naming_table_and_key(text, table, key, words):
    error = refused(text)
    assert (error.table, error.key) == (table, key)
    assert words in error.problem
    where = " ".join(part for part in (f"[{table}]" if table else "", key) if part)
    assert str(error).startswith(f"{SOURCE}: {where}")
    assert FakeDriver.log == []


# Every typed leaf of valid_document(): (table, key, the TOML types it accepts).
NUMBER, INTEGER, STRING, DATE, TABLE = ("number",), ("integer",), ("string",), ("date",), ("table",)
LEAVES = [
    ("", "bench", TABLE),
    ("", "roles", TABLE),
    ("", "sim", TABLE),
    ("bench", "name", STRING),
    ("bench", "safe_deadline_s", NUMBER),
    ("bench", "racks_rated_w", NUMBER),
    ("bench", "nominal_phase_v", NUMBER),
    ("roles", "battery", TABLE),
    ("roles.battery", "driver", STRING),
    ("roles.battery", "resource", STRING),
    ("roles.battery", "limits", TABLE),
    ("roles.battery.limits", "voltage_max", NUMBER),
    ("roles.battery", "calibration_due", DATE),
    ("roles.battery", "expect", TABLE),
    ("roles.battery.expect", "model", STRING),
    ("roles.battery.expect", "firmware", STRING),
    ("roles.battery", "options", TABLE),
    ("sim", "pcs", STRING),
    ("sim", "seed", INTEGER),
    ("sim", "packs", INTEGER),
]

toml_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
    st.dates(),
    st.datetimes(),
    st.lists(st.integers(0, 9), max_size=3),
)


def toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if isinstance(value, int) else "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date-time"
    return "date" if isinstance(value, date) else "other"


def accepts(kinds: tuple[str, ...], value: object) -> bool:
    kind = toml_type(value)
    return kind in kinds or (kinds == NUMBER and kind in ("integer", "float"))


def table_at(document: dict, table: str) -> dict:
    for part in filter(None, table.split(".")):
        document = document[part]
    return document


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(leaf=st.sampled_from(LEAVES), value=toml_scalars)
def test_a_wrongly_typed_value_anywhere_is_named_where_it_is(leaf, value):
    table, key, kinds = leaf
    assume(not accepts(kinds, value))
    document = valid_document()
    table_at(document, table)[key] = value
    error = refused(to_toml(document))
    assert (error.table, error.key) == (table, key)
    assert "must be" in error.problem


bare_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
OPEN_TABLES = {
    "": ("bench", "roles", "sim"),
    "bench": ("name", "safe_deadline_s", "racks_rated_w", "nominal_phase_v"),
    "roles": ROLE_NAMES,
    "roles.battery": ("driver", "resource", "limits", "calibration_due", "expect", "options"),
    "roles.battery.expect": ("model", "firmware"),
    "sim": ("pcs", "seed", "packs"),
}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.sampled_from(sorted(OPEN_TABLES)), key=bare_keys)
def test_an_unknown_key_in_any_table_is_named_with_the_keys_allowed_there(table, key):
    allowed = OPEN_TABLES[table]
    assume(key not in allowed)
    document = valid_document()
    table_at(document, table)[key] = "x"
    error = refused(to_toml(document))
    assert (error.table, error.key) == (table, key)
    assert error.problem.endswith("allowed: " + ", ".join(allowed))


def test_an_unknown_driver_lists_every_known_one():
    error = refused(bench_text(GRID_UNKNOWN_DRIVER))
    known = error.problem.split("known: ")[1].split(", ")
    assert FAKE in known
    assert {"chroma-17040", "chroma-61800", "numato-relay", "sunspec-meter"} <= set(known)


def test_a_missing_or_undecodable_file_is_a_bench_file_error(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(BenchFileError, match=r"nowhere\.toml: cannot read it: No such file"):
        load_bench_file(missing)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[bench]\nname = "Z\xfcrich"\n')
    with pytest.raises(BenchFileError, match=r"latin\.toml: not UTF-8 text"):
        load_bench_file(latin)


def test_a_file_on_disk_names_its_path(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text(bench_text(fake_role("grid")), encoding="utf-8")
    assert load_bench_file(path).source == str(path)
    path.write_text(bench_text(fake_role("grid", extra="colour = 1")), encoding="utf-8")
    with pytest.raises(BenchFileError, match=rf"^{path}: \[roles.grid\] colour: unknown key"):
        load_bench_file(path)


def test_calibration_is_overdue_only_after_its_date():
    role = parse(bench_text(fake_role("grid", extra="calibration_due = 2027-03-01"))).roles["grid"]
    assert not role.calibration_overdue(date(2027, 3, 1))
    assert role.calibration_overdue(date(2027, 3, 2))
    assert not parse(bench_text(fake_role("grid"))).roles["grid"].calibration_overdue(date(2999, 1, 1))


@settings(max_examples=100, deadline=None)
@given(model=st.text(string.ascii_letters + string.digits + "-. ", min_size=1, max_size=12), data=st.data())
def test_an_expected_model_matches_any_case_of_any_part_of_it_and_nothing_else(model, data):
    start = data.draw(st.integers(0, len(model) - 1))
    end = data.draw(st.integers(start + 1, len(model)))
    wanted = data.draw(st.sampled_from([str.upper, str.lower, str.swapcase]))(model[start:end])
    identity = Identity("Acme", model, "1", "1.0")
    assert Expectation(model=wanted).mismatches(identity) == []
    assert len(Expectation(model=wanted + "#").mismatches(identity)) == 1


def test_a_different_model_or_firmware_is_a_mismatch_naming_both():
    expect = Expectation(model="17040", firmware="3.")
    found = expect.mismatches(FAKE_IDENTITY)
    assert found == [
        "model '17040' expected, instrument says 'BX-100'",
        "firmware '3.' expected, instrument says '2.1.0'",
    ]
    assert Expectation(model="bx-1", firmware="2.1").mismatches(FAKE_IDENTITY) == []


def test_bench_opens_every_role_in_file_order_and_closes_them_in_reverse():
    spec = parse(bench_text(fake_role("battery"), fake_role("grid"), fake_role("relays")))
    with Bench.open(spec) as bench:
        assert calls("open") == ["battery", "grid", "relays"]
        assert isinstance(bench["grid"], FakeDriver)
        assert "grid" in bench and "load" not in bench
        with pytest.raises(KeyError, match="has no role 'load'; it has: battery, grid, relays"):
            bench["load"]
    assert calls("close") == ["relays", "grid", "battery"]
    assert calls("safe") == []


def test_a_role_that_does_not_open_closes_the_opened_ones_and_is_named():
    spec = parse(bench_text(fake_role("battery"), fake_role("grid", "down"), fake_role("relays")))
    with pytest.raises(BenchOpenError) as caught:
        Bench.open(spec)
    assert caught.value.role == "grid"
    assert str(caught.value).startswith(f"role grid ({FAKE} at fake://down) did not open: ")
    assert isinstance(caught.value.__cause__, InstrumentUnavailable)
    assert calls("open") == ["battery", "grid"]
    assert sorted(calls("close")) == ["battery", "grid"]


def test_an_interrupt_while_opening_closes_the_opened_ones_and_propagates(monkeypatch):
    original = FakeDriver.open

    def open_until_grid(self):
        if self.role == "grid":
            raise KeyboardInterrupt
        return original(self)

    spec = parse(bench_text(fake_role("battery"), fake_role("grid")))
    monkeypatch.setattr(FakeDriver, "open", open_until_grid)
    with pytest.raises(KeyboardInterrupt):
        Bench.open(spec)
    assert calls("close") == ["grid", "battery"]


def test_closing_tries_every_driver_and_then_names_the_ones_that_failed(monkeypatch):
    spec = parse(bench_text(fake_role("battery"), fake_role("grid"), fake_role("relays")))
    bench = Bench.open(spec)
    original = FakeDriver.close

    def close(self):
        original(self)
        if self.role == "grid":
            raise OSError("port vanished")

    monkeypatch.setattr(FakeDriver, "close", close)
    with pytest.raises(BenchCloseError, match="closing the bench failed for grid: port vanished"):
        bench.close()
    assert calls("close") == ["relays", "grid", "battery"]


def test_the_file_gridhil_sim_writes_is_a_valid_bench_file(tmp_path: Path):
    with SimBench(PlantConfig(packs=4, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)) as sim:
        path = tmp_path / "sim.toml"
        path.write_text(sim.bench_file(sim.pcs_face.resource), encoding="utf-8")
        spec = load_bench_file(path)
        assert {role: spec.roles[role].resource for role in sim.resources} == sim.resources
        assert list(spec.roles) == [*sim.resources, "controller"]
        assert spec.sim is not None
        assert (spec.sim.pcs, spec.sim.seed, spec.sim.packs) == (sim.pcs_face.resource, 0, 4)


def test_a_misspelt_driver_option_is_named_with_the_options_the_driver_knows():
    text = (
        "[bench]\nname = \"lab\"\n[roles.battery]\ndriver = \"chroma-17040\"\n"
        'resource = "TCPIP::10.0.0.20::60000::SOCKET"\noptions = { timout_s = 3.0 }\n'
    )
    error = refused(text)
    assert "[roles.battery]" in str(error)
    assert "options" in str(error)
    assert "timout_s" in str(error) and "timeout_s" in str(error)
