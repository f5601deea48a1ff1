"""gridhil commands run as their own processes in tests: start, read their output, stop."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

DEADLINE_S = 30.0


def start_gridhil(*args: str) -> subprocess.Popen:
    """``gridhil ARGS`` in a new process, its output unbuffered so it can be read line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(process: subprocess.Popen, marker: str) -> str:
    """What the process prints up to and including the line containing ``marker``, within the deadline."""
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not seen or marker not in seen[-1]:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                pytest.fail(f"no {marker!r}; the process printed {seen!r}")
            line = process.stdout.readline()  # unbuffered: select() still sees what is left
            if not line:
                pytest.fail(f"the process ended before {marker!r}: {process.stderr.read()!r}")
            seen.append(line.decode())
    return "".join(seen)


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    """SIGTERM, then the exit code and what the process printed on stdout and stderr."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE_S)
    return process.returncode, out.decode(), err.decode()


def kill_if_running(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.communicate()
