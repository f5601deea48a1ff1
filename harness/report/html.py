"""The report page: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).

Every text that comes from a record, an instrument or a file goes through :func:`_e`
(:func:`html.escape`, quotes included); the only markup inserted unescaped is the SVG that
:mod:`harness.report.plots` produced (serialised by :mod:`xml.etree`, which escapes its text).
"""

from __future__ import annotations

import html
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.report.plots import Plot, sequence_plots
from harness.report.records import Instrument, Outcome, SequenceRun
from harness.run import RunStatus
from harness.verdict import Verdict

_STATUS_EXPLAINED: Mapping[str, str] = {
    RunStatus.RUNNING.value: (
        "No end was recorded: the run was still going when this report was rendered, or its process died "
        "(killed, power lost). What follows is what it had written by then."
    ),
    RunStatus.INTERRUPTED.value: "The run was interrupted (Ctrl-C, SIGTERM or a stop request).",
    RunStatus.ERROR.value: "The run stopped on an error before the end.",
}


def render_page(runs: Sequence[SequenceRun], run_dir: Path) -> str:
    """The whole report for ``runs`` (read from ``run_dir``)."""
    sections = [
        _summary(runs),
        _requirements(runs),
        _benches(runs),
        *(_sequence(run, index) for index, run in enumerate(runs, start=1)),
    ]
    overall = _overall(runs)
    title = f"gridhil validation report: {run_dir.resolve().name}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{_badge(overall)} {_e(title)}</h1>",
            f'<p class="meta">Run directory <code>{_e(run_dir.resolve())}</code>; rendered '
            f"{_e(datetime.now(UTC).isoformat(timespec='seconds'))} from the records alone.</p>",
            _contents(runs),
            "</header>",
            "<main>",
            *sections,
            "</main>",
            _footer(),
            "</body>",
            "</html>",
            "",
        ]
    )


def _overall(runs: Sequence[SequenceRun]) -> Outcome:
    outcomes = {run.outcome for run in runs}
    if Outcome.FAILED in outcomes:
        return Outcome.FAILED
    if Outcome.INCOMPLETE in outcomes:
        return Outcome.INCOMPLETE
    return Outcome.PASSED


def _contents(runs: Sequence[SequenceRun]) -> str:
    links = [
        '<a href="#summary">Summary</a>',
        '<a href="#requirements">Requirements</a>',
        '<a href="#bench">Bench and controller</a>',
    ]
    links += [f'<a href="#seq-{i}">{_e(run.sequence_id)}</a>' for i, run in enumerate(runs, start=1)]
    return f"<nav>{' · '.join(links)}</nav>"


def _summary(runs: Sequence[SequenceRun]) -> str:
    counts = {outcome: sum(run.outcome is outcome for run in runs) for outcome in Outcome}
    verdicts = [v for run in runs for v in run.verdicts]
    failed_verdicts = sum(not v.passed for v in verdicts)
    wall = [run.wall_s for run in runs if math.isfinite(run.wall_s)]
    simulated = [run.reached_s for run in runs if math.isfinite(run.reached_s)]
    starts = sorted(run.started_utc for run in runs if run.started_utc)
    finishes = sorted(run.finished_utc for run in runs if run.finished_utc)
    totals = [
        ("sequences", f"{len(runs)}"),
        ("passed", f"{counts[Outcome.PASSED]}"),
        ("failed", f"{counts[Outcome.FAILED]}"),
        ("incomplete", f"{counts[Outcome.INCOMPLETE]}"),
        (
            "criteria judged",
            f"{len(verdicts)} ({len(verdicts) - failed_verdicts} passed, {failed_verdicts} failed)",
        ),
        ("wall time", f"{sum(wall):.1f} s over the sequences" if wall else "unknown"),
        ("recorded time", f"{sum(simulated):.1f} s on the runs' clock" if simulated else "none"),
        ("started", starts[0] if starts else "unknown"),
        ("last finished", finishes[-1] if finishes else "no run recorded an end"),
    ]
    rows = [
        _row(
            [
                f'<a href="#seq-{index}">{_e(run.sequence_id)}</a>',
                _e(run.title),
                _e(run.status),
                _badge(run.outcome),
                _e(_verdict_count(run.verdicts)),
                _e(f"{_seconds(run.reached_s)} / {_seconds(run.duration_s)}"),
                _e(_seconds(run.wall_s)),
                _e(run.variant or "reference"),
                _e(_text(run.seed)),
            ]
        )
        for index, run in enumerate(runs, start=1)
    ]
    header = ["sequence", "title", "status", "result", "criteria passed", "recorded / planned", "wall"]
    return _section(
        "summary",
        "Summary",
        _definitions(totals) + _table([*header, "variant", "seed"], rows, "sequences"),
    )


@dataclass
class _Requirement:
    """The verdicts and runs counted against one requirement reference."""

    passed: int = 0
    failed: int = 0
    sequences: dict[str, None] = field(default_factory=dict)
    incomplete: dict[str, None] = field(default_factory=dict)

    def count(self, run: SequenceRun, verdicts: Iterable[Verdict]) -> None:
        self.sequences[run.sequence_id] = None
        if run.outcome is Outcome.INCOMPLETE:
            self.incomplete[run.sequence_id] = None
        for verdict in verdicts:
            self.passed += verdict.passed
            self.failed += not verdict.passed

    @property
    def outcome(self) -> Outcome:
        if self.failed:
            return Outcome.FAILED
        if self.incomplete or not self.passed:
            return Outcome.INCOMPLETE
        return Outcome.PASSED


def _requirements(runs: Sequence[SequenceRun]) -> str:
    """Pass/fail per requirement reference: a sequence's references count all its verdicts, a
    criterion's reference counts that verdict."""
    tally: dict[str, _Requirement] = {}
    for run in runs:
        for reference in run.references:
            tally.setdefault(reference, _Requirement()).count(run, run.verdicts)
        for verdict in run.verdicts:
            if verdict.reference and verdict.reference not in run.references:
                tally.setdefault(verdict.reference, _Requirement()).count(run, [verdict])
    rows = [
        _row(
            [
                _e(reference),
                _badge(requirement.outcome),
                _e(f"{requirement.passed}"),
                _e(f"{requirement.failed}"),
                _e(", ".join(requirement.sequences)),
                _e(", ".join(requirement.incomplete) or "none"),
            ]
        )
        for reference, requirement in sorted(tally.items())
    ]
    header = ["requirement reference", "result", "verdicts passed", "failed", "sequences", "incomplete runs"]
    body = _table(header, rows, "requirements") if rows else "<p>No run names a reference.</p>"
    return _section("requirements", "Per requirement reference", body)


def _benches(runs: Sequence[SequenceRun]) -> str:
    """Each distinct bench (instrument identities and calibration, not the per-run resources) once."""
    distinct: dict[tuple[object, ...], tuple[SequenceRun, list[str]]] = {}
    for run in runs:
        distinct.setdefault(run.bench.identity, (run, []))[1].append(run.sequence_id)
    parts = []
    for run, sequences in distinct.values():
        used_by = f"Used by: {', '.join(sequences)}. " if len(distinct) > 1 else ""
        resources = f"Resources as {run.sequence_id} used them; each sequence's section has its own."
        parts.append(f'<p class="meta">{_e(used_by + resources)}</p>' + _bench(run, variant=None))
    return _section("bench", "Bench, instruments and controller", "".join(parts))


def _bench(run: SequenceRun, variant: str | None) -> str:
    """The bench a run used; ``variant`` is the simulated controller variant to name beside the
    controller's identity (None: not named, as for a bench several runs share)."""
    bench = run.bench
    if bench.name is None and not bench.instruments:
        return "<p>The record names no bench: the run stopped before the bench was opened.</p>"
    simulated = {True: "yes (stand-ins on 127.0.0.1)", False: "no (lab instruments)", None: "unknown"}
    facts = [
        ("bench", _text(bench.name)),
        ("bench file", _text(bench.source)),
        ("simulated", simulated[bench.simulated]),
        ("racks rated", _quantity(bench.racks_rated_w, "W")),
        ("nominal phase voltage", _quantity(bench.nominal_phase_v, "V")),
        ("controller", _controller(bench.instrument("controller"), variant)),
    ]
    rows = [
        _row(
            [
                _e(entry.role),
                _e(_text(entry.driver)),
                _e(_identity(entry)),
                _e(_text(entry.serial)),
                _e(_text(entry.firmware)),
                _e(_calibration(entry.calibration_due, run.started_utc)),
                f"<code>{_e(_text(entry.resource))}</code>",
            ]
        )
        for entry in bench.instruments
    ]
    header = ["role", "driver", "identity", "serial", "firmware / version", "calibration due", "resource"]
    return _definitions(facts) + _table(header, rows, "instruments")


def _identity(entry: Instrument) -> str:
    name = " ".join(part for part in (entry.manufacturer, entry.model) if part)
    return name or f"unknown: {_text(entry.identity_error)}"


def _controller(entry: Instrument | None, variant: str | None) -> str:
    if entry is None:
        return "not recorded"
    if entry.manufacturer is None and entry.model is None:
        return f"identity unknown: {_text(entry.identity_error)}"
    described = f"{_identity(entry)}, serial {_text(entry.serial)}, version {_text(entry.firmware)}"
    return described + (f"; variant {variant}" if variant else "")


def _calibration(due: str | None, started_utc: str | None) -> str:
    if due is None:
        return "not given"
    if started_utc and due < started_utc[:10]:
        return f"{due} (past due at the run)"
    return due


def _sequence(run: SequenceRun, index: int) -> str:
    back = '<a class="back" href="#summary">whole report</a>'
    parts = [f"<h2>{back}{_badge(run.outcome)} {_e(run.sequence_id)}: {_e(run.title or 'untitled')}</h2>"]
    if run.problem:
        parts.append(_banner(f"The record cannot be read: {run.problem}"))
        return _section(f"seq-{index}", "", "".join(parts), "sequence")
    if run.status != RunStatus.COMPLETED.value:
        explained = _STATUS_EXPLAINED.get(run.status, "The run did not complete.")
        error = f" Error: {run.error}" if run.error else ""
        parts.append(_banner(f"Status: {run.status}. {explained}{error}"))
    if run.trace_problem:
        parts.append(_banner(run.trace_problem, "note"))
    facts = [
        ("status", run.status),
        ("source", run.source),
        ("references", "; ".join(run.references) or "none"),
        ("started / finished (UTC)", f"{_text(run.started_utc)} / {_text(run.finished_utc)}"),
        ("recorded / planned", f"{_seconds(run.reached_s)} / {_seconds(run.duration_s)} on the run's clock"),
        ("wall time", _seconds(run.wall_s)),
        ("seed, variant, packs", f"{_text(run.seed)}, {run.variant or 'reference'}, {_text(run.packs)}"),
        ("record", str(run.record_path)),
    ]
    parts.append(_definitions(facts))
    parts.append("<h3>Verdicts</h3>")
    parts.append(_verdicts(run.verdicts))
    plots = sequence_plots(run, f"s{index}")
    timeline = [plot for plot in plots if plot.key == "timeline"]
    parts.append("<h3>Timeline of injected events</h3>")
    parts += [_figure(plot) for plot in timeline]
    parts.append(_events(run))
    others = [plot for plot in plots if plot.key != "timeline"]
    if others:
        parts.append("<h3>Plots</h3>")
        parts.append(f'<div class="plots">{"".join(_figure(plot) for plot in others)}</div>')
    parts.append(_details("Reproduce", _reproduce(run)))
    parts.append(_details("Bench of this run", _bench(run, run.variant or "reference")))
    return _section(f"seq-{index}", "", "".join(parts), "sequence")


def _verdicts(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "<p>No verdicts: the run did not get as far as judging its criteria.</p>"
    rows = [
        _row(
            [
                _e(v.name),
                _badge(Outcome.PASSED if v.passed else Outcome.FAILED),
                _e(_number(v.measured)),
                _e(_number(v.limit)),
                _e(_number(v.margin)),
                _e(v.unit),
                _e(_span(v.when)),
                _e(v.reference),
                _e(v.detail),
            ],
            "fail" if not v.passed else "",
        )
        for v in verdicts
    ]
    header = ["criterion", "result", "measured", "limit", "margin", "unit", "evidence window", "reference"]
    return _table([*header, "detail"], rows, "verdicts")


def _events(run: SequenceRun) -> str:
    """Steps as the record lists them (with arguments), then the plant's journal from the trace."""
    entries = [(step.t_s, "step", _call_text(step.call, step.args)) for step in run.steps]
    if run.trace is not None:
        entries += [
            (event.t, event.source, event.text) for event in run.trace.events if event.source != "step"
        ]
    if not entries:
        return "<p>No steps applied and no journal entries.</p>"
    rows = [
        _row([_e(f"{t:.3f}"), _e(source), _e(text)]) for t, source, text in sorted(entries, key=_time_order)
    ]
    return _details(f"Events ({len(rows)})", _table(["t (s)", "source", "what"], rows, "events"), opened=True)


def _call_text(call: str, args: Mapping[str, Any]) -> str:
    arguments = ", ".join(f"{key}={value}" for key, value in args.items())
    return f"{call}({arguments})"


def _time_order(entry: tuple[float, str, str]) -> float:
    return entry[0] if math.isfinite(entry[0]) else math.inf


def _reproduce(run: SequenceRun) -> str:
    environment = run.environment
    command = environment.command_line
    packages = ", ".join(f"{name} {_text(version)}" for name, version in environment.packages)
    facts = [
        ("command line", "not recorded" if command is None else shlex.join(command)),
        ("rerun this sequence alone", _rerun(run)),
        ("seed", _text(run.seed)),
        ("python", _text(environment.python)),
        ("platform", _text(environment.platform)),
        ("packages", packages or "not recorded"),
    ]
    return _definitions(facts, code=("command line", "rerun this sequence alone"))


def _rerun(run: SequenceRun) -> str:
    if run.bench.simulated is False or (run.bench.simulated is None and run.packs is None):
        return f"on its lab bench: the same sequence with the bench file {_text(run.bench.source)}"
    if not run.source or run.source.startswith("<"):
        return f"built in Python ({run.source or 'no source'}): rerun the test that built it"
    command = ["gridhil", "run", run.source]
    if run.seed is not None:
        command += ["--seed", str(run.seed)]
    if run.variant:
        command += ["--variant", run.variant]
    if run.packs is not None:
        command += ["--packs", str(run.packs)]
    return shlex.join(command)


def _footer() -> str:
    versions = ", ".join(f"{name} {_version(name)}" for name in ("gridhil", "matplotlib", "numpy"))
    return f"<footer>Rendered by {_e(versions)}. Self-contained: no script, nothing fetched.</footer>"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def _figure(plot: Plot) -> str:
    note = f'<p class="note">{_e(plot.note)}</p>' if plot.note else ""
    return f"<figure><figcaption>{_e(plot.title)}</figcaption>{plot.svg}{note}</figure>"


def _section(anchor: str, heading: str, body: str, css_class: str = "") -> str:
    title = f"<h2>{_e(heading)}</h2>" if heading else ""
    classes = f' class="{css_class}"' if css_class else ""
    return f'<section id="{_e(anchor)}"{classes}>{title}{body}</section>'


def _details(summary: str, body: str, *, opened: bool = False) -> str:
    state = " open" if opened else ""
    return f"<details{state}><summary>{_e(summary)}</summary>{body}</details>"


def _banner(text: str, kind: str = "alert") -> str:
    return f'<p class="{kind}">{_e(text)}</p>'


def _definitions(facts: Iterable[tuple[str, str]], code: Iterable[str] = ()) -> str:
    as_code = set(code)
    cells = [
        f"<dt>{_e(term)}</dt><dd>{f'<code>{_e(value)}</code>' if term in as_code else _e(value)}</dd>"
        for term, value in facts
    ]
    return f'<dl class="facts">{"".join(cells)}</dl>'


def _table(header: Sequence[str], rows: Sequence[str], css_class: str) -> str:
    head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _row(cells: Sequence[str], css_class: str = "") -> str:
    """A table row of cells that are already HTML (escaped by the caller)."""
    classes = f' class="{css_class}"' if css_class else ""
    return f"<tr{classes}>{''.join(f'<td>{cell}</td>' for cell in cells)}</tr>"


def _badge(outcome: Outcome) -> str:
    label = {Outcome.PASSED: "PASS", Outcome.FAILED: "FAIL", Outcome.INCOMPLETE: "INCOMPLETE"}[outcome]
    return f'<span class="badge {outcome.value}">{label}</span>'


def _verdict_count(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "none judged"
    return f"{sum(v.passed for v in verdicts)} / {len(verdicts)}"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text(value: object) -> str:
    return "unknown" if value is None or value == "" else str(value)


def _number(value: float) -> str:
    """A figure as the verdict table shows it: 6 significant digits, signed infinities, NaN as n/a."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _quantity(value: float, unit: str) -> str:
    return f"{value:.6g} {unit}" if math.isfinite(value) else "unknown"


def _seconds(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.1f} s"


def _span(when: tuple[float, float] | None) -> str:
    if when is None:
        return "none (not tied to a time)"
    t0, t1 = when
    return f"{_number(t0)} s" if t0 == t1 else f"{_number(t0)} s to {_number(t1)} s"


_CSS = """
:root { --pass: #1a7f37; --fail: #c62828; --incomplete: #b26a00; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0; color: #1f2328; background: #f6f8fa; font-size: 14px; line-height: 1.45; }
header, main, footer { max-width: 1500px; margin: 0 auto; padding: 12px 24px; }
header { background: #fff; border-bottom: 1px solid var(--line); max-width: none; }
h1 { font-size: 22px; margin: 8px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 18px;
  margin: 16px 0; }
nav a { margin-right: 4px; }
a { color: #0969da; }
.meta, .note { color: var(--muted); margin: 4px 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px;
  word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
tr.fail td { background: #fff1f0; }
.badge { display: inline-block; min-width: 48px; text-align: center; padding: 1px 7px; border-radius: 10px;
  color: #fff; font-size: 12px; font-weight: 600; letter-spacing: 0.03em; }
.badge.passed { background: var(--pass); }
.badge.failed { background: var(--fail); }
.badge.incomplete { background: var(--incomplete); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0 10px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
p.alert { border-left: 4px solid var(--fail); background: #fff1f0; padding: 8px 12px; }
p.note { border-left: 4px solid var(--incomplete); background: #fff8e6; padding: 6px 12px; }
figure p.note { border: none; background: none; padding: 0; font-size: 12px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px; background: #fff; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.plot { width: 100%; height: auto; display: block; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #0969da; }
footer { color: var(--muted); font-size: 12px; }
main:has(> section.sequence:target) > section:not(:target) { display: none; }
body:has(section.sequence:target) > header { display: none; }
a.back { float: right; font-size: 13px; font-weight: normal; }
"""
