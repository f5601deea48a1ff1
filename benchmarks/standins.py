"""Round-trip latency of the stand-ins through the clients a driver uses, beside two anchors.

Run: ``python benchmarks/standins.py [N]`` (N round trips per row, default 2000, after 100 warm-up).
Rows: a bare TCP echo (the floor of any socket round trip here), pyvisa-sim in-process (what a
fake VISA backend costs; shown only when ``pyvisa-sim`` is installed: ``pip install -e '.[bench]'``),
our Modbus server framework serving 125 constant registers (what pymodbus and the framework cost
before any plant is read), then the stand-ins: an SCPI query over a raw socket via pyvisa-py, the
same over a pseudo-terminal, a 125-register read of the PCS face's pack blocks via the pymodbus
sync client, and a relay-box line query via pyserial. The last column is each median over the
bare echo's, which keeps the figures comparable on a machine whose loopback speed wanders.
Aims from the Simulated-bench issue: SCPI median <= 150 µs, Modbus 125-register read <= 250 µs.
"""

from __future__ import annotations

import socket
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pyvisa
import serial
from pymodbus.client import ModbusTcpClient

from harness.sim.bench import SimBench
from harness.sim.modbus import ModbusStandIn, Point, PointType, RegisterMap
from harness.sim.plant import PlantConfig

WARM_UP = 100

PYVISA_SIM_YAML = """\
spec: "1.1"
devices:
  echo:
    eom:
      TCPIP SOCKET: {q: "\\n", r: "\\n"}
    dialogues:
      - {q: "*IDN?", r: "gridhil,anchor,0,0"}
resources:
  TCPIP::127.0.0.1::5025::SOCKET: {device: echo}
"""


def measure(call: Callable[[], object], n: int) -> tuple[float, float]:
    for _ in range(WARM_UP):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e6, times[int(0.99 * (len(times) - 1))] * 1e6


class _Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


def bare_echo(n: int) -> tuple[float, float]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(server.server_address) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = client.makefile("rb")

            def round_trip() -> None:
                client.sendall(b"*IDN?\n")
                reader.readline()

            return measure(round_trip, n)
    finally:
        server.shutdown()
        server.server_close()


def pyvisa_sim(n: int) -> tuple[float, float] | None:
    try:
        import pyvisa_sim  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        definition = Path(folder) / "anchor.yaml"
        definition.write_text(PYVISA_SIM_YAML)
        rm = pyvisa.ResourceManager(f"{definition}@sim")
        try:
            instrument = rm.open_resource(
                "TCPIP::127.0.0.1::5025::SOCKET", read_termination="\n", write_termination="\n"
            )
            return measure(lambda: instrument.query("*IDN?"), n)
        finally:
            rm.close()


def visa(resource: str, query: str, n: int) -> tuple[float, float]:
    rm = pyvisa.ResourceManager("@py")
    try:
        instrument = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
        return measure(lambda: instrument.query(query), n)
    finally:
        rm.close()


def modbus_framework(n: int) -> tuple[float, float]:
    points = [Point(f"r{i}", PointType.UINT16, address=i, value=i) for i in range(125)]
    with ModbusStandIn({1: RegisterMap(points)}) as server:
        return modbus_block(server.resource, n)


def modbus_block(resource: str, n: int) -> tuple[float, float]:
    url = urlparse(resource)
    client = ModbusTcpClient(url.hostname, port=url.port, timeout=5)
    client.connect()
    try:
        return measure(lambda: client.read_holding_registers(0, count=125, device_id=1), n)
    finally:
        client.close()


def relay_query(resource: str, n: int) -> tuple[float, float]:
    with serial.Serial(urlparse(resource).path, timeout=5) as port:

        def round_trip() -> None:
            port.write(b"relay read 0\r")
            port.read_until(b">")

        return measure(round_trip, n)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    echo = bare_echo(n)
    rows: list[tuple[str, tuple[float, float] | None]] = [
        ("anchor: bare TCP echo, plain socket", echo),
        ("anchor: pyvisa-sim in-process *IDN?", pyvisa_sim(n)),
        ("anchor: Modbus framework, 125 constant regs", modbus_framework(n)),
    ]
    with SimBench(PlantConfig(packs=805)) as bench:
        resources = bench.resources
        rows += [
            ("SCPI MEAS:VOLT? over TCP socket, pyvisa-py", visa(resources["battery"], "MEASure:VOLTage?", n)),
            ("SCPI *IDN? over pty (serial), pyvisa-py ASRL", visa(resources["load"], "*IDN?", n)),
            ("Modbus 125-register read, pymodbus sync TCP", modbus_block(bench.pcs_face.resource, n)),
            ("serial line query (relay box), pyserial pty", relay_query(resources["relays"], n)),
        ]
    print(f"{'path':<48} {'median µs':>10} {'p99 µs':>9} {'x echo':>7}")
    for name, figures in rows:
        if figures is None:
            print(f"{name:<48} {'(pyvisa-sim not installed)':>28}")
        else:
            print(f"{name:<48} {figures[0]:>10.1f} {figures[1]:>9.1f} {figures[0] / echo[0]:>7.2f}")


if __name__ == "__main__":
    main()
