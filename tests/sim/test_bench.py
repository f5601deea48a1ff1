"""The simulated bench as a whole: every role reachable over its real protocol, one plant, one clock."""

from __future__ import annotations

import socket
import threading
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import pyvisa
import serial
from pymodbus.client import ModbusTcpClient

import harness.sim.bench as bench_module
from harness.sim.bench import ROLES, SimBench
from harness.sim.plant import PlantConfig
from tests.processes import kill_if_running, read_until, start_gridhil, stop

SMALL = PlantConfig(packs=12, pcs_rated_w=1.2e6, pv_rated_w=0.0, load_rated_w=0.4e6)


@pytest.fixture
def bench():
    with SimBench(SMALL) as started:
        yield started


def visa_query(resource: str, command: str) -> str:
    rm = pyvisa.ResourceManager("@py")
    try:
        instrument = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=3000)
        try:
            return instrument.query(command).strip()
        finally:
            instrument.close()
    finally:
        rm.close()


def modbus_marker(resource: str) -> list[int]:
    url = urlparse(resource)
    client = ModbusTcpClient(url.hostname, port=url.port, timeout=3)
    assert client.connect()
    try:
        reply = client.read_holding_registers(40000, count=2, device_id=int(url.path.strip("/")))
        assert not reply.isError(), reply
        return list(reply.registers)
    finally:
        client.close()


SUNS = [0x5375, 0x6E53]


def relay_device(resource: str) -> str:
    return urlparse(resource).path


def test_every_role_answers_over_its_own_protocol(bench):
    resources = bench.resources
    for role in ("battery", "grid", "load_meter"):
        assert resources[role].startswith("TCPIP::127.0.0.1::")
        assert "," in visa_query(resources[role], "*IDN?")
    assert "," in visa_query(resources["load"], "*IDN?")
    assert modbus_marker(resources["pcc_meter"]) == SUNS
    assert modbus_marker(bench.pcs_face.resource) == SUNS
    with serial.Serial(relay_device(resources["relays"]), timeout=2) as port:
        port.write(b"relay read 0\r")
        assert b"off" in port.read_until(b">")


def test_bench_file_names_every_role_and_the_pcs_face(bench):
    text = bench.bench_file("modbus+tcp://127.0.0.1:15020/1")
    parsed = tomllib.loads(text)
    assert set(parsed["roles"]) == {role.name for role in ROLES} | {"controller"}
    for role in ROLES:
        table = parsed["roles"][role.name]
        assert (table["driver"], table["resource"]) == (role.driver, bench.resources[role.name])
    assert parsed["roles"]["battery"]["options"] == {"channel_lists": True}, "it takes channel lists"
    assert parsed["bench"]["racks_rated_w"] == bench.plant.load.rated_w
    assert parsed["roles"]["controller"]["resource"] == "modbus+tcp://127.0.0.1:15020/1"
    assert parsed["sim"]["pcs"] == bench.pcs_face.resource
    assert parsed["sim"]["packs"] == SMALL.packs


def test_instruments_see_the_one_plant_in_lock_step(bench):
    battery = bench.resources["battery"]
    bench.plant.pcs.dispatch_w = 0.5e6
    first = float(visa_query(battery, "CHANnel 1;:MEASure:SOC?"))
    assert float(visa_query(battery, "CHANnel 1;:MEASure:SOC?")) == first, "no time passes between reads"
    for _ in range(100):
        bench.advance(0.1)
    later = float(visa_query(battery, "CHANnel 1;:MEASure:SOC?"))
    assert later < first, "10 s of discharge must show on the emulator's SOC"
    assert later == pytest.approx(100 * bench.plant.packs.soc[0], abs=0.01)


def test_close_frees_every_port():
    bench = SimBench(SMALL).start()
    ports = [urlparse(bench.pcs_face.resource).port, urlparse(bench.resources["pcc_meter"]).port]
    ports += [int(bench.resources[r].split("::")[2]) for r in ("battery", "grid", "load_meter")]
    bench.close()
    bench.close()
    for port in ports:
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_gridhil_sim_serves_until_sigterm_then_exits_clean(tmp_path: Path):
    bench_path = tmp_path / "sim.toml"
    process = start_gridhil("sim", "--write-bench", str(bench_path), "--packs", "8")
    try:
        assert str(bench_path) in read_until(process, "stop with Ctrl-C")
        parsed = tomllib.loads(bench_path.read_text())
        battery = parsed["roles"]["battery"]["resource"]
        assert "," in visa_query(battery, "*IDN?")
        assert modbus_marker(parsed["sim"]["pcs"]) == SUNS
        first = float(visa_query(battery, "CHANnel 1;:MEASure:SOC?"))
        code, out, err = stop(process)
    finally:
        kill_if_running(process)
    assert code == 0, err
    assert "every port closed" in out
    assert 0.0 <= first <= 100.0
    port = int(battery.split("::")[2])
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_a_plant_behind_the_wall_clock_still_stops_when_asked(monkeypatch):
    """A real-time plant that falls behind (1 ms sub-steps through a long dead bus on a loaded machine)
    never catches up; it must still heed ``stop`` between its catch-up steps."""
    bench = SimBench(SMALL)
    clock = iter([0.0, 1000.0])  # the first tick finds the plant 1000 s behind
    monkeypatch.setattr(bench_module.time, "monotonic", lambda: next(clock, 1000.0))
    stop = threading.Event()
    steps: list[float] = []

    def advance(dt: float) -> None:
        steps.append(dt)
        if len(steps) == 5:
            stop.set()

    monkeypatch.setattr(bench, "advance", advance)
    bench.run_realtime(stop, tick_s=0.0)
    assert len(steps) == 5, "it stopped in the middle of catching up"
