"""Line protocols over a serial port (pyserial): the transport and the base of serial role drivers.

Resources are pyserial URLs plus one scheme of ours that carries the line settings:

* ``serial:///dev/ttyACM0?baudrate=115200&parity=E`` (``serial://COM3?...`` on Windows): a local port with
  ``baudrate``, ``bytesize`` (5-8), ``parity`` (N, E, O, M, S), ``stopbits`` (1, 1.5, 2), ``xonxoff``,
  ``rtscts``, ``dsrdtr`` (0/1);
* ``/dev/ttyUSB0`` or ``COM3``: a local port at pyserial's defaults (9600 8N1);
* ``socket://host:port`` (raw TCP) and ``rfc2217://host:port[?options]`` (Telnet COM-port control, what
  lab serial device servers speak): handed to pyserial as they are.

Local ports are opened exclusively (``flock``), so two runs cannot share one relay box by accident. Nothing
is retried: a line command may have acted before its reply was lost.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import serial

from drivers.base import Driver, DriverConfig
from drivers.errors import ConnectionLost, InstrumentTimeout, InstrumentUnavailable

log = logging.getLogger(__name__)

_PORT_MAX = 65535
_WINDOWS_PORT = re.compile(r"COM[1-9][0-9]*", re.IGNORECASE)
_PASSED_THROUGH = ("socket", "rfc2217")
_FLAGS = {"0": False, "1": True, "false": False, "true": True}


def _choice(allowed: dict[str, object]) -> object:
    def convert(text: str) -> object:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return allowed[text]

    return convert


def _baudrate(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{text!r} is not a positive integer")
    return int(text)


_CONVERTERS = {
    "baudrate": _baudrate,
    "bytesize": _choice({"5": 5, "6": 6, "7": 7, "8": 8}),
    "parity": _choice({"N": "N", "E": "E", "O": "O", "M": "M", "S": "S"}),
    "stopbits": _choice({"1": 1, "1.5": 1.5, "2": 2}),
    "xonxoff": _choice(_FLAGS),
    "rtscts": _choice(_FLAGS),
    "dsrdtr": _choice(_FLAGS),
}


@dataclass(frozen=True)
class SerialAddress:
    """What pyserial opens for a resource: a device path or pyserial URL, and the line settings."""

    url: str
    settings: dict[str, object] = field(default_factory=dict)
    local: bool = True
    """A port on this machine (locked exclusively), not a network URL."""


def parse_serial_resource(resource: str) -> SerialAddress:
    """The :class:`SerialAddress` of ``resource``; ValueError naming what is wrong."""
    scheme, _, rest = resource.partition("://")
    if not rest:
        return SerialAddress(_device(resource, resource))
    if scheme in _PASSED_THROUGH:
        _check_host_port(resource)
        return SerialAddress(resource, local=False)
    if scheme != "serial":
        raise ValueError(
            f"serial resource {resource!r}: unknown scheme {scheme!r}; use serial://, socket://, rfc2217:// "
            f"or a device path"
        )
    parts = urlsplit(resource)
    device = _device(resource, parts.netloc + parts.path)
    settings: dict[str, object] = {}
    for name, text in parse_qsl(parts.query, keep_blank_values=True):
        converter = _CONVERTERS.get(name)
        if converter is None:
            raise ValueError(
                f"serial resource {resource!r}: unknown setting {name!r}; known: {', '.join(_CONVERTERS)}"
            )
        try:
            settings[name] = converter(text)
        except ValueError as exc:
            raise ValueError(f"serial resource {resource!r}: {name}: {exc}") from None
    return SerialAddress(device, settings)


def check_serial_resource(resource: str) -> None:
    """ValueError naming what is wrong with ``resource`` as a serial resource."""
    parse_serial_resource(resource)


def _device(resource: str, path: str) -> str:
    if (path.startswith("/") and len(path) > 1) or _WINDOWS_PORT.fullmatch(path):
        return path
    raise ValueError(
        f"serial resource {resource!r}: {path!r} is not a device path "
        f"(e.g. serial:///dev/ttyUSB0?baudrate=9600, /dev/ttyACM0, COM3)"
    )


def _check_host_port(resource: str) -> None:
    parts = urlsplit(resource)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= _PORT_MAX:
        raise ValueError(f"serial resource {resource!r}: needs host:port with a port in 1..{_PORT_MAX}")


class SerialLineTransport:
    """One line-protocol instrument on a serial port. Thread-safe: each exchange is atomic.

    Bytes that arrive after a marker are kept for the next read.
    """

    def __init__(
        self, role: str, resource: str, *, termination: bytes = b"\r", timeout_s: float = 2.0
    ) -> None:
        if not timeout_s > 0.0:
            raise ValueError(f"{role}: timeout_s must be positive, got {timeout_s}")
        self.role = role
        self.resource = resource
        self.termination = termination
        self.timeout_s = timeout_s
        self._address = parse_serial_resource(resource)
        self._lock = threading.RLock()
        self._port: serial.SerialBase | None = None
        self._pending = bytearray()

    def open(self) -> None:
        """Open the port; InstrumentUnavailable if it cannot be. Idempotent."""
        with self._lock:
            if self._port is not None:
                return
            port = serial.serial_for_url(
                self._address.url,
                do_not_open=True,
                timeout=self.timeout_s,
                write_timeout=self.timeout_s,
                exclusive=True if self._address.local else None,
                **self._address.settings,
            )
            try:
                port.open()
            except (serial.SerialException, OSError, ValueError) as exc:
                raise InstrumentUnavailable(self.role, self.resource, "", f"cannot open: {exc}") from exc
            self._port = port
            self._pending.clear()

    def close(self) -> None:
        """Close the port; idempotent."""
        with self._lock:
            port, self._port = self._port, None
            if port is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    port.close()

    def write_line(self, line: str) -> None:
        """Send ``line`` followed by the termination."""
        with self._lock:
            port = self._open_port(line)
            log.debug("%s <- %r", self.role, line)
            try:
                port.write(line.encode("ascii") + self.termination)
                port.flush()
            except serial.SerialTimeoutException as exc:
                raise InstrumentTimeout(
                    self.role, self.resource, line, f"could not send within {self.timeout_s} s"
                ) from exc
            except (serial.SerialException, OSError) as exc:
                raise ConnectionLost(self.role, self.resource, line, str(exc)) from exc

    def read_until(self, marker: bytes, *, command: str = "") -> bytes:
        """Everything up to and including ``marker``.

        InstrumentTimeout, with what did arrive, if the marker is not there within ``timeout_s``.
        """
        with self._lock:
            port = self._open_port(command)
            deadline = time.monotonic() + self.timeout_s
            received = self._pending
            while (found := received.find(marker)) < 0:
                remaining_s = deadline - time.monotonic()
                if remaining_s <= 0.0:
                    raise InstrumentTimeout(
                        self.role,
                        self.resource,
                        command,
                        f"no {marker!r} within {self.timeout_s} s; received {bytes(received)!r}",
                    )
                try:
                    port.timeout = remaining_s
                    received += port.read(max(1, port.in_waiting))
                except (serial.SerialException, OSError) as exc:
                    raise ConnectionLost(self.role, self.resource, command, str(exc)) from exc
            end = found + len(marker)
            reply = bytes(received[:end])
            del received[:end]
            log.debug("%s -> %r", self.role, reply)
            return reply

    def exchange(self, line: str, until: bytes) -> bytes:
        """Drop stale input, send ``line``, and read up to ``until``."""
        with self._lock:
            port = self._open_port(line)
            self._pending.clear()
            try:
                port.reset_input_buffer()
            except (serial.SerialException, OSError) as exc:
                raise ConnectionLost(self.role, self.resource, line, str(exc)) from exc
            self.write_line(line)
            return self.read_until(until, command=line)

    def _open_port(self, command: str) -> serial.SerialBase:
        if self._port is None:
            raise ConnectionLost(self.role, self.resource, command, "not open")
        return self._port


class SerialDriver(Driver):
    """Base of serial line-protocol role drivers. Option from the role's table: ``timeout_s`` (default 2.0).

    Subclasses set ``TERMINATION`` to what ends a command line for their instrument.
    """

    OPTIONS = frozenset({"timeout_s"})

    TERMINATION: ClassVar[bytes] = b"\r"

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self.transport = SerialLineTransport(
            config.role,
            config.resource,
            termination=self.TERMINATION,
            timeout_s=config.option("timeout_s", 2.0),
        )

    @classmethod
    def check_resource(cls, resource: str) -> None:
        check_serial_resource(resource)

    def open(self) -> Self:
        self.transport.open()
        return self

    def close(self) -> None:
        self.transport.close()
