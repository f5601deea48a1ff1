"""The SCPI machinery shared by every SCPI stand-in: parser, parameters, command tree, engine, framing,
and the TCP and pty transports."""

from harness.sim.scpi.engine import ScpiEngine, ScpiInstrument, ScpiSession
from harness.sim.scpi.framing import LineChannel
from harness.sim.scpi.params import (
    Boolean,
    ChannelList,
    Choice,
    Integer,
    Number,
    Param,
    Repeat,
    Text,
    format_response,
    quote,
)
from harness.sim.scpi.parser import ErrorCode, ScpiError
from harness.sim.scpi.pty import ScpiPtyServer
from harness.sim.scpi.tcp import ScpiTcpServer
from harness.sim.scpi.tree import CommandTable

__all__ = [
    "Boolean",
    "ChannelList",
    "Choice",
    "CommandTable",
    "ErrorCode",
    "Integer",
    "LineChannel",
    "Number",
    "Param",
    "Repeat",
    "ScpiEngine",
    "ScpiError",
    "ScpiInstrument",
    "ScpiPtyServer",
    "ScpiSession",
    "ScpiTcpServer",
    "Text",
    "format_response",
    "quote",
]
