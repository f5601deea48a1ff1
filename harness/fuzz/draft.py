"""The example a fuzz run is drawing, kept as the sequence file it will be written as.

A :class:`Draft` starts from a :class:`Start` (the ``[initial]`` table, drawn once) and grows as the
rules fire: driver calls become ``[[steps]]``; what a sequence can only state as an initial condition
grows that condition instead: a load step adds a point to the racks' ``steps`` profile, a cloud adds a
cloud to ``[initial.pv]``. Played from the start, the built sequence does what the example did.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from harness.sequence import Cloud, Criterion, Sequence, Step
from harness.sequence_builder import SequenceBuilder

REFERENCES = ("gridhil fuzz (harness.fuzz): a minimal failing sequence found by hypothesis",)
FAULT_CALLS = ("battery.insert_fault", "battery.clear_fault")
REPLACES = {"weld": "open", "open": "weld"}
"""A welded and a failed-open contactor replace each other (the battery emulator keeps one)."""
WELD_CLEARED_BEFORE_END_S = 0.1
"""A weld still inserted at the end is cleared this long before it, after the last sample: a welded
contactor refuses the safe state's output off (the library's welded-contactor sequence does the same)."""


@dataclass(frozen=True)
class Start:
    """What an example starts as: the plant's fleet, charge, racks' profile, PV and grid."""

    packs: int
    seed: int
    soh_mean: float
    aged_years: float
    soc: float
    load: Mapping[str, object]
    """The ``[initial.load]`` table: ``profile`` and its keys."""
    pv_rated_w: float
    grid_live: bool


@dataclass
class Draft:
    """The example so far: its start, the steps applied, the racks' load points and the clouds."""

    start: Start
    steps: list[Step] = field(default_factory=list)
    load_points: list[tuple[float, float]] = field(default_factory=list)
    """The ``steps`` profile's points after the first; empty for any other profile."""
    clouds: list[Cloud] = field(default_factory=list)

    def snapshot(self) -> Draft:
        """A copy that later rules do not change."""
        return Draft(self.start, list(self.steps), list(self.load_points), list(self.clouds))

    def faults(self) -> Iterator[tuple[float, int, frozenset[str]]]:
        """After each fault step: its time, its channel and the kinds of fault that channel then holds."""
        held: dict[int, set[str]] = {}
        for step in self.steps:
            if step.call not in FAULT_CALLS:
                continue
            channel, kind = int(str(step.args["channel"])), str(step.args["kind"]).lower()
            kinds = held.setdefault(channel, set())
            if step.call == "battery.insert_fault":
                kinds.discard(REPLACES.get(kind, ""))
                kinds.add(kind)
            else:
                kinds.discard(kind)
            yield step.at_s, channel, frozenset(kinds)

    def inserted(self) -> dict[int, frozenset[str]]:
        """The faults inserted and not cleared, by channel."""
        last = {channel: kinds for _, channel, kinds in self.faults()}
        return {channel: kinds for channel, kinds in sorted(last.items()) if kinds}

    def welded(self) -> list[int]:
        """Channels whose contactor is welded at the end."""
        return [channel for channel, kinds in self.inserted().items() if "weld" in kinds]

    def load_table(self) -> dict[str, object]:
        """``[initial.load]`` with the load points drawn so far."""
        table = dict(self.start.load)
        if self.load_points:
            first = table["points"]
            assert isinstance(first, list)
            table["points"] = [*first, *([t_s, level] for t_s, level in self.load_points)]
        return table

    def sequence(
        self, sequence_id: str, title: str, duration_s: float, criteria: Iterable[Criterion]
    ) -> Sequence:
        """The draft as a validated sequence of ``duration_s``, judged by ``criteria``."""
        start = self.start
        builder = SequenceBuilder(sequence_id).title(title).duration(duration_s)
        for reference in REFERENCES:
            builder.reference(reference)
        pv: dict[str, object] = {"rated_w": start.pv_rated_w}
        if self.clouds:
            pv["clouds"] = [
                {"at_s": c.at_s, "depth": c.depth, "duration_s": c.duration_s, "ramp_s": c.ramp_s}
                for c in self.clouds
            ]
        builder.initial(
            packs=start.packs,
            seed=start.seed,
            soh_mean=start.soh_mean,
            aged_years=start.aged_years,
            soc=start.soc,
            load=self.load_table(),
            pv=pv,
            grid={"voltage_pu": 1.0 if start.grid_live else 0.0, "frequency_hz": 60.0},
        )
        for step in self.steps:
            builder.at(step.at_s).call(step.role, step.method, **step.args)
        for channel in self.welded():
            builder.at(round(duration_s - WELD_CLEARED_BEFORE_END_S, 1))
            builder.call("battery", "clear_fault", channel=channel, kind="weld")
        for criterion in criteria:
            builder.criterion(criterion.name, **criterion.limits)
        return builder.build()
