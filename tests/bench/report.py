"""What every measure hands the runner: rows of the headline table and a section of BENCHMARKS.md."""

# ruff: noqa: RUF001 - the report prints typographic signs (multiplication sign, en dash) on purpose

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Row", "Section", "markdown_table", "render_document", "text_table"]

_HEADERS = ("#", "measure", "median", "min–max", "baseline (same run)", "ratio", "target")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the headline table."""

    measure: str
    what: str
    median: str
    spread: str = ""
    baseline: str = ""
    ratio: str = ""
    target: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row's cells, in ``_HEADERS`` order."""
        return (self.measure, self.what, self.median, self.spread, self.baseline, self.ratio, self.target)


@dataclass(frozen=True)
class Section:
    """One measure's part of BENCHMARKS.md: its rows, how it was measured, and any detail tables."""

    number: str
    title: str
    rows: list[Row]
    method: list[str]
    details: list[str] = field(default_factory=list)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table (``|`` in cells escaped)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def text_table(rows: Sequence[Row]) -> str:
    """The headline table for a terminal."""
    cells = [_HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(_HEADERS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells)


def render_document(header: Sequence[str], sections: Sequence[Section], footer: Sequence[str] = ()) -> str:
    """BENCHMARKS.md: the header, the headline table, then each section."""
    lines = [*header, "", "## Headline figures", ""]
    lines += markdown_table(_HEADERS, [row.cells() for section in sections for row in section.rows])
    for section in sections:
        lines += ["", f"## {section.number}. {section.title}", "", *section.method]
        if section.details:
            lines += ["", *section.details]
    if footer:
        lines += ["", *footer]
    return "\n".join(lines) + "\n"
