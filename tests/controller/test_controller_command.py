"""``gridhil controller`` as its own process against ``gridhil sim``, both on the wall clock."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from drivers.base import DriverConfig
from drivers.controller_link import ControllerLink
from harness.cli import main
from harness.controller.model import ControllerMode
from harness.controller.variants import variant_names

DEADLINE_S = 30.0
POLL_S = 0.05


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """What the process prints up to the line containing ``marker``, within the deadline."""
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not seen or marker not in seen[-1]:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                pytest.fail(f"no {marker!r}; printed {seen!r}")
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"ended before {marker!r}: {process.stderr.read()!r}")
            seen.append(line.decode())
    return "".join(seen)


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` every POLL_S until it holds, failing at the deadline (a wall-clock process
    cannot be stepped: its state can only be watched)."""
    pause = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        pause.wait(POLL_S)


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=DEADLINE_S)
    return process.returncode, out.decode()


def test_list_variants_prints_one_name_per_line(capsys):
    assert main(["controller", "--list-variants"]) == 0
    assert capsys.readouterr().out.split() == variant_names()
    assert len(variant_names()) >= 6


def test_a_bench_without_a_controller_role_is_refused(tmp_path: Path, capsys):
    bench = tmp_path / "bench.toml"
    bench.write_text('[bench]\nname = "x"\n[roles.relays]\ndriver = "numato-relay"\nresource = "serial:///dev/null"\n')
    assert main(["controller", "--bench", str(bench), "--pcs", "modbus+tcp://127.0.0.1:1/1"]) == 2
    assert "roles.controller" in capsys.readouterr().err


def test_the_controller_process_drives_the_sim_process(tmp_path: Path):
    bench_path = tmp_path / "sim.toml"
    sim = start("sim", "--write-bench", str(bench_path), "--packs", "24")
    controller = None
    try:
        read_until(sim, "stop with Ctrl-C")
        controller = start("controller", "--bench", str(bench_path))
        read_until(controller, "serving its face")
        resource = tomllib.loads(bench_path.read_text())["roles"]["controller"]["resource"]
        link = ControllerLink(DriverConfig("controller", resource)).open()
        try:
            first = link.status().heartbeat
            wait_until(lambda: link.status().heartbeat >= first + 5, "five controller cycles")
            assert link.status().mode == ControllerMode.GRID_CONNECTED
        finally:
            link.close()
        code, out = stop(controller)
        assert code == 0 and "stopped" in out
        code, out = stop(sim)
        assert code == 0 and "every port closed" in out
    finally:
        for process in (controller, sim):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
