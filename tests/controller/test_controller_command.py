"""``gridhil controller`` as its own process against ``gridhil sim``, both on the wall clock."""

from __future__ import annotations

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
from tests.processes import DEADLINE_S, kill_if_running, read_until, start_gridhil, stop

POLL_S = 0.05


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` every POLL_S until it holds, failing at the deadline (a wall-clock process
    cannot be stepped: its state can only be watched)."""
    pause = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        pause.wait(POLL_S)


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
    sim = start_gridhil("sim", "--write-bench", str(bench_path), "--packs", "24")
    controller = None
    try:
        read_until(sim, "stop with Ctrl-C")
        controller = start_gridhil("controller", "--bench", str(bench_path))
        read_until(controller, "serving its face")
        resource = tomllib.loads(bench_path.read_text())["roles"]["controller"]["resource"]
        link = ControllerLink(DriverConfig("controller", resource)).open()
        try:
            first = link.status().heartbeat
            wait_until(lambda: link.status().heartbeat >= first + 5, "five controller cycles")
            assert link.status().mode == ControllerMode.GRID_CONNECTED
        finally:
            link.close()
        code, out, _ = stop(controller)
        assert code == 0 and "stopped" in out
        code, out, _ = stop(sim)
        assert code == 0 and "every port closed" in out
    finally:
        kill_if_running(controller)
        kill_if_running(sim)
