"""Stream framing: the byte stream of a socket or serial line cut into a session's program messages."""

from __future__ import annotations

from harness.sim.scpi.engine import ScpiSession
from harness.sim.scpi.parser import ErrorCode, ScpiError


class LineChannel:
    """Frames a byte stream into a session's messages: ``\\n`` ends one, a ``\\r`` before it is dropped.

    ``feed`` returns the reply bytes to send back. A line longer than ``max_line_bytes`` is discarded up to
    its newline with -363; a line that is not UTF-8 is discarded with -101.
    """

    def __init__(self, session: ScpiSession, max_line_bytes: int = 64 * 1024) -> None:
        self._session = session
        self._max_line_bytes = max_line_bytes
        self._line = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> bytes:
        replies = []
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            if self._discarding:
                self._discarding = False
            else:
                self._line += data[start:newline]
                replies.append(self._handle(bytes(self._line)))
            self._line.clear()
            start = newline + 1
        if not self._discarding:
            self._line += data[start:]
        if len(self._line) > self._max_line_bytes:
            self._session.report(ScpiError(ErrorCode.INPUT_BUFFER_OVERRUN))
            self._discarding = True
            self._line.clear()
        return b"".join(replies)

    def finish(self) -> bytes:
        """End of input: an unterminated last line still counts as a message (EOF acts as END)."""
        line = bytes(self._line)
        self._line.clear()
        return self._handle(line) if line else b""

    def _handle(self, line: bytes) -> bytes:
        if len(line) > self._max_line_bytes:
            self._session.report(ScpiError(ErrorCode.INPUT_BUFFER_OVERRUN))
            return b""
        try:
            text = line.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            self._session.report(ScpiError(ErrorCode.INVALID_CHARACTER, f"not UTF-8 at byte {exc.start}"))
            return b""
        reply = self._session.execute(text)
        return b"" if reply is None else reply.encode() + b"\n"
