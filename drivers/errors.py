"""Errors a driver raises. Every one names the role, the resource and the command it was about.

A test engineer reading a failure at 2 a.m. must see which instrument, at which address, doing
what: ``battery (TCPIP::10.0.0.20::60000::SOCKET): MEASure:VOLTage?: no reply within 2.0 s``.
"""

from __future__ import annotations


class InstrumentError(Exception):
    """Base of every driver error."""

    def __init__(self, role: str, resource: str, command: str, problem: str) -> None:
        self.role = role
        self.resource = resource
        self.command = command
        self.problem = problem
        where = f"{role} ({resource})"
        super().__init__(f"{where}: {command}: {problem}" if command else f"{where}: {problem}")


class InstrumentUnavailable(InstrumentError):
    """Nothing answers at the resource: refused, unreachable, no such port or device."""


class InstrumentTimeout(InstrumentError):
    """The instrument did not answer in time."""


class ConnectionLost(InstrumentError):
    """The connection dropped while talking to the instrument."""


class GarbageReply(InstrumentError):
    """The instrument answered something that is not what the command returns."""


class InstrumentRejected(InstrumentError):
    """The instrument refused the command: an SCPI error-queue entry or a Modbus exception."""

    def __init__(self, role: str, resource: str, command: str, problem: str, code: int) -> None:
        self.code = code
        super().__init__(role, resource, command, problem)


class LimitViolation(InstrumentError):
    """A setpoint outside the instrument's range or the bench's limits; nothing was sent."""


class IdentityMismatch(InstrumentError):
    """The instrument is not the model (or firmware) the bench file expects."""
