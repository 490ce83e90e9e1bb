"""The report's text as blocks, written once and rendered twice: as Markdown (report.md) and as
HTML (report.html), so that both say the same thing.

A block is a `Para` (a paragraph; `strong` for a headline) or a `Table` (an introduction, a
header and rows of cells, all plain text). Nothing here knows what a sweep is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Para:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class Table:
    intro: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Para | Table


def markdown(blocks: list[Block]) -> list[str]:
    """The blocks as Markdown lines, each followed by a blank line."""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Para):
            lines += [f"**{block.text}**" if block.strong else block.text, ""]
            continue
        lines += [block.intro, "", _md_row(block.header),
                  "|" + "---|" * len(block.header)]
        lines += [_md_row(row) for row in block.rows]
        lines.append("")
    return lines


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def to_html(blocks: list[Block]) -> list[str]:
    """The blocks as HTML elements (text escaped): <p> (class "headline" when strong, else
    "note"), and a table as its introduction then a <table> with a header row."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Para):
            kind = "headline" if block.strong else "note"
            out.append(f'<p class="{kind}">{html.escape(block.text)}</p>')
            continue
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
        body = "\n".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row)
                         + "</tr>" for row in block.rows)
        out += [f'<p class="note">{html.escape(block.intro)}</p>',
                f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"]
    return out
