"""Tests of the validation report: records read back, plots, the page, ``gridhil report``, the plugin hook."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

from harness.sequence import Sequence
from harness.sequence_builder import SequenceBuilder

VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
SWINGS = {"profile": "training_swings", "period_s": 1.0, "duty": 0.5, "low": 0.3, "high": 0.9, "edge_s": 0.1}
FETCHING_ATTRIBUTES = frozenset({"src", "href", "xlink:href", "action", "poster", "srcset", "data"})


def outage_sequence(sequence_id: str, title: str, duration_s: float = 5.0) -> Sequence:
    """A grid outage at 2 s under training swings: the reference rides it, ``never-island`` does not."""
    return (
        SequenceBuilder(sequence_id)
        .title(title)
        .reference("IEEE 2030.8 unplanned islanding (T1)")
        .initial(soc=0.7, load=SWINGS)
        .at(2.0)
        .call("grid", "outage")
        .duration(duration_s)
        .criterion("itic")
        .criterion("load_served")
        .criterion("soc_bounds")
        .build()
    )


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    section: str
    """The id of the innermost enclosing <section> ("" outside any)."""
    svg: str
    """The aria-label of the enclosing <svg> ("" outside any)."""


class Page(HTMLParser):
    """The report parsed with html.parser: nesting checked, elements, table rows and text by section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self.elements: list[Element] = []
        self.rows: dict[tuple[str, str], list[list[str]]] = {}
        """(section id, table class) -> rows of cell texts (body rows only)."""
        self.text: dict[str, str] = {}
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Page:
        page = cls()
        page.feed(text)
        page.close()
        if page._stack:
            page.errors.append(f"unclosed at the end: {[tag for tag, _ in page._stack]}")
        return page

    def _innermost(self, tag: str, attribute: str) -> str:
        for name, attrs in reversed(self._stack):
            if name == tag:
                return attrs.get(attribute, "")
        return ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self._stack.append((tag, values))
        self._record(tag, values)
        if tag in VOID_ELEMENTS:
            self._stack.pop()
        if tag == "tr" and not self._in("thead"):
            self._row = []
        if tag == "td" and self._row is not None:
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack.append((tag, {name: value or "" for name, value in attrs}))
        self._record(tag, self._stack[-1][1])
        self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if not self._stack or self._stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self._stack[-1][0] if self._stack else 'nothing'}")
            return
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            key = (self._innermost("section", "id"), self._innermost("table", "class"))
            self.rows.setdefault(key, []).append(self._row)
            self._row = None
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        section = self._innermost("section", "id")
        self.text[section] = self.text.get(section, "") + data

    def _in(self, tag: str) -> bool:
        return any(name == tag for name, _ in self._stack)

    def _record(self, tag: str, attrs: dict[str, str]) -> None:
        section = attrs.get("id", "") if tag == "section" else self._innermost("section", "id")
        svg = attrs.get("aria-label", "") if tag == "svg" else self._innermost("svg", "aria-label")
        self.elements.append(Element(tag, attrs, section, svg))

    def in_section(self, section: str, tag: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.section == section and (tag is None or e.tag == tag)]
