"""The gridhil pytest plugin, exercised the way a user meets it: small test files run by pytester."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.run_command import LIBRARY
from harness.sequence import load_library

pytest_plugins = ["pytester"]

SMALL_PACKS = "8"
LAB_BENCH = """
[bench]
name = "lab-without-grid"
[roles.battery]
driver = "chroma-17040"
resource = "TCPIP::127.0.0.1::1::SOCKET"
"""


@pytest.fixture
def lab_bench(pytester: pytest.Pytester) -> Path:
    """A lab bench file with a battery and no grid; nothing in it is ever opened by these tests."""
    return pytester.makefile(".toml", lab=LAB_BENCH)


def test_options_show_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in ("--bench=FILE", "--seed=SEED", "--realtime", "--gridhil-out=DIR", "--gridhil-packs=N"):
        result.stdout.fnmatch_lines([f"*{option}*"])


def test_requires_roles_skips_naming_the_missing_role(pytester: pytest.Pytester, lab_bench: Path) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_roles("grid")
        def test_needs_grid():
            raise AssertionError("must not run")

        def test_grid_fixture(grid):
            raise AssertionError("must not run")

        @pytest.mark.requires_roles("battery")
        def test_needs_battery():
            pass
        """
    )
    result = pytester.runpytest("--bench", str(lab_bench), "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*bench 'lab-without-grid' has no role grid*"] * 2)


def test_unknown_role_in_marker_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_roles("flux_capacitor")
        def test_it():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown role flux_capacitor*"])


def test_plant_skips_on_a_lab_bench(pytester: pytest.Pytester, lab_bench: Path) -> None:
    pytester.makepyfile(
        """
        def test_plant(plant):
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest("--bench", str(lab_bench), "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs the simulated bench*"])


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--gridhil-packs", "0"], "*--gridhil-packs must be at least 1, not 0*"),
        (["--bench", "missing.toml"], "*--bench: *missing.toml*cannot read it*"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], complaint: str) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([complaint])


def test_library_parametrisation_and_sequences_marker(pytester: pytest.Pytester) -> None:
    library = sorted(load_library(LIBRARY))
    chosen = library[-1]
    pytester.makepyfile(
        f"""
        import pytest

        def test_every(library_sequence):
            pass

        @pytest.mark.sequences({chosen!r})
        def test_one(library_sequence):
            assert library_sequence.id == {chosen!r}
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=len(library) + 1)
    result.stdout.fnmatch_lines([f"*test_every[[]{name}[]] PASSED*" for name in library])
    result.stdout.fnmatch_lines([f"*test_one[[]{chosen}[]] PASSED*"])


def test_sequences_marker_with_an_unknown_id_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sequences("no-such-sequence")
        def test_one(library_sequence):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*no library sequence no-such-sequence*"])


def _properties(case: ET.Element) -> dict[str, str]:
    return {prop.attrib["name"]: prop.attrib["value"] for prop in case.iter("property")}


def test_run_sequence_writes_record_trace_and_junit_figures(pytester: pytest.Pytester) -> None:
    sequence_id = "unplanned-island-full-load"
    pytester.makepyfile(
        f"""
        def test_island(run_sequence):
            result = run_sequence({sequence_id!r})
            assert result.verdicts
            assert result.passed
        """
    )
    out = pytester.path / "out"
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--gridhil-packs",
        SMALL_PACKS,
        "--gridhil-out",
        str(out),
        f"--junitxml={xml}",
        "-o",
        "junit_family=xunit1",
    )
    result.assert_outcomes(passed=1)
    run_dirs = list(out.glob(f"*/{sequence_id}"))
    assert len(run_dirs) == 1
    record = json.loads((run_dirs[0] / "record.json").read_text())
    assert record["status"] == "completed"
    assert record["packs"] == int(SMALL_PACKS)
    assert any((run_dirs[0] / "trace").iterdir())
    (case,) = ET.parse(xml).getroot().iter("testcase")
    properties = _properties(case)
    prefix = f"gridhil.{sequence_id}"
    assert properties[f"{prefix}.passed"] == "True"
    assert Path(properties[f"{prefix}.record"]) == run_dirs[0] / "record.json"
    assert record["verdicts"]
    for verdict in record["verdicts"]:
        for figure in ("measured", "limit", "margin"):
            assert float(properties[f"{prefix}.{verdict['name']}.{figure}"]) == pytest.approx(
                float(verdict[figure])
            )
        assert properties[f"{prefix}.{verdict['name']}.unit"] == verdict["unit"]
    suite_properties = {p.attrib["name"]: p.attrib["value"] for p in ET.parse(xml).getroot().iter("property")}
    assert "gridhil.bench" not in suite_properties, "no test opened the bench"


SAFE_AFTER_FAILURE = """
def test_fails_half_way(battery, sim_bench, plant):
    battery.set_output(1, True)
    battery.set_output(2, True)
    sim_bench.advance(0.5)
    assert plant.packs.contactor_closed[:2].all(), "the contactors closed"
    raise AssertionError("failing half way, outputs on")

def test_outputs_are_safe_afterwards(plant):
    assert not plant.packs.contactor_closed.any()
"""


def test_outputs_are_safe_after_a_test_that_fails_half_way(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SAFE_AFTER_FAILURE)
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--gridhil-packs", SMALL_PACKS, f"--junitxml={xml}", "-o", "junit_family=xunit1"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*failing half way, outputs on*"])
    root = ET.parse(xml).getroot()
    assert (
        root.find(".//testsuite/properties/property[@name='gridhil.bench']").attrib["value"]
        == "gridhil simulated bench"
    )
    failed = next(case for case in root.iter("testcase") if case.attrib["name"] == "test_fails_half_way")
    assert _properties(failed)["gridhil.instrument.battery"].startswith("Chroma 17040")


def test_every_xdist_worker_has_its_own_standins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_port(n, battery, sim_bench, pytestconfig):
            battery.set_output(1, True)
            sim_bench.advance(0.2)
            worker = os.environ["PYTEST_XDIST_WORKER"]
            port = sim_bench.sim.resources["battery"]
            (pytestconfig.rootpath / f"{worker}-{n}.port").write_text(port)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--gridhil-packs", SMALL_PACKS, "-p", "xdist")
    result.assert_outcomes(passed=4)
    by_worker: dict[str, set[str]] = {}
    for path in pytester.path.glob("*.port"):
        by_worker.setdefault(path.name.split("-")[0], set()).add(path.read_text())
    assert len(by_worker) == 2, "both workers ran tests"
    ports = [resources.pop() for resources in by_worker.values() if len(resources) == 1]
    assert len(ports) == 2, "each worker keeps one bench for its session"
    assert ports[0] != ports[1]
