"""A protocol-pair fake of ``drivers.visa.VisaTransport``: the exact messages a driver must send, in order.

A test lists ``(sent, reply)`` pairs: ``reply`` is None for a write, the reply text for a query, or a
:class:`Fail` for an instrument that errs instead (a rejection, a timeout, a dropped connection). The
fake takes the driver's place on the wire (:func:`expect`) and fails the test on the first message that
is not the next pair's, on a write where a query was due or the other way round, and on any pair left
over at the end. A mismatch is also remembered, so a driver that swallows errors still fails the test.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from drivers.errors import GarbageReply, InstrumentError, InstrumentRejected


class PairMismatch(AssertionError):
    """The driver sent something other than the next expected message."""


@dataclass(frozen=True)
class Fail:
    """What the transport raises in place of a reply: ``kind`` with ``problem`` (and ``code`` if rejected)."""

    kind: type[InstrumentError]
    problem: str = "simulated failure"
    code: int = 0

    def error(self, role: str, resource: str, command: str) -> InstrumentError:
        if issubclass(self.kind, InstrumentRejected):
            return self.kind(role, resource, command, self.problem, code=self.code)
        return self.kind(role, resource, command, self.problem)


def rejected(code: int, text: str) -> Fail:
    """The instrument queued ``code`` for the message, as ``VisaTransport`` reports its error queue."""
    return Fail(InstrumentRejected, f'{code},"{text}"', code)


Reply = str | Fail | None


class PairTransport:
    """Stands in for ``VisaTransport``: the same methods, answering from a script of pairs."""

    def __init__(
        self,
        role: str,
        resource: str,
        pairs: Sequence[tuple[str, Reply]],
        identity_text: str = "",
    ) -> None:
        self.role = role
        self.resource = resource
        self._pairs = list(pairs)
        self._next = 0
        self._identity_text = identity_text
        self.mismatches: list[str] = []
        self.opened = 0
        self.closed = 0

    @property
    def identity_text(self) -> str:
        return self._identity_text

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def write(self, command: str) -> None:
        self._take(command, query=False)

    def query(self, command: str) -> str:
        reply = self._take(command, query=True)
        assert isinstance(reply, str)
        return reply

    def query_float(self, command: str) -> float:
        return self._number(command, self.query(command))

    def query_floats(self, command: str) -> list[float]:
        return [self._number(command, field) for field in self.query(command).split(",")]

    def assert_done(self) -> None:
        assert not self.mismatches, self.mismatches
        left = self._pairs[self._next :]
        assert not left, f"the driver never sent {[sent for sent, _ in left]}"

    def _take(self, command: str, *, query: bool) -> Reply:
        kind = "query" if query else "write"
        if self._next >= len(self._pairs):
            self._mismatch(f"unexpected {kind} {command!r}: no pair left")
        sent, reply = self._pairs[self._next]
        if sent != command:
            self._mismatch(f"pair {self._next}: expected {sent!r}, the driver sent {kind} {command!r}")
        if query and reply is None:
            self._mismatch(f"pair {self._next}: {command!r} is a write here, the driver queried it")
        if not query and isinstance(reply, str):
            self._mismatch(f"pair {self._next}: {command!r} is a query here, the driver wrote it")
        self._next += 1
        if isinstance(reply, Fail):
            raise reply.error(self.role, self.resource, command)
        return reply

    def _mismatch(self, problem: str) -> None:
        self.mismatches.append(problem)
        raise PairMismatch(problem)

    def _number(self, command: str, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise GarbageReply(
                self.role, self.resource, command, f"expected a number, got {text!r}"
            ) from None


class _OnTheWire(Protocol):
    role: str
    resource: str
    transport: object


@contextmanager
def expect(
    driver: _OnTheWire, pairs: Sequence[tuple[str, Reply]], identity_text: str = ""
) -> Iterator[PairTransport]:
    """Put a :class:`PairTransport` for ``pairs`` in place of ``driver``'s transport; check it is used up."""
    transport = PairTransport(driver.role, driver.resource, pairs, identity_text)
    driver.transport = transport
    yield transport
    transport.assert_done()


GARBAGE = "#!garbage, 12abc;NAN?"
"""What :func:`garbage_instrument` answers to every query but ``*IDN?`` and ``SYSTem:ERRor?``."""


@contextmanager
def garbage_instrument(identity: str) -> Iterator[str]:
    """A raw SCPI socket on 127.0.0.1 that identifies as ``identity``, accepts every command and answers
    every other query with :data:`GARBAGE`; yields its VISA resource string."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def answer(line: str) -> str | None:
        if "?" not in line:
            return None
        if line == "*IDN?":
            return identity
        return '0,"No error"' if line.upper().startswith("SYST") else GARBAGE

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection, connection.makefile("rw", newline="\n") as stream:
                for line in stream:
                    reply = answer(line.strip())
                    if reply is not None:
                        stream.write(reply + "\n")
                        stream.flush()

    thread = threading.Thread(target=serve, name="garbage-instrument", daemon=True)
    thread.start()
    try:
        yield f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET"
    finally:
        stop.set()
        thread.join(5.0)
        listener.close()
