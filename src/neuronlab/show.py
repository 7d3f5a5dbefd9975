"""The one way a string that came from a file reaches a terminal or a spreadsheet.

A stored string (a class name, a saved key, a job's error, a file name) may be crafted: ANSI escapes
clear the screen or fake rows, newlines forge lines, megabyte strings flood the terminal, and a CSV cell
starting with ``=`` runs as a formula in a spreadsheet.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

SHOWN_LIMIT = 200
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection
_ESCAPED = ("Cc", "Cf", "Cs", "Zl", "Zp")  # control and format characters; Cs: a file name's non-UTF-8 byte


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """``value`` as one printable line: control and format characters escaped (``\\x1b``, ``\\n``,
    ``\\udce9``), cut to ``limit`` characters with ``…`` where it was longer."""
    text = str(value)
    escaped = (
        c.encode("unicode_escape").decode() if unicodedata.category(c) in _ESCAPED else c
        for c in text[:limit]
    )
    return "".join(escaped) + ("…" if len(text) > limit else "")


def csv_cell(value: Any) -> Any:
    """A text cell neutralised against spreadsheet formulas (a leading ``'``, as OWASP advises);
    numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def aligned(title: str, rows: Sequence[tuple[str, str]]) -> str:
    """A title over ``label  value`` lines, the labels padded to one width: no box, so that a long path or
    command copies whole (a run's summary, an export's)."""
    width = max(len(label) for label, _ in rows)
    return "\n".join([title, *(f"  {label:<{width}}  {value}" for label, value in rows)])
