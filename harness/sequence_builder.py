"""Build a :class:`harness.sequence.Sequence` from Python, for tests that make their own sequences.

The builder only collects the TOML document a file would hold and :meth:`SequenceBuilder.build`
validates it with the same code that reads files, so a built sequence and a parsed one are the same
object and a mistake is the same :class:`harness.sequence.SequenceError` (its source is
``<builder ID>``)::

    sequence = (
        SequenceBuilder("islanding-full-load")
        .title("Unplanned islanding at full rack load")
        .reference("IEEE 2030.8 unplanned islanding (T1)")
        .initial(packs=805, soc=0.8, load={"profile": "constant", "level": 1.0})
        .at(10.0).call("grid", "outage")
        .at(40.0).call("grid", "restore")
        .duration(60.0)
        .criterion("itic")
        .criterion("load_served", max_unserved_j=0)
        .build()
    )
"""

from __future__ import annotations

from typing import Self

from harness.actions import ActionCatalogue
from harness.sequence import Sequence, sequence_from_document


class SequenceBuilder:
    """A fluent builder: each method records part of the document and returns the builder."""

    def __init__(self, sequence_id: str) -> None:
        self._document: dict[str, object] = {"id": sequence_id}
        self._references: list[str] = []
        self._initial: dict[str, object] = {}
        self._steps: list[dict[str, object]] = []
        self._criteria: list[dict[str, object]] = []
        self._at_s: float | None = None

    def title(self, title: str) -> Self:
        self._document["title"] = title
        return self

    def reference(self, reference: str) -> Self:
        """Add a standard or document the sequence follows (call once per reference)."""
        self._references.append(reference)
        return self

    def duration(self, duration_s: float) -> Self:
        self._document["duration_s"] = duration_s
        return self

    def initial(
        self,
        *,
        packs: int | None = None,
        seed: int | None = None,
        soh_mean: float | None = None,
        aged_years: float | None = None,
        soc: float | None = None,
        load: dict[str, object] | None = None,
        pv: dict[str, object] | None = None,
        grid: dict[str, object] | None = None,
    ) -> Self:
        """Set initial conditions; what is left out keeps the format's defaults. The fleet's keys are
        given flat (``packs=805``); ``load``, ``pv`` and ``grid`` are their tables
        (``load={"profile": "training_swings", "period_s": 2.0}``, ``grid={"voltage_pu": 1.0}``)."""
        given = {"packs": packs, "seed": seed, "soh_mean": soh_mean, "aged_years": aged_years}
        fleet = {key: value for key, value in given.items() if value is not None}
        if fleet:
            previous = self._initial.get("fleet", {})
            assert isinstance(previous, dict)
            self._initial["fleet"] = {**previous, **fleet}
        for key, value in (("soc", soc), ("load", load), ("pv", pv), ("grid", grid)):
            if value is not None:
                self._initial[key] = value
        return self

    def at(self, at_s: float) -> Self:
        """The time of the steps that follow, in seconds from the start."""
        self._at_s = at_s
        return self

    def call(self, role: str, method: str, **args: object) -> Self:
        """A step at the current :meth:`at` time: ``role.method(**args)``."""
        if self._at_s is None:
            raise ValueError(f"call({role!r}, {method!r}) before at(): say when the step happens")
        self._steps.append({"at_s": self._at_s, "call": f"{role}.{method}", "args": args})
        return self

    def criterion(self, name: str, **limits: object) -> Self:
        self._criteria.append({"name": name, "limits": limits})
        return self

    def document(self) -> dict[str, object]:
        """The TOML document built so far (what a file with the same content would parse to)."""
        document = dict(self._document)
        document["references"] = list(self._references)
        document["initial"] = dict(self._initial)
        document["steps"] = list(self._steps)
        document["criteria"] = list(self._criteria)
        return document

    def build(self, catalogue: ActionCatalogue | None = None) -> Sequence:
        """The validated sequence; SequenceError on any mistake, as for a file."""
        source = f"<builder {self._document['id']}>"
        return sequence_from_document(self.document(), source, catalogue)
