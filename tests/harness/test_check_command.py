"""``gridhil check``: a table of who answers at each role, and an exit status a script can trust."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.base import DriverConfig
from drivers.chroma_17040 import BatteryEmulator
from harness.cli import main
from harness.controller.runner import ControllerRunner
from harness.sim.bench import LOOPBACK, SimBench, free_loopback_port
from harness.sim.plant import PlantConfig
from tests.harness import FAKE, FakeDriver, bench_text, calls, fake_registry, fake_role, reference_controller

SMALL = PlantConfig(packs=4, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)
SUBPROCESS_TIMEOUT_S = 60.0
ROW = re.compile(r"^(?P<role>\w+)\s{2,}")


@pytest.fixture
def registry():
    with fake_registry():
        yield


def check(tmp_path: Path, text: str, *options: str) -> list[str]:
    path = tmp_path / "bench.toml"
    path.write_text(text, encoding="utf-8")
    return ["check", "--bench", str(path), *options]


def table(output: str) -> dict[str, dict[str, str]]:
    """Role -> column -> cell, cut at the header's column starts."""
    lines = output.splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("role "))
    header = lines[at]
    names = re.findall(r"\S+(?: \S+)*", header)
    starts = [header.index(name) for name in names]
    found = {}
    for line in lines[at + 1 :]:
        if not line or line.startswith(" ") or not ROW.match(line):
            break
        ends = [*starts[1:], None]
        cells = {name: line[begin:end].strip() for name, begin, end in zip(names, starts, ends, strict=True)}
        found[cells["role"]] = cells
    return found


def statuses(output: str) -> dict[str, str]:
    return {role: cells["status"] for role, cells in table(output).items()}


def test_every_role_answering_as_expected_exits_0(registry, tmp_path, capsys):
    text = bench_text(
        fake_role("battery", extra='expect = { model = "bx-100", firmware = "2.1" }'),
        fake_role("grid", extra="calibration_due = 2999-01-01"),
    )
    assert main(check(tmp_path, text)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("bench 'fake bench' (")
    found = table(out)
    assert list(found) == ["battery", "grid"]
    assert found["battery"] == {
        "role": "battery",
        "driver": FAKE,
        "resource": "fake://ok",
        "identity": "Acme BX-100 (serial SN42, firmware 2.1.0)",
        "calibration due": "-",
        "status": "ok",
    }
    assert (found["grid"]["calibration due"], found["grid"]["status"]) == ("2999-01-01", "ok")
    assert calls("open") == ["battery", "grid"]
    assert sorted(calls("close")) == ["battery", "grid"]
    assert calls("safe") == []


def test_each_kind_of_problem_gets_its_status_and_exit_1(registry, tmp_path, capsys):
    text = bench_text(
        fake_role("battery", "down"),
        fake_role("grid", "garbled"),
        fake_role("load", extra='expect = { model = "63203" }'),
        fake_role("relays", extra="calibration_due = 2000-01-01"),
        fake_role("pcc_meter"),
    )
    assert main(check(tmp_path, text)) == 1
    out = capsys.readouterr().out
    assert statuses(out) == {
        "battery": "unreachable: *IDN?: connection refused",
        "grid": "unreachable: *IDN?: reply 'x\\x00' is not an identity",
        "load": "mismatch: model '63203' expected, instrument says 'BX-100'",
        "relays": "calibration overdue: warning",
        "pcc_meter": "ok",
    }
    found = table(out)
    assert found["relays"]["calibration due"] == "2000-01-01 (overdue)"
    assert found["battery"]["identity"] == "-"
    assert "3 of 5 roles not reachable or not as expected" in out
    assert sorted(calls("close")) == ["battery", "grid", "load", "pcc_meter", "relays"]


def test_an_overdue_calibration_alone_is_a_warning_and_exits_0(registry, tmp_path, capsys):
    assert main(check(tmp_path, bench_text(fake_role("load", extra="calibration_due = 2000-01-01")))) == 0
    assert statuses(capsys.readouterr().out) == {"load": "calibration overdue: warning"}


def test_every_cell_starts_where_its_column_does(registry, tmp_path, capsys):
    later = fake_role("load_meter", extra="calibration_due = 2999-01-01")
    text = bench_text(fake_role("battery", "down"), later)
    main(check(tmp_path, text, "--safe"))
    lines = capsys.readouterr().out.splitlines()[1:4]
    starts = [match.start() for match in re.finditer(r"(?<=  )\S", lines[0])]
    assert len(starts) == 6
    for line in lines[1:]:
        assert all(line[start - 1] == " " and line[start] != " " for start in starts), line


def test_a_bad_bench_file_exits_2_with_the_error_and_touches_nothing(registry, tmp_path, capsys):
    text = bench_text(fake_role("battery"), fake_role("grid", extra="limits = { voltage_max = 900 }"))
    assert main(check(tmp_path, text)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(
        r"gridhil check: .*bench\.toml: \[roles\.grid\] limits: .*voltage_max = 900\.0 V is outside.*\n",
        captured.err,
    )
    assert FakeDriver.log == []


def test_safe_brings_every_reachable_role_to_its_safe_state_and_reports_it(registry, tmp_path, capsys):
    text = bench_text(fake_role("battery"), fake_role("grid", "down"), fake_role("load", "unsafe"))
    assert main(check(tmp_path, text, "--safe")) == 1
    out = capsys.readouterr().out
    assert calls("safe") == ["load", "battery"]
    safe = {role: cells["safe"] for role, cells in table(out).items()}
    assert safe["battery"] == "ok"
    assert safe["grid"] == "-"
    assert re.fullmatch(r"error \(InstrumentTimeout: .*OUTPut OFF: no reply within 2\.0 s\)", safe["load"])
    assert "did not reach their safe state: load\n" in out
    assert sorted(calls("close")) == ["battery", "grid", "load"]


# ------------------------------------------------------------------ the simulated bench


@pytest.fixture(scope="module")
def sim():
    with SimBench(SMALL) as started:
        yield started


@pytest.fixture(scope="module")
def controller(sim):
    with reference_controller(sim) as runner:
        yield runner


def sim_bench_file(sim: SimBench, controller: ControllerRunner, tmp_path: Path, **resources: str) -> Path:
    """The simulated bench's file, its controller role at the reference controller's face, with
    ``resources`` replacing some roles' addresses."""
    text = sim.bench_file(controller.face_resource)
    for role, resource in resources.items():
        text = text.replace(f'"{sim.resources[role]}"', f'"{resource}"')
    path = tmp_path / "sim.toml"
    path.write_text(text, encoding="utf-8")
    return path


EVERY_ROLE = ["battery", "grid", "load", "load_meter", "pcc_meter", "relays", "controller"]


def test_the_simulated_bench_checks_out_in_process(sim, controller, tmp_path, capsys):
    assert main(["check", "--bench", str(sim_bench_file(sim, controller, tmp_path))]) == 0
    found = table(capsys.readouterr().out)
    assert list(found) == EVERY_ROLE
    assert {role: cells["status"] for role, cells in found.items()} == dict.fromkeys(EVERY_ROLE, "ok")
    identities = {role: cells["identity"] for role, cells in found.items()}
    assert identities["battery"].startswith("Chroma 17040 ")
    assert identities["grid"].startswith("Chroma 61845 ")
    assert identities["load"].startswith("Chroma 63203 ")
    assert identities["relays"].startswith("Numato Lab ")


def test_the_simulated_bench_checks_out_as_a_command(sim, controller, tmp_path):
    path = sim_bench_file(sim, controller, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", "--bench", str(path)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(done.stdout) == dict.fromkeys(EVERY_ROLE, "ok")


def test_a_role_at_a_closed_port_is_unreachable_and_exits_1(sim, controller, tmp_path, capsys):
    closed = f"TCPIP::{LOOPBACK}::{free_loopback_port()}::SOCKET"
    assert main(["check", "--bench", str(sim_bench_file(sim, controller, tmp_path, grid=closed))]) == 1
    found = table(capsys.readouterr().out)
    assert found["grid"]["resource"] == closed
    assert found["grid"]["status"].startswith("unreachable: ")
    assert all(cells["status"] == "ok" for role, cells in found.items() if role != "grid")


def test_safe_on_the_simulated_bench_switches_the_battery_off(sim, controller, tmp_path, capsys):
    with BatteryEmulator(DriverConfig("battery", sim.resources["battery"])) as battery:
        battery.set_output(1, True)
    with sim.lock:
        assert sim.plant.packs.contactor_closed[0]
    assert main(["check", "--bench", str(sim_bench_file(sim, controller, tmp_path)), "--safe"]) == 0
    with sim.lock:
        assert not sim.plant.packs.contactor_closed.any()
    assert all(cells["safe"] == "ok" for cells in table(capsys.readouterr().out).values())
