"""Where reports get written: ``gridhil report``, ``gridhil run`` and the pytest plugin at session end."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from harness import cli, run_command
from harness.report import REPORT_FILE
from harness.run import RECORD_FILE, run_sequence
from tests.report import Page, outage_sequence
from tests.run import SMALL_PACKS

pytest_plugins = ["pytester"]

PLUGIN_PACKS = "8"


def gridhil(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def sequence_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sequences") / "outage.toml"
    path.write_text(outage_sequence("outage", "Grid outage under training swings").to_toml())
    return path


def test_report_on_a_directory_without_records_exits_2_saying_so(capsys, tmp_path):
    code, out = gridhil(capsys, "report", str(tmp_path))
    assert code == 2
    assert "no record.json" in out and str(tmp_path) in out
    assert not (tmp_path / REPORT_FILE).exists()


def test_report_on_a_missing_directory_exits_2(capsys, tmp_path):
    code, out = gridhil(capsys, "report", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a directory" in out


def test_report_renders_a_failed_run_again_exiting_0_and_writes_where_asked(capsys, tmp_path):
    run_dir = tmp_path / "run"
    result = run_sequence(
        outage_sequence("outage", "t"), out_dir=run_dir / "outage", packs=SMALL_PACKS, variant="never-island"
    )
    assert not result.passed
    target = tmp_path / "elsewhere" / "page.html"
    code, out = gridhil(capsys, "report", str(run_dir), "--out", str(target))
    assert code == 0, out
    assert out.strip() == f"report {target}"
    assert Page.parse(target.read_text()).errors == []
    assert not (run_dir / REPORT_FILE).exists()


def test_run_writes_the_report_at_the_end_and_prints_its_path(capsys, tmp_path, sequence_file):
    out_dir = tmp_path / "out"
    code, out = gridhil(capsys, "run", str(sequence_file), "--out", str(out_dir), "--packs", str(SMALL_PACKS))
    assert code == 0, out
    assert out.rstrip().endswith(f"report {out_dir / REPORT_FILE}")
    page = Page.parse((out_dir / REPORT_FILE).read_text())
    assert page.rows["summary", "sequences"][0][:4] == [
        "outage",
        "Grid outage under training swings",
        "completed",
        "PASS",
    ]


def test_an_interrupted_run_still_leaves_its_report_in_a_fresh_directory(
    capsys, tmp_path, monkeypatch, sequence_file
):
    def interrupted(sequence, *, progress, **rest):
        def stop(t_s: float) -> None:
            progress(t_s)
            if t_s >= 3.0:
                raise KeyboardInterrupt

        return run_sequence(sequence, progress=stop, **rest)

    monkeypatch.setattr(run_command, "run_sequence", interrupted)
    monkeypatch.setattr(run_command, "RUNS_ROOT", tmp_path / "runs")
    with pytest.raises(KeyboardInterrupt):
        cli.main(["run", str(sequence_file), "--packs", str(SMALL_PACKS)])
    (run_dir,) = (tmp_path / "runs").iterdir()
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"report {run_dir / REPORT_FILE}")
    record = json.loads((run_dir / "outage" / RECORD_FILE).read_text())
    assert record["status"] == "interrupted"
    assert "Status: interrupted" in (run_dir / REPORT_FILE).read_text()


def test_runs_in_the_same_second_get_directories_of_their_own(tmp_path):
    now = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    first = run_command.fresh_run_dir(tmp_path, now)
    second = run_command.fresh_run_dir(tmp_path, now)
    assert first.name == "20260301T120005Z" and second.name == "20260301T120005Z-2"
    assert first.is_dir() and second.is_dir()


def _inner_test(sequence_file) -> str:
    return f"""
def test_outage(run_sequence):
    result = run_sequence({str(sequence_file)!r}, variant="never-island")
    assert not result.passed
"""


def test_the_plugin_writes_the_report_at_session_end_with_the_junit_verdicts(pytester, sequence_file):
    pytester.makepyfile(_inner_test(sequence_file))
    out, xml = pytester.path / "out", pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--gridhil-packs",
        PLUGIN_PACKS,
        "--gridhil-out",
        str(out),
        f"--junitxml={xml}",
        "-o",
        "junit_family=xunit1",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*gridhil report: {out / REPORT_FILE}*"])
    page = Page.parse((out / REPORT_FILE).read_text())
    (section,) = {key[0] for key in page.rows if key[1] == "verdicts"}
    rows = page.rows[section, "verdicts"]
    (case,) = ET.parse(xml).getroot().iter("testcase")
    properties = {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
    assert {row[1] for row in rows} == {"PASS", "FAIL"}
    for name, result_shown, measured, limit, margin, unit, *_ in rows:
        prefix = f"gridhil.outage.{name}"
        assert properties[f"{prefix}.passed"] == str(result_shown == "PASS")
        for shown, figure in ((measured, "measured"), (limit, "limit"), (margin, "margin")):
            assert float(properties[f"{prefix}.{figure}"]) == pytest.approx(float(shown), rel=1e-5, abs=1e-9)
        assert properties[f"{prefix}.unit"] == unit


def test_an_xdist_worker_leaves_the_report_to_the_main_process(pytester, sequence_file):
    pytester.makeconftest(
        """
def pytest_configure(config):
    config.workerinput = {"workerid": "gw0"}
"""
    )
    pytester.makepyfile(_inner_test(sequence_file))
    out = pytester.path / "out"
    result = pytester.runpytest("--gridhil-packs", PLUGIN_PACKS, "--gridhil-out", str(out))
    result.assert_outcomes(passed=1)
    assert list(out.rglob(RECORD_FILE)), "the run was recorded"
    assert not (out / REPORT_FILE).exists()
