"""SCPI over a pseudo-terminal: a serial instrument whose port is ``/dev/pts/N``, opened by pyserial or by
pyvisa-py as ``ASRL/dev/pts/N::INSTR``. One engine session for whoever is connected, as on a serial line."""

from __future__ import annotations

from harness.sim.pty_server import PtyServer
from harness.sim.scpi.engine import ScpiEngine
from harness.sim.scpi.framing import LineChannel


class ScpiPtyServer(PtyServer):
    """Serves ``engine`` on a new pseudo-terminal until :meth:`close`."""

    def __init__(self, engine: ScpiEngine, *, max_line_bytes: int = 64 * 1024) -> None:
        super().__init__(lambda: LineChannel(engine.open_session(), max_line_bytes), thread_name="scpi-pty")

    @property
    def resource(self) -> str:
        return f"ASRL{self.device_path}::INSTR"
