"""The plots of one sequence run, as inline SVG text for the report.

matplotlib's object API (:class:`~matplotlib.figure.Figure`, no pyplot) draws each plot: no GUI
backend is loaded and no global figure state is touched, so the pytest plugin can render in the test
process. Text stays text (``svg.fonttype = "none"``) in a generic sans-serif stack the browser
resolves from its own fonts, so the page needs no font file; a heat map is embedded as a PNG
``data:`` URI by matplotlib itself. Mathtext is off: a ``$`` in a record's text is a dollar sign.

The SVG is reworked for inlining several in one HTML page (:func:`_inline_svg`): the XML prolog,
doctype and metadata go, every ``id`` gets the plot's own prefix (references follow), and the evidence
window of each failed criterion becomes an element of class :data:`EVIDENCE_CLASS` carrying the
criterion's name in ``data-criterion`` and a ``<title>`` tooltip.
"""

from __future__ import annotations

import inspect
import io
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from drivers.controller_link import ControllerMode
from harness.criteria import CRITERIA
from harness.criteria.signals import windowed_slope
from harness.report.records import SequenceRun, StepApplied
from harness.sim.itic import (
    ITIC_LOWER_POINTS,
    ITIC_UPPER_POINTS,
    SEMI_F47_POINTS,
    ItiRegion,
    itic_region,
)
from harness.trace import (
    BUS_FREQUENCY_HZ,
    BUS_VOLTAGE_PU,
    CONTROLLER_MODE,
    FLEET_SOC,
    GRID_W,
    LOAD_DEMAND_W,
    LOAD_SERVED_W,
    PACK_CURRENT_A,
    PACK_ISOLATED,
    PACK_SOC,
    PCS_W,
    POWER_CAP_W,
    PV_W,
    Trace,
)
from harness.verdict import Verdict

EVIDENCE_CLASS = "gridhil-evidence"
STYLE: Mapping[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "gridhil-report",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "text.parse_math": False,
    "font.size": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "axes.formatter.useoffset": False,
}
"""rcParams for every plot; applied around drawing and saving only (matplotlib.rc_context)."""
_NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
MAX_POINTS = 3000
"""Points per drawn line; longer series are thinned keeping each bucket's extremes (_thin)."""
SOC_LINES_MAX_PACKS = 32
"""Up to this many packs SOC is drawn as one line a pack; beyond, as a heat map (one image)."""
SOC_BOUND_NEAR = 0.1
"""A ``soc_bounds`` limit is drawn when the packs came this close to it (else it would flatten the plot)."""
HEATMAP_COLUMNS = 600
SOC_SCALE_MIN = 0.01
"""The heat map's colour scale spans the data's own range (so pack-to-pack spread shows), at least this."""
FAULT_HIGHLIGHT_PACKS = 6
"""Pack currents: how many individual packs are drawn beside the fleet's envelope."""
FAULT_BEFORE_S = 2.0
FAULT_AFTER_S = 5.0
ITIC_DURATION_RANGE_S = (1e-4, 100.0)
ITIC_REGION_LABELS = (
    (1.0, 0.35, "no damage region"),
    (0.05, 1.6, "prohibited region"),
    (1.5, 0.97, "no interruption"),
)
"""(duration_s, pu, text) of the ITIC chart's region names, each inside its region."""
RAMP_WINDOW_S = 1.0
"""The window of the grid ramp shown when no ``grid_ramp`` criterion gives one (its own default)."""
WIDE_IN = 7.6
"""Figure width (inches) of the plots shown two a row."""
TIMELINE_WIDE_IN = 14.0
"""The timeline spans the page."""

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_URL_REFERENCE = re.compile(r"url\(#([^)]+)\)")
_EVIDENCE_COLOUR = "#d62728"
_TIME_PLOTS = ("timeline", "rack_power", "bus", "grid", "soc", "pack_currents")
_CRITERION_PLOTS: Mapping[str, tuple[str, ...]] = {
    "itic": ("bus", "itic"),
    "settle_time": ("bus",),
    "frequency_band": ("bus",),
    "rocof": ("bus",),
    "load_served": ("rack_power",),
    "grid_ramp": ("grid",),
    "grid_band_energy": ("grid",),
    "resync": ("bus", "grid"),
    "soc_bounds": ("soc",),
    "isolation_current": ("pack_currents",),
    "fault_isolation": ("pack_currents",),
    "silent_bms": ("pack_currents",),
}
"""Which plots show a failed criterion's evidence window (the timeline shows every one); a criterion
not listed here is shown on every time plot."""


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    svg: str
    note: str = ""
    """What the reader should know about how it is drawn (a time window, a heat map)."""


Marks = dict[str, str]
"""SVG ``gid`` -> the name of the failed criterion whose evidence that element shows."""


def sequence_plots(run: SequenceRun, prefix: str) -> list[Plot]:
    """Every plot the run's record and trace allow, ids prefixed with ``prefix`` (unique in the page)."""
    builders: tuple[Callable[[SequenceRun, str], Plot | None], ...] = (
        timeline,
        rack_power,
        bus,
        itic_chart,
        grid,
        soc,
        pack_currents,
    )
    return [plot for build in builders if (plot := build(run, prefix)) is not None]


def criterion_setting(run: SequenceRun, criterion: str, key: str) -> Any:
    """The limit ``key`` of ``criterion`` as the run judged it: the sequence's, else the criterion's
    default; None when the sequence does not name the criterion or neither gives a value."""
    limits = run.limits_of(criterion)
    if limits is None:
        return None
    return limits[key] if key in limits else criterion_default(criterion, key)


def criterion_default(criterion: str, key: str) -> Any:
    """The default of the criterion function's parameter ``key``; None if it has none."""
    function = CRITERIA.get(criterion)
    parameter = None if function is None else inspect.signature(function).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def timeline(run: SequenceRun, prefix: str) -> Plot | None:
    """The controller's mode over time, the injected steps, the plant's journal and, below, one row
    per failed criterion showing its evidence window."""
    trace = _samples(run)
    if trace is None and not run.steps:
        return None
    failed = _failed(run, "timeline")

    def draw(figure: Figure) -> Marks:
        if failed:
            ax, evidence_ax = figure.subplots(
                2, 1, sharex=True, height_ratios=[4.0, 0.6 + 0.45 * len(failed)]
            )
        else:
            ax, evidence_ax = figure.subplots(), None
        if trace is not None and CONTROLLER_MODE in trace:
            ax.step(trace.t, trace.channel(CONTROLLER_MODE), where="post", color="#555555", label="mode")
        names = [mode.name.lower().replace("_", " ") for mode in ControllerMode]
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.6, len(names) + 0.9)
        for index, step in enumerate(run.steps):
            ax.axvline(step.t_s, color="#1f77b4", linestyle="--", linewidth=1.0)
            ax.annotate(
                _step_label(step),
                (step.t_s, len(names) - 0.3 + 0.6 * (index % 2)),
                color="#1f77b4",
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )
        journal = [] if run.trace is None else [e.t for e in run.trace.events if e.source != "step"]
        if journal:
            ax.plot(journal, np.full(len(journal), -0.35), "|", color="#8c564b", ms=8, label="plant journal")
        _legend(ax, loc="center right")
        marks: Marks = {}
        if evidence_ax is not None:
            marks = _evidence_rows(evidence_ax, run, failed)
        _time_axis(evidence_ax if evidence_ax is not None else ax, run)
        return marks

    title = "Timeline: controller mode, injected steps, plant journal, evidence of failed criteria"
    return _render(prefix, "timeline", title, draw, 2.6 + 0.3 * len(failed), width_in=TIMELINE_WIDE_IN)


def _evidence_rows(ax: Axes, run: SequenceRun, failed: list[tuple[int, Verdict]]) -> Marks:
    """One row per failed criterion: a bar over its evidence window (a tick for an instant)."""
    marks: Marks = {}
    span_s = max(_end_s(run), 1e-9)
    for row, (index, verdict) in enumerate(failed):
        assert verdict.when is not None
        t0, t1 = verdict.when
        width = max(t1 - t0, 0.004 * span_s)
        bars = ax.broken_barh([(t0, width)], (row - 0.3, 0.6), color=_EVIDENCE_COLOUR, alpha=0.75)
        gid = f"evidence-tl-{index}"
        bars.set_gid(gid)
        marks[gid] = verdict.name
    ax.set_yticks(range(len(failed)), [f"FAIL {verdict.name}" for _, verdict in failed])
    ax.set_ylim(len(failed) - 0.4, -0.6)
    ax.grid(False, axis="y")
    return marks


def rack_power(run: SequenceRun, prefix: str) -> Plot | None:
    """The racks' demand against what the power analyzer saw delivered, and the controller's cap."""
    trace = _samples(run, LOAD_DEMAND_W, LOAD_SERVED_W)
    if trace is None:
        return None

    def draw(figure: Figure) -> Marks:
        ax = figure.subplots()
        scale, unit = _power_scale(trace, LOAD_DEMAND_W, LOAD_SERVED_W)
        _line(ax, trace, LOAD_DEMAND_W, scale, label="demanded", color="#7f7f7f", linestyle="--")
        _line(ax, trace, LOAD_SERVED_W, scale, label="delivered", color="#1f77b4")
        if POWER_CAP_W in trace and np.isfinite(trace.channel(POWER_CAP_W)).any():
            _line(ax, trace, POWER_CAP_W, scale, label="cap", color="#ff7f0e", linestyle=":")
        ax.set_ylabel(f"rack power ({unit})")
        marks = _mark_all(ax, run, _failed(run, "rack_power"), "rp")
        _time_axis(ax, run)
        _legend(ax, loc="lower left")
        return marks

    return _render(prefix, "rack_power", "Rack power: demanded vs delivered", draw, 2.6)


def bus(run: SequenceRun, prefix: str) -> Plot | None:
    """Rack-bus RMS voltage and frequency, with the frequency band the sequence judges."""
    trace = _samples(run, BUS_VOLTAGE_PU, BUS_FREQUENCY_HZ)
    if trace is None:
        return None

    def draw(figure: Figure) -> Marks:
        voltage_ax, frequency_ax = figure.subplots(2, 1, sharex=True)
        _line(voltage_ax, trace, BUS_VOLTAGE_PU, 1.0, color="#2ca02c", label="bus voltage")
        for level in (0.9, 1.1):
            voltage_ax.axhline(level, color="#999999", linestyle=":", linewidth=0.8)
        voltage_ax.set_ylabel("voltage (pu)")
        _line(frequency_ax, trace, BUS_FREQUENCY_HZ, 1.0, color="#9467bd", label="bus frequency")
        low = criterion_setting(run, "frequency_band", "low_hz")
        high = criterion_setting(run, "frequency_band", "high_hz")
        for edge in (low, high):
            if isinstance(edge, int | float):
                frequency_ax.axhline(edge, color="#d62728", linestyle="--", linewidth=0.8)
        if isinstance(low, int | float):
            frequency_ax.plot([], [], color="#d62728", linestyle="--", linewidth=0.8, label="band judged")
        frequency_ax.set_ylabel("frequency (Hz)")
        failed = _failed(run, "bus")
        marks = _mark_all(voltage_ax, run, failed, "bv") | _mark_all(frequency_ax, run, failed, "bf")
        _time_axis(frequency_ax, run)
        _legend(voltage_ax, loc="lower left")
        _legend(frequency_ax, loc="lower left")
        return marks

    return _render(prefix, "bus", "Rack bus: voltage and frequency", draw, 3.6)


def itic_chart(run: SequenceRun, prefix: str) -> Plot | None:
    """Every voltage event judged, as (duration, residual), on the ITIC chart (log duration axis)."""
    events = _itic_events(run)
    if events is None:
        return None
    verdict = _itic_verdict(run)

    def draw(figure: Figure) -> Marks:
        ax = figure.subplots()
        ax.set_xscale("log")
        shortest_s, longest_s = ITIC_DURATION_RANGE_S
        lower = [*ITIC_LOWER_POINTS, (longest_s, ITIC_LOWER_POINTS[-1][1])]
        upper = [*ITIC_UPPER_POINTS, (longest_s, ITIC_UPPER_POINTS[-1][1])]
        ax.plot(*zip(*lower, strict=True), color="#333333", linewidth=1.4, label="ITIC lower curve")
        ax.plot(*zip(*upper, strict=True), color="#333333", linewidth=1.4, linestyle="-.", label="ITIC upper")
        if verdict is not None and "semi_f47" in verdict.name:
            f47 = [*SEMI_F47_POINTS, (longest_s, SEMI_F47_POINTS[-1][1])]
            ax.plot(*zip(*f47, strict=True), color="#17becf", linewidth=1.2, label="SEMI F47")
        start, duration, residual, inside = events
        shown = np.clip(duration, shortest_s, longest_s)
        ax.scatter(shown[inside], residual[inside], marker="o", color="#2ca02c", label="within", zorder=3)
        ax.scatter(shown[~inside], residual[~inside], marker="X", color="#d62728", label="outside", zorder=3)
        marks: Marks = {}
        if verdict is not None and not verdict.passed and verdict.when is not None and start.size:
            worst = int(np.argmin(np.abs(start - verdict.when[0])))
            ring = ax.scatter(
                shown[worst],
                residual[worst],
                s=260,
                facecolors="none",
                edgecolors=_EVIDENCE_COLOUR,
                linewidths=2.0,
                label=f"evidence: {verdict.name}",
                zorder=4,
            )
            ring.set_gid("evidence-itic")
            marks["evidence-itic"] = verdict.name
        top = max(2.0, float(np.nanmax(residual, initial=0.0)) * 1.1)
        ax.set_xlim(shortest_s, longest_s)
        ax.set_ylim(-0.04, top)
        for duration_s, level_pu, region in ITIC_REGION_LABELS:
            ax.text(duration_s, level_pu, region, fontsize=7, color="#777777", ha="center")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("event duration (s, log scale)")
        ax.set_ylabel("residual voltage (pu)")
        _legend(ax, loc="upper right")
        return marks

    note = "" if events[0].size else "no voltage events were logged"
    return _render(prefix, "itic", "Rack-bus voltage events on the ITIC chart", draw, 3.2, note)


def grid(run: SequenceRun, prefix: str) -> Plot | None:
    """Power at the grid connection and its ramp over the criterion's window, against the ramp limit."""
    trace = _samples(run, GRID_W)
    if trace is None:
        return None
    window = criterion_setting(run, "grid_ramp", "window_s")
    window_s = float(window) if isinstance(window, int | float) and window > 0 else RAMP_WINDOW_S
    limit = criterion_setting(run, "grid_ramp", "limit_w_per_s")

    def draw(figure: Figure) -> Marks:
        power_ax, ramp_ax = figure.subplots(2, 1, sharex=True)
        scale, unit = _power_scale(trace, GRID_W, PCS_W)
        _line(power_ax, trace, GRID_W, scale, label="grid (import +)", color="#1f77b4")
        for name, colour in ((PCS_W, "#ff7f0e"), (PV_W, "#bcbd22")):
            if name in trace:
                _line(power_ax, trace, name, scale, label=name.removesuffix("_w"), color=colour, alpha=0.6)
        power_ax.set_ylabel(f"power ({unit})")
        ends, slopes = windowed_slope(trace.t, trace.channel(GRID_W), window_s)
        ramp = np.abs(slopes) / scale
        ramp_ax.plot(*_thin(ends, ramp), color="#1f77b4", label=f"|ramp| over {window_s:g} s")
        if isinstance(limit, int | float):
            ramp_ax.axhline(limit / scale, color=_EVIDENCE_COLOUR, linestyle="--", label="ramp limit")
        ramp_ax.set_ylabel(f"ramp ({unit}/s)")
        failed = _failed(run, "grid")
        marks = _mark_all(power_ax, run, failed, "gp") | _mark_all(ramp_ax, run, failed, "gr")
        _time_axis(ramp_ax, run)
        _legend(power_ax, loc="upper left")
        _legend(ramp_ax, loc="upper left")
        return marks

    return _render(prefix, "grid", "Grid power and its ramp limit", draw, 3.6)


def soc(run: SequenceRun, prefix: str) -> Plot | None:
    """SOC of every pack: a line each for a small fleet, a heat map (one image) for hundreds."""
    trace = _samples(run, PACK_SOC)
    if trace is None:
        return None
    packs = trace.channel(PACK_SOC).shape[1]
    heat = packs > SOC_LINES_MAX_PACKS

    def draw(figure: Figure) -> Marks:
        ax = figure.subplots()
        if heat:
            image = _heat_map(ax, trace, trace.channel(PACK_SOC), run)
            figure.colorbar(image, ax=ax, label="SOC (colour scale: the run's range)", pad=0.01)
            ax.set_ylabel("pack")
            ax.grid(False)
        else:
            values = trace.channel(PACK_SOC)
            for pack in range(packs):
                ax.plot(*_thin(trace.t, values[:, pack]), color="#1f77b4", linewidth=0.6, alpha=0.45)
            ax.plot([], [], color="#1f77b4", linewidth=0.6, label=f"{packs} packs")
            if FLEET_SOC in trace:
                _line(ax, trace, FLEET_SOC, 1.0, color="#000000", linewidth=1.6, label="fleet")
            with _all_nan_is_a_gap():
                low, high = float(np.nanmin(values)), float(np.nanmax(values))
            for key in ("min_soc", "max_soc"):
                bound = criterion_setting(run, "soc_bounds", key)
                if isinstance(bound, int | float) and low - SOC_BOUND_NEAR <= bound <= high + SOC_BOUND_NEAR:
                    ax.axhline(bound, color=_EVIDENCE_COLOUR, linestyle="--", linewidth=0.8, label=key)
            ax.set_ylabel("SOC")
            _legend(ax, loc="lower left")
        marks = _mark_all(ax, run, _failed(run, "soc"), "soc")
        _time_axis(ax, run)
        return marks

    note = f"heat map: {packs} packs, one row each" if heat else ""
    return _render(prefix, "soc", "State of charge per pack", draw, 3.0, note)


def pack_currents(run: SequenceRun, prefix: str) -> Plot | None:
    """Pack currents around the faults: the fleet's envelope and the packs the faults concern."""
    trace = _samples(run, PACK_CURRENT_A)
    if trace is None:
        return None
    faults = _fault_times(run, trace)
    part = trace
    if faults:
        t0 = max(min(faults) - FAULT_BEFORE_S, trace.start_s)
        t1 = min(max(faults) + FAULT_AFTER_S, trace.end_s)
        if t0 < t1 and len(around := trace.window(t0, t1)) >= 2:
            part = around
    currents = part.channel(PACK_CURRENT_A)
    chosen = _packs_of_interest(run, part, faults)

    def draw(figure: Figure) -> Marks:
        ax = figure.subplots()
        with _all_nan_is_a_gap():
            low, high = np.nanmin(currents, axis=1), np.nanmax(currents, axis=1)
        keep = np.union1d(_keep(low), _keep(high))
        ax.fill_between(
            part.t[keep],
            low[keep],
            high[keep],
            step="post",
            color="#aec7e8",
            alpha=0.6,
            label="all packs, min-max",
        )
        for pack in chosen:
            ax.step(*_thin(part.t, currents[:, pack]), where="post", linewidth=1.1, label=f"pack {pack + 1}")
        for t in faults:
            ax.axvline(t, color="#8c564b", linestyle="--", linewidth=0.9)
        ax.set_ylabel("pack current (A, discharge +)")
        marks = _mark_all(ax, run, _failed(run, "pack_currents"), "pc")
        ax.set_xlim(part.start_s, part.end_s)
        ax.set_xlabel("time (s)")
        _legend(ax, loc="upper right", ncols=2)
        return marks

    if faults:
        note = f"{part.start_s:g} s to {part.end_s:g} s, around the faults (dashed lines)"
    else:
        note = "no fault in this run: the whole run"
    return _render(prefix, "pack_currents", "Pack currents around faults", draw, 2.8, note)


def _render(
    prefix: str,
    key: str,
    title: str,
    draw: Callable[[Figure], Marks],
    height_in: float,
    note: str = "",
    width_in: float = WIDE_IN,
) -> Plot:
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width_in, height_in), layout="constrained")
        marks = draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    return Plot(key, title, _inline_svg(buffer.getvalue(), f"{prefix}-{key}", marks, title), note)


def _inline_svg(text: str, prefix: str, marks: Marks, title: str) -> str:
    """matplotlib's SVG made fit to sit beside others in one page (see the module docstring)."""
    root = ET.fromstring(text)
    for metadata in root.findall(f"{{{_SVG_NS}}}metadata"):
        root.remove(metadata)
    for element in root.iter():
        element.tag = element.tag.removeprefix(f"{{{_SVG_NS}}}")
        identifier = element.get("id")
        if identifier is not None:
            element.set("id", f"{prefix}-{identifier}")
            if identifier in marks:
                element.set("class", EVIDENCE_CLASS)
                element.set("data-criterion", marks[identifier])
                tooltip = ET.Element("title")
                tooltip.text = f"evidence window of the failed criterion {marks[identifier]}"
                element.insert(0, tooltip)
        href = element.attrib.pop(_XLINK_HREF, None)
        if href is not None:
            element.set("href", f"#{prefix}-{href[1:]}" if href.startswith("#") else href)
        for attribute in ("clip-path", "mask", "style"):
            value = element.get(attribute)
            if value is not None and "url(#" in value:
                element.set(attribute, _URL_REFERENCE.sub(lambda m: f"url(#{prefix}-{m.group(1)})", value))
    root.set("xmlns", _SVG_NS)
    root.set("class", "plot")
    root.set("role", "img")
    root.set("aria-label", title)
    return ET.tostring(root, encoding="unicode")


def _samples(run: SequenceRun, *channels: str) -> Trace | None:
    """The run's trace if it has samples and every channel named; else None (the plot is left out)."""
    trace = run.trace
    if trace is None or len(trace) < 2 or any(name not in trace for name in channels):
        return None
    return trace


def _failed(run: SequenceRun, plot_key: str) -> list[tuple[int, Verdict]]:
    """The run's failed verdicts with a time span whose evidence belongs on ``plot_key``."""
    chosen = []
    for index, verdict in enumerate(run.verdicts):
        if verdict.passed or verdict.when is None or not all(math.isfinite(t) for t in verdict.when):
            continue
        plots = _CRITERION_PLOTS.get(verdict.name.split("[")[0], _TIME_PLOTS)
        if plot_key == "timeline" or plot_key in plots:
            chosen.append((index, verdict))
    return chosen


def _mark_all(ax: Axes, run: SequenceRun, failed: Iterable[tuple[int, Verdict]], axis_tag: str) -> Marks:
    """Shade each failed verdict's evidence window (a line when it is an instant); the gids to mark."""
    marks: Marks = {}
    span_s = max(_end_s(run), 1e-9)
    for index, verdict in failed:
        assert verdict.when is not None
        t0, t1 = verdict.when
        label = f"evidence: {verdict.name}"
        if t1 - t0 < 0.004 * span_s:
            artist = ax.axvline(t0, color=_EVIDENCE_COLOUR, linewidth=2.2, alpha=0.7, label=label)
        else:
            artist = ax.axvspan(
                t0, t1, facecolor=_EVIDENCE_COLOUR, alpha=0.12, edgecolor=_EVIDENCE_COLOUR, label=label
            )
        gid = f"evidence-{axis_tag}-{index}"
        artist.set_gid(gid)
        marks[gid] = verdict.name
    return marks


def _legend(ax: Axes, **placement: Any) -> None:
    """A legend, if anything on ``ax`` has a label (a run with little recorded may have none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**placement)


def _time_axis(ax: Axes, run: SequenceRun) -> None:
    """x from 0 to the sequence's planned end; where a run that did not complete stopped recording."""
    end_s = _end_s(run)
    reached_s = run.reached_s
    if run.status != "completed" and math.isfinite(reached_s):
        ax.axvline(reached_s, color="#000000", linestyle="-.", linewidth=1.0, label="recording ends")
    ax.set_xlim(0.0, end_s)
    ax.set_xlabel("time (s)")


def _end_s(run: SequenceRun) -> float:
    candidates = [t for t in (run.duration_s, run.reached_s) if math.isfinite(t)]
    candidates += [step.t_s for step in run.steps if math.isfinite(step.t_s)]
    return max(candidates, default=1.0) or 1.0


def _line(ax: Axes, trace: Trace, name: str, scale: float, **style: Any) -> None:
    values = np.asarray(trace.channel(name), dtype=float)
    values = np.where(np.isfinite(values), values, np.nan) / scale
    ax.step(*_thin(trace.t, values), where="post", **style)


def _thin(t: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` samples, keeping each bucket's lowest and highest (a spike stays)."""
    keep = _keep(values, max_points)
    return t[keep], values[keep]


def _keep(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the samples :func:`_thin` keeps: the first and last, and each bucket's extremes."""
    count = values.size
    if count <= max_points:
        return np.arange(count)
    buckets = max_points // 2
    size = -(-count // buckets)
    padded = np.full(size * buckets, np.nan)
    padded[:count] = values
    rows = padded.reshape(buckets, size)
    missing = np.isnan(rows)
    low = np.argmin(np.where(missing, np.inf, rows), axis=1)
    high = np.argmax(np.where(missing, -np.inf, rows), axis=1)
    base = np.arange(buckets) * size
    keep = np.unique(np.concatenate([base + low, base + high, [0, count - 1]]))
    return keep[keep < count]


def _power_scale(trace: Trace, *names: str) -> tuple[float, str]:
    """A divisor and unit that put the largest of these channels in a readable range."""
    largest = 0.0
    for name in names:
        if name in trace:
            values = np.abs(np.asarray(trace.channel(name), dtype=float))
            finite = values[np.isfinite(values)]
            largest = max(largest, float(finite.max(initial=0.0)))
    if largest >= 1e6:
        return 1e6, "MW"
    if largest >= 1e3:
        return 1e3, "kW"
    return 1.0, "W"


def _heat_map(ax: Axes, trace: Trace, values: np.ndarray, run: SequenceRun) -> Any:
    """One image, a row per pack, sampled on a uniform time grid (each sample held until the next)."""
    columns = min(HEATMAP_COLUMNS, len(trace))
    grid = np.linspace(trace.start_s, trace.end_s, columns)
    held = np.clip(np.searchsorted(trace.t, grid, side="right") - 1, 0, len(trace) - 1)
    image = values[held].T
    finite = image[np.isfinite(image)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high - low < SOC_SCALE_MIN:
        middle = (low + high) / 2.0
        low, high = middle - SOC_SCALE_MIN / 2.0, middle + SOC_SCALE_MIN / 2.0
    return ax.imshow(
        image,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        extent=(trace.start_s, trace.end_s, 0.5, values.shape[1] + 0.5),
        vmin=low,
        vmax=high,
        cmap="viridis",
    )


def _itic_verdict(run: SequenceRun) -> Verdict | None:
    return next((v for v in run.verdicts if v.name.split("[")[0] == "itic"), None)


def _itic_events(run: SequenceRun) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(start, duration, residual, within the curve) of the events the itic criterion judged (its
    evidence), else of the analyzer's log; None when the run has neither an itic verdict nor a trace."""
    verdict = _itic_verdict(run)
    keys = ("start_s", "duration_s", "residual_pu", "allowed_s")
    if verdict is not None and all(key in verdict.evidence for key in keys):
        start, duration, residual, allowed = (np.ravel(verdict.evidence[key]) for key in keys)
        if start.size == duration.size == residual.size == allowed.size:
            return start, duration, residual, ~(duration > allowed)
    if run.trace is None:
        return None
    logged = run.trace.voltage_events
    if not logged and run.limits_of("itic") is None:
        return None
    duration = np.array([e.duration_s for e in logged], dtype=float)
    residual = np.array([e.residual_pu for e in logged], dtype=float)
    start = np.array([e.start_s for e in logged], dtype=float)
    inside = np.array(
        [itic_region(r, d) is ItiRegion.NO_INTERRUPTION for r, d in zip(residual, duration, strict=True)],
        dtype=bool,
    )
    return start, duration, residual, inside


def _fault_times(run: SequenceRun, trace: Trace) -> list[float]:
    """When faults happened: steps that insert or clear one, and every pack's isolation onset."""
    times = [step.t_s for step in run.steps if "fault" in step.call and math.isfinite(step.t_s)]
    if PACK_ISOLATED in trace:
        isolated = np.asarray(trace.channel(PACK_ISOLATED), dtype=bool)
        onsets = np.flatnonzero((isolated[1:] & ~isolated[:-1]).any(axis=1)) + 1
        times += [float(trace.t[i]) for i in onsets]
    return sorted(set(times))


def _packs_of_interest(run: SequenceRun, part: Trace, faults: list[float]) -> list[int]:
    """The packs named by fault steps, then those whose isolation changed, then the largest current
    swings; at most :data:`FAULT_HIGHLIGHT_PACKS`, as 0-based indices."""
    currents = part.channel(PACK_CURRENT_A)
    packs = currents.shape[1]
    chosen: list[int] = []
    for step in run.steps:
        channel = step.args.get("channel")
        if "fault" in step.call and isinstance(channel, int) and 1 <= channel <= packs:
            chosen.append(channel - 1)
    if PACK_ISOLATED in part:
        isolated = np.asarray(part.channel(PACK_ISOLATED), dtype=bool)
        chosen += [int(p) for p in np.flatnonzero(isolated.any(axis=0) != isolated.all(axis=0))]
    if faults and len(part) >= 2:
        with _all_nan_is_a_gap():
            swing = np.nan_to_num(np.nanmax(currents, axis=0) - np.nanmin(currents, axis=0), nan=-1.0)
        chosen += [int(p) for p in np.argsort(-swing, kind="stable")]
    unique = list(dict.fromkeys(chosen))
    return unique[:FAULT_HIGHLIGHT_PACKS]


def _step_label(step: StepApplied) -> str:
    channel = step.args.get("channel")
    return step.call if channel is None else f"{step.call} ({channel})"


def _all_nan_is_a_gap() -> warnings.catch_warnings:
    """Silence numpy's "All-NaN slice" warning: a sample with no reading is a gap, not an error."""
    return warnings.catch_warnings(action="ignore", category=RuntimeWarning)
