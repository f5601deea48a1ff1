"""The report rendered from real runs on the simulated bench: a pass, a fail and a crash in one run dir."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.report import REPORT_FILE, NoRecordsError, render_report
from harness.report.html import render_page
from harness.report.plots import (
    EVIDENCE_CLASS,
    ITIC_REGION_LABELS,
    MAX_POINTS,
    SOC_LINES_MAX_PACKS,
    _thin,
    soc,
)
from harness.report.records import Outcome, SequenceRun, read_run, read_runs
from harness.run import RECORD_FILE, TRACE_DIR, run_sequence
from harness.sim.itic import ItiRegion, itic_region
from harness.trace import FLEET_SOC, PACK_SOC, Trace
from tests.report import FETCHING_ATTRIBUTES, Page, outage_sequence
from tests.run import SMALL_PACKS

HOSTILE = "<script>alert('gridhil')</script>"
PLOT_TITLES = {
    "Timeline: controller mode, injected steps, plant journal, evidence of failed criteria",
    "Rack power: demanded vs delivered",
    "Rack bus: voltage and frequency",
    "Rack-bus voltage events on the ITIC chart",
    "Grid power and its ramp limit",
    "State of charge per pack",
    "Pack currents around faults",
}


class Crash(Exception):
    """Raised from the progress callback to kill a run half way."""


def crash_at(t_crash_s: float):
    def progress(t_s: float) -> None:
        if t_s >= t_crash_s:
            raise Crash(f"killed at {t_s:g} s")

    return progress


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Three runs in one directory: the reference passing, ``never-island`` failing, and a run killed
    at 3 s. The passing run's title and its battery's identity carry markup, as a hostile instrument
    or file could."""
    root = tmp_path_factory.mktemp("runs")
    run_sequence(
        outage_sequence("outage-pass", f"Outage {HOSTILE} ridden"), out_dir=root / "pass", packs=SMALL_PACKS
    )
    failing = outage_sequence("outage-fail", "Outage, never islanding")
    run_sequence(failing, out_dir=root / "fail", packs=SMALL_PACKS, variant="never-island")
    with pytest.raises(Crash):
        crashing = outage_sequence("outage-crash", "Outage, killed half way")
        run_sequence(crashing, out_dir=root / "crash", packs=SMALL_PACKS, progress=crash_at(3.0))
    record_path = root / "pass" / RECORD_FILE
    record = json.loads(record_path.read_text())
    record["bench"]["instruments"]["battery"]["manufacturer"] = HOSTILE
    record_path.write_text(json.dumps(record))
    return root


@pytest.fixture(scope="module")
def records(run_dir):
    """Each run's record as JSON, by sequence id."""
    documents = [json.loads(path.read_text()) for path in run_dir.rglob(RECORD_FILE)]
    return {document["sequence"]["id"]: document for document in documents}


@pytest.fixture(scope="module")
def report(run_dir):
    path = render_report(run_dir)
    assert path == run_dir / REPORT_FILE
    return path.read_text()


@pytest.fixture(scope="module")
def page(report):
    return Page.parse(report)


@pytest.fixture(scope="module")
def sections(page, records):
    """Sequence id -> the id of its section in the page."""
    found = {}
    for element in page.elements:
        if element.tag == "section" and element.attrs.get("class") == "sequence":
            text = page.text.get(element.attrs["id"], "")
            (sequence_id,) = [name for name in records if f"{name}:" in text]
            found[sequence_id] = element.attrs["id"]
    return found


def test_the_runs_came_out_as_intended(records):
    assert records["outage-pass"]["passed"] and records["outage-pass"]["status"] == "completed"
    failed = {v["name"] for v in records["outage-fail"]["verdicts"] if not v["passed"]}
    assert failed == {"itic[itic]", "load_served"}
    assert records["outage-crash"]["status"] == "error" and not records["outage-crash"]["verdicts"]


def test_the_page_parses_with_every_element_closed_where_it_opened(report, page):
    assert report.startswith("<!DOCTYPE html>")
    assert page.errors == []
    assert {"html", "head", "body", "style", "table", "svg"} <= {e.tag for e in page.elements}


def test_nothing_is_fetched_from_anywhere(report, page):
    references = [(e.tag, name, value) for e in page.elements for name, value in e.attrs.items()]
    fetching = [(tag, name, value) for tag, name, value in references if name in FETCHING_ATTRIBUTES]
    assert fetching, "the page has internal links and SVG references"
    assert all(value.startswith(("#", "data:")) for _, _, value in fetching), fetching
    assert not {"script", "link", "iframe", "img", "object"} & {e.tag for e in page.elements}
    namespaces_removed = report.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in namespaces_removed and "https://" not in namespaces_removed
    assert "@import" not in report and "url(http" not in report


def test_every_plot_is_one_inline_svg_and_completed_runs_have_them_all(page, sections):
    for sequence_id, section in sections.items():
        figures = page.in_section(section, "figure")
        svgs = page.in_section(section, "svg")
        assert len(svgs) == len(figures) > 0, sequence_id
        titles = {e.attrs["aria-label"] for e in svgs}
        if sequence_id != "outage-crash":
            assert titles == PLOT_TITLES, sequence_id
    ids = [e.attrs["id"] for e in page.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids)), "ids are unique across all the inline SVGs"


@pytest.mark.parametrize("sequence_id", ["outage-pass", "outage-fail"])
def test_the_verdict_table_shows_the_records_verdicts(page, sections, records, sequence_id):
    rows = page.rows[sections[sequence_id], "verdicts"]
    verdicts = records[sequence_id]["verdicts"]
    assert [row[0] for row in rows] == [v["name"] for v in verdicts]
    for row, verdict in zip(rows, verdicts, strict=True):
        name, result, measured, limit, margin, unit = row[:6]
        assert result == ("PASS" if verdict["passed"] else "FAIL"), name
        for shown, key in ((measured, "measured"), (limit, "limit"), (margin, "margin")):
            assert float(shown) == pytest.approx(float(verdict[key]), rel=1e-5, abs=1e-9), (name, key)
        assert unit == verdict["unit"]
        assert verdict["reference"] in row[7] and verdict["detail"] in row[8]


def test_each_failed_criterion_has_its_evidence_window_marked_on_its_plots(page, sections, records):
    marks = {
        (e.svg, e.attrs["data-criterion"])
        for e in page.in_section(sections["outage-fail"])
        if e.attrs.get("class") == EVIDENCE_CLASS
    }
    failed = {v["name"] for v in records["outage-fail"]["verdicts"] if not v["passed"]}
    assert {criterion for _, criterion in marks} == failed
    assert ("Rack-bus voltage events on the ITIC chart", "itic[itic]") in marks
    assert ("Rack bus: voltage and frequency", "itic[itic]") in marks
    assert ("Rack power: demanded vs delivered", "load_served") in marks
    timeline = next(title for title in PLOT_TITLES if title.startswith("Timeline"))
    assert {(timeline, name) for name in failed} <= marks
    assert not [e for e in page.in_section(sections["outage-pass"]) if e.attrs.get("class") == EVIDENCE_CLASS]


def test_summary_counts_each_outcome_and_links_every_sequence(page, sections):
    rows = page.rows["summary", "sequences"]
    results = {row[0]: row[3] for row in rows}
    assert results == {"outage-pass": "PASS", "outage-fail": "FAIL", "outage-crash": "INCOMPLETE"}
    links = {e.attrs["href"] for e in page.in_section("summary", "a")}
    assert {f"#{section}" for section in sections.values()} <= links
    requirement = page.rows["requirements", "requirements"]
    (t1,) = [row for row in requirement if row[0] == "IEEE 2030.8 unplanned islanding (T1)"]
    assert t1[1:4] == ["FAIL", "4", "2"]
    assert t1[5] == "outage-crash"


def test_markup_from_a_title_or_an_instrument_comes_out_as_text(report, page, sections):
    assert "<script" not in report.lower()
    assert "&lt;script&gt;" in report
    assert HOSTILE in page.text[sections["outage-pass"]]
    assert HOSTILE in page.text["bench"]


def test_bench_controller_and_reproduction_are_shown(page, sections, records):
    text = page.text[sections["outage-fail"]]
    record = records["outage-fail"]
    controller = record["bench"]["instruments"]["controller"]
    assert f"version {controller['firmware']}" in text and controller["model"] in text
    assert "variant never-island" in text
    assert "gridhil run" in text or "built in Python" in text
    assert record["environment"]["packages"]["numpy"] in text
    assert " ".join(record["environment"]["command_line"][1:]) in text


def test_the_crashed_run_is_shown_with_its_status_and_what_it_recorded(page, sections, records):
    section = sections["outage-crash"]
    text = page.text[section]
    assert "Status: error" in text and "Crash: killed at 3 s" in text
    assert "No verdicts" in text
    titles = {e.attrs["aria-label"] for e in page.in_section(section, "svg")}
    assert "Rack power: demanded vs delivered" in titles, "its partial trace is plotted"


def test_damaged_runs_render_as_such(run_dir, tmp_path):
    """A run whose process died (status running), with a torn trace; one with no trace at all; a record
    that no longer parses."""
    torn = tmp_path / "torn"
    shutil.copytree(run_dir / "crash", torn)
    record = json.loads((torn / RECORD_FILE).read_text())
    record.update(status="running", finished_utc=None, error="")
    (torn / RECORD_FILE).write_text(json.dumps(record))
    for name in ("t.bin", "ch.load_served_w.bin", "events.jsonl"):
        path = torn / TRACE_DIR / name
        path.write_bytes(path.read_bytes()[:-5])
    bare = tmp_path / "bare"
    shutil.copytree(run_dir / "crash", bare)
    shutil.rmtree(bare / TRACE_DIR)
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / RECORD_FILE).write_text('{"status": "compl')

    runs = {run.record_path.parent.name: run for run in read_runs(tmp_path)}
    assert runs["torn"].trace is not None and runs["torn"].outcome is Outcome.INCOMPLETE
    assert "does not exist" in runs["bare"].trace_problem
    assert runs["garbled"].status == "unreadable" and "JSONDecodeError" in runs["garbled"].problem
    text = Page.parse(render_report(tmp_path).read_text()).text
    everything = " ".join(text.values())
    assert "Status: running. No end was recorded" in everything
    assert "no trace:" in everything
    assert "The record cannot be read" in everything


@pytest.mark.parametrize(("record_format", "readable"), [(None, True), (1, True), (2, False), ("1", False)])
def test_a_record_newer_than_this_gridhil_is_refused_not_misread(run_dir, tmp_path, record_format, readable):
    record = json.loads((run_dir / "pass" / RECORD_FILE).read_text())
    assert record["format"] == 1
    if record_format is None:
        del record["format"]  # written before the key existed
    else:
        record["format"] = record_format
    path = tmp_path / RECORD_FILE
    path.write_text(json.dumps(record))
    run = read_run(path)
    assert (run.status != "unreadable") is readable
    if not readable:
        assert f"record format {record_format!r}" in run.problem


def test_a_directory_without_records_is_an_error(tmp_path):
    with pytest.raises(NoRecordsError, match=r"no record\.json"):
        render_report(tmp_path)


NUMBERISH = st.integers(-5, 100) | st.floats(-1e9, 1e9) | st.sampled_from(["inf", "-inf", "nan"])
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERISH | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def shaped(*keys: str, values=JSON):
    """A JSON object with some of a record's keys, each holding anything."""
    return st.fixed_dictionaries({}, optional={key: values for key in keys})


INSTRUMENT = shaped("driver", "resource", "manufacturer", "model", "serial", "firmware", "calibration_due")
VERDICT = shaped(
    "name", "passed", "measured", "limit", "margin", "unit", "when", "reference", "detail", "evidence"
)
BENCH = st.fixed_dictionaries(
    {},
    optional={
        "name": JSON,
        "simulated": JSON,
        "racks_rated_w": NUMBERISH | JSON,
        "instruments": st.dictionaries(st.sampled_from(["battery", "controller"]), INSTRUMENT | JSON),
    },
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "sequence": shaped("id", "title", "references", "duration_s", "criteria") | JSON,
        "status": st.sampled_from(["running", "completed", "interrupted", "error"]) | JSON,
        "steps_applied": st.lists(shaped("t_s", "call", "args", values=NUMBERISH | JSON) | JSON, max_size=3),
        "verdicts": st.lists(VERDICT | JSON, max_size=3),
        "bench": BENCH | JSON,
        "environment": shaped("command_line", "python", "platform", "packages") | JSON,
        "seed": JSON,
        "packs": JSON,
        "variant": JSON,
        "started_utc": JSON,
        "finished_utc": JSON,
    },
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=RECORD)
def test_any_json_in_a_records_keys_renders_without_raising(tmp_path, document):
    path = tmp_path / RECORD_FILE
    path.write_text(json.dumps(document))
    run = read_run(path)
    page = Page.parse(render_page([run], tmp_path))
    assert page.errors == []


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(-1e9, 1e9) | st.just(float("nan")), min_size=1, max_size=3 * MAX_POINTS),
)
def test_thinning_keeps_the_ends_and_the_extremes(values):
    y = np.array(values)
    t = np.arange(y.size, dtype=float)
    t_kept, y_kept = _thin(t, y)
    assert t_kept.size <= MAX_POINTS + 2
    assert np.all(np.diff(t_kept) > 0)
    assert t_kept[0] == t[0] and t_kept[-1] == t[-1]
    np.testing.assert_array_equal(y_kept, y[t_kept.astype(int)])
    if np.isfinite(y).any():
        assert np.nanmax(y_kept) == np.nanmax(y) and np.nanmin(y_kept) == np.nanmin(y)


def test_hundreds_of_packs_make_one_heat_map_image(tmp_path):
    packs, samples = 805, 1200
    t = np.arange(1, samples + 1) * 0.1
    soc_values = 0.8 - np.outer(t, np.linspace(1e-4, 3e-4, packs))
    trace = Trace(t, {PACK_SOC: soc_values, FLEET_SOC: soc_values.mean(axis=1)})
    run = SequenceRun(tmp_path / RECORD_FILE, "completed", "big", duration_s=120.0, trace=trace)
    plot = soc(run, "s1")
    assert plot is not None and packs > SOC_LINES_MAX_PACKS
    assert plot.svg.count("<image") == 2, "the map and its colour bar"
    assert len(re.findall(r"<path", plot.svg)) < 200, "no line per pack"
    assert len(plot.svg) < 300_000


def test_the_itic_charts_region_names_sit_in_their_regions():
    regions = {
        "no damage region": ItiRegion.NO_DAMAGE,
        "prohibited region": ItiRegion.PROHIBITED,
        "no interruption": ItiRegion.NO_INTERRUPTION,
    }
    assert {text for _, _, text in ITIC_REGION_LABELS} == set(regions)
    for duration_s, level_pu, text in ITIC_REGION_LABELS:
        assert itic_region(level_pu, duration_s) is regions[text], text
