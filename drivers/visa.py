"""SCPI over VISA (pyvisa; pyvisa-py, ``"@py"``, by default): the transport and the base of SCPI role drivers.

Guard rails (reference/protocols.md §2, §7):

* Both terminations are always set: pyvisa-py's SOCKET defaults (no read termination, ``\\r\\n`` writes)
  make every query time out.
* pyvisa-py "opens" a SOCKET resource on a closed port; the ``*IDN?`` probe right after open turns that
  into :class:`InstrumentUnavailable`.
* pyvisa-py leaves Nagle on and its ``VI_ATTR_TCPIP_NODELAY`` setter is broken in 0.8.1, so TCP no-delay
  is set on its socket directly; a write followed by a query then costs no delayed-ACK round.
* pyvisa-py's SOCKET read spins until the timeout on a connection the peer closed, and its write raises a
  raw ``OSError``. Before every message the socket is peeked, so a dropped connection is seen at once.

Recovery: a query that times out or finds the connection gone is retried once on a new connection (a
stale late reply can never be taken for the next one's); a write is never retried (it may have acted).
When a query times out, ``SYSTem:ERRor?`` is asked first on the same connection: an instrument that
rejected the query stays silent, and its error queue says why.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

import pyvisa
from pyvisa import constants, rname
from pyvisa.errors import VisaIOError
from pyvisa.resources import MessageBasedResource

from drivers.base import Driver, DriverConfig, Identity
from drivers.errors import (
    ConnectionLost,
    GarbageReply,
    InstrumentError,
    InstrumentRejected,
    InstrumentTimeout,
    InstrumentUnavailable,
)

log = logging.getLogger(__name__)

IDENTIFY = "*IDN?"
NEXT_ERROR = "SYSTem:ERRor?"
MAX_ERROR_ENTRIES = 32
"""SCPI error queues hold at least 2 entries, typically 10-30; one that never empties is broken."""
_PORT_MAX = 65535
_R = TypeVar("_R")


class VisaTransport:
    """One SCPI instrument over VISA: messages out, replies in, errors that name role, resource, command.

    Thread-safe: each write with its error-queue check, and each query with its retry, is atomic.
    """

    def __init__(
        self,
        role: str,
        resource: str,
        *,
        visa_library: str = "@py",
        timeout_s: float = 2.0,
        read_termination: str = "\n",
        write_termination: str = "\n",
        check_errors: bool = True,
    ) -> None:
        if not timeout_s > 0.0:
            raise ValueError(f"{role}: timeout_s must be positive, got {timeout_s}")
        self.role = role
        self.resource = resource
        self.visa_library = visa_library
        self.timeout_s = timeout_s
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.check_errors = check_errors
        self._lock = threading.RLock()
        self._instrument: MessageBasedResource | None = None
        self._socket: socket.socket | None = None
        self._identity_text = ""

    @property
    def identity_text(self) -> str:
        """What ``*IDN?`` answered on open."""
        return self._identity_text

    def open(self) -> None:
        """Connect and probe ``*IDN?``; InstrumentUnavailable if nothing (or nothing SCPI) answers."""
        with self._lock:
            if self._instrument is None:
                self._connect()

    def close(self) -> None:
        """Disconnect; idempotent."""
        with self._lock:
            instrument = self._instrument
            self._instrument = self._socket = None
            # Closing what the peer already dropped may fail; either way the session is gone. The
            # resource manager stays open: pyvisa shares one per VISA library across the process,
            # and closing it would close every other driver's session with it.
            if instrument is not None:
                with contextlib.suppress(Exception):
                    instrument.close()

    def write(self, command: str) -> None:
        """Send ``command``; then, if ``check_errors``, read the error queue empty (InstrumentRejected).

        Never retried: ConnectionLost if the connection is gone.
        """
        with self._lock:
            self._require_open(command)
            self._send(command)
            if self.check_errors:
                self._raise_queued_errors(command)

    def query(self, command: str) -> str:
        """The reply to ``command``, without termination or surrounding whitespace.

        A timeout or a lost connection is retried once on a new connection.
        """
        with self._lock:
            self._require_open(command)
            try:
                return self._exchange(command)
            except InstrumentTimeout:
                if self.check_errors:
                    self._raise_rejection_after_timeout(command)
                retry_reason = "timed out"
            except ConnectionLost:
                retry_reason = "lost the connection"
            log.info(
                "%s (%s): %s %s; reconnecting to retry once", self.role, self.resource, command, retry_reason
            )
            self._reconnect(command)
            return self._exchange(command)

    def query_float(self, command: str) -> float:
        """The reply to ``command`` as a number; GarbageReply if it is not one."""
        reply = self.query(command)
        return self._number(command, reply, reply)

    def query_floats(self, command: str) -> list[float]:
        """The comma-separated numbers ``command`` answers; GarbageReply if any is not a number."""
        reply = self.query(command)
        return [self._number(command, field, reply) for field in reply.split(",")]

    def _number(self, command: str, text: str, reply: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise GarbageReply(
                self.role, self.resource, command, f"expected a number, got {reply!r}"
            ) from None

    # ------------------------------------------------------------------ connection

    def _connect(self) -> None:
        try:
            manager = pyvisa.ResourceManager(self.visa_library)
        except Exception as exc:  # pyvisa raises OSError, ValueError or its own errors for a bad library
            raise InstrumentUnavailable(
                self.role, self.resource, "", f"cannot load VISA library {self.visa_library!r}: {exc}"
            ) from exc
        timeout_ms = round(self.timeout_s * 1000)
        try:
            instrument = manager.open_resource(
                self.resource,
                read_termination=self.read_termination,
                write_termination=self.write_termination,
                timeout=timeout_ms,
                open_timeout=timeout_ms,
            )
        except Exception as exc:  # pyvisa-py raises a bare Exception when a TCP connect fails
            raise InstrumentUnavailable(self.role, self.resource, "", f"cannot open: {exc}") from exc
        if not isinstance(instrument, MessageBasedResource):
            instrument.close()
            raise InstrumentUnavailable(self.role, self.resource, "", "not a message-based (SCPI) resource")
        self._instrument = instrument
        self._socket = _tcp_socket(instrument)
        if self._socket is not None:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._identity_text = self._exchange(IDENTIFY)
        except InstrumentError as exc:
            self.close()
            raise InstrumentUnavailable(
                self.role, self.resource, IDENTIFY, f"nothing answers: {exc.problem}"
            ) from exc
        if not self._identity_text:
            self.close()
            raise InstrumentUnavailable(self.role, self.resource, IDENTIFY, "empty identification")

    def _reconnect(self, command: str) -> None:
        self.close()
        try:
            self._connect()
        except InstrumentUnavailable as exc:
            raise ConnectionLost(
                self.role, self.resource, command, f"connection lost, and reconnecting failed: {exc.problem}"
            ) from exc

    def _require_open(self, command: str) -> None:
        if self._instrument is None:
            raise ConnectionLost(self.role, self.resource, command, "not open")

    def _peer_gone(self) -> bool:
        """Whether the TCP peer closed or reset the connection (never blocks; False for non-TCP)."""
        if self._socket is None:
            return False
        try:
            return self._socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    # ------------------------------------------------------------------ messages

    def _send(self, command: str) -> None:
        if self._peer_gone():
            raise ConnectionLost(self.role, self.resource, command, "the instrument closed the connection")
        log.debug("%s <- %s", self.role, command)
        self._io(command, lambda instrument: instrument.write(command))

    def _exchange(self, command: str) -> str:
        """Write ``command`` and read one reply line; no retry."""
        self._send(command)
        reply = self._io(command, lambda instrument: instrument.read()).strip()
        log.debug("%s -> %s", self.role, reply)
        return reply

    def _io(self, command: str, operation: Callable[[MessageBasedResource], _R]) -> _R:
        instrument = self._instrument
        if instrument is None:
            raise ConnectionLost(self.role, self.resource, command, "not open")
        try:
            return operation(instrument)
        except VisaIOError as exc:
            if exc.error_code == constants.StatusCode.error_timeout:
                raise InstrumentTimeout(
                    self.role, self.resource, command, f"no reply within {self.timeout_s} s"
                ) from exc
            raise ConnectionLost(self.role, self.resource, command, exc.description) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConnectionLost(self.role, self.resource, command, f"{type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------ error queue

    def _queued_errors(self, command: str) -> list[tuple[int, str]]:
        """Every entry of the error queue, oldest first, reading ``SYSTem:ERRor?`` until it says 0."""
        entries = []
        for _ in range(MAX_ERROR_ENTRIES):
            reply = self._exchange(NEXT_ERROR)
            code = self._error_code(command, reply)
            if code == 0:
                return entries
            entries.append((code, reply))
        raise GarbageReply(
            self.role, self.resource, command, f"{NEXT_ERROR} never said 0 in {MAX_ERROR_ENTRIES} reads"
        )

    def _error_code(self, command: str, reply: str) -> int:
        """The code of an error entry, ``<code>,"<text>"`` (SCPI-99 §21.8); a bare ``0`` is accepted too."""
        code_text, _, description = reply.partition(",")
        try:
            code = int(code_text)
        except ValueError:
            code = None
        if code is None or (code != 0 and not description.strip().startswith('"')):
            raise GarbageReply(
                self.role, self.resource, command, f"{NEXT_ERROR} answered {reply!r}, not an error entry"
            )
        return code

    def _raise_queued_errors(self, command: str) -> None:
        entries = self._queued_errors(command)
        if entries:
            raise InstrumentRejected(
                self.role,
                self.resource,
                command,
                "; ".join(entry for _, entry in entries),
                code=entries[0][0],
            )

    def _raise_rejection_after_timeout(self, command: str) -> None:
        """After a query timed out: InstrumentRejected if the error queue holds why, else return."""
        try:
            self._raise_queued_errors(command)
        except (InstrumentTimeout, ConnectionLost, GarbageReply):
            return  # silent or confused as well: the caller reconnects and retries


def _tcp_socket(instrument: MessageBasedResource) -> socket.socket | None:
    """pyvisa-py's socket under a TCPIP SOCKET resource; None for other resources and other VISA libraries."""
    sessions = getattr(instrument.visalib, "sessions", None)
    session = sessions.get(instrument.session) if isinstance(sessions, dict) else None
    interface = getattr(session, "interface", None)
    if isinstance(interface, socket.socket) and interface.type == socket.SOCK_STREAM:
        return interface
    return None


def check_visa_resource(resource: str) -> None:
    """ValueError naming what is wrong with ``resource`` as a VISA resource string."""
    try:
        parsed = rname.parse_resource_name(resource)
    except rname.InvalidResourceName as exc:
        raise ValueError(
            f"VISA resource {resource!r}: {exc.msg} (e.g. TCPIP::10.0.0.20::5025::SOCKET, "
            f"TCPIP::10.0.0.20::hislip0::INSTR, ASRL/dev/ttyUSB0::INSTR)"
        ) from None
    if isinstance(parsed, rname.TCPIPSocket):
        port = parsed.port
        if not port.isdigit() or not 1 <= int(port) <= _PORT_MAX:
            raise ValueError(f"VISA resource {resource!r}: port {port!r} is not a number in 1..{_PORT_MAX}")


def identity_from_idn(text: str) -> Identity:
    """An :class:`Identity` from an ``*IDN?`` reply: ``manufacturer,model,serial,firmware``.

    Lenient, as real instruments are: missing fields are empty, extra commas stay in the firmware field.
    """
    fields = [field.strip() for field in text.split(",", 3)]
    fields += [""] * (4 - len(fields))
    return Identity(*fields)


class VisaDriver(Driver):
    """Base of SCPI role drivers on VISA.

    Options from the role's table: ``visa_library`` (default ``"@py"``), ``timeout_s`` (default 2.0).
    Subclasses whose instrument frames differently override the class attributes below.
    """

    OPTIONS = frozenset({"visa_library", "timeout_s"})

    READ_TERMINATION: ClassVar[str] = "\n"
    WRITE_TERMINATION: ClassVar[str] = "\n"
    CHECK_ERRORS: ClassVar[bool] = True
    """Read ``SYSTem:ERRor?`` after every write (the instrument must implement it)."""

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.transport = VisaTransport(
            config.role,
            config.resource,
            visa_library=config.option("visa_library", "@py"),
            timeout_s=config.option("timeout_s", 2.0),
            read_termination=self.READ_TERMINATION,
            write_termination=self.WRITE_TERMINATION,
            check_errors=self.CHECK_ERRORS,
        )

    @classmethod
    def check_resource(cls, resource: str) -> None:
        check_visa_resource(resource)

    def open(self) -> Self:
        self.transport.open()
        return self

    def close(self) -> None:
        self.transport.close()

    def identity(self) -> Identity:
        return identity_from_idn(self.transport.identity_text)
