"""Mnemonics as an instrument manual spells them (``VOLTage``), and the range of their numeric suffixes.

Shared by the command tree (header nodes) and the parameter types (keywords such as ``MAXimum``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUFFIX_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Mnemonic:
    """One node as a manual spells it: ``VOLTage`` -> short ``VOLT``, long ``VOLTAGE``."""

    short: str
    long: str

    @classmethod
    def parse(cls, spelled: str) -> Mnemonic:
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)([a-z]*)", spelled)
        if match is None:
            raise ValueError(f"{spelled!r} is not a mnemonic (upper-case short form, lower-case rest)")
        return cls(match.group(1), spelled.upper())

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.short,) if self.short == self.long else (self.short, self.long)
