"""Validation reports, rendered from a run directory's records alone: :func:`render_report`.

``records`` reads every ``record.json`` under a run directory (and the trace beside each, tolerating
a crashed run), ``plots`` draws the plots as SVG (matplotlib), ``html`` lays out the one
self-contained page. The user's reference is ``docs/reports.md``; the record's schema ``docs/records.md``.
"""

from __future__ import annotations

from pathlib import Path

from harness.report.html import render_page
from harness.report.records import NoRecordsError, read_runs

REPORT_FILE = "report.html"

__all__ = ["REPORT_FILE", "NoRecordsError", "render_report"]


def render_report(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Render the report of every run under ``run_dir`` to ``out`` (default ``<run_dir>/report.html``).

    Replaces the file whole (never seen half-written). NoRecordsError when ``run_dir`` holds no record.
    """
    root = Path(run_dir)
    page = render_page(read_runs(root), root)
    target = Path(out) if out is not None else root / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target
