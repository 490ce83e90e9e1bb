"""Plain-text tables printed row by row as results arrive (progress on long runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Column = tuple[str, int, Callable[[dict[str, Any]], str]]


def fmt_float(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


class RowPrinter:
    """Prints a header once, then one aligned row per record."""

    def __init__(self, columns: Sequence[Column], write: Callable[[str], None] = print) -> None:
        self.columns = columns
        self.write = write
        self.header_done = False

    def header(self) -> None:
        self.write("  ".join(name.rjust(width) for name, width, _ in self.columns))
        self.header_done = True

    def row(self, record: dict[str, Any]) -> None:
        if not self.header_done:
            self.header()
        self.write("  ".join(fn(record).rjust(width) for _, width, fn in self.columns))
