"""Imports every built-in driver module, so that each one's ``@register`` runs.

:mod:`drivers.registry` imports this module before it looks a name up; a new built-in driver is listed here.
"""

from drivers import (
    chroma_17040,
    chroma_61800,
    chroma_63200,
    controller_link,
    numato_relay,
    sunspec_meter,
    yokogawa_wt,
)

__all__ = [
    "chroma_17040",
    "chroma_61800",
    "chroma_63200",
    "controller_link",
    "numato_relay",
    "sunspec_meter",
    "yokogawa_wt",
]
