"""Tables: the generic machinery every report renders through: rows of columns as text (fitted to
the terminal's width), markdown or CSV, and JSON. The per-command reports are render/report.py."""
from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
import textwrap
from dataclasses import dataclass

from ..base.errors import EffplanError, did_you_mean

TEXT_KEYS = {"metric", "model", "name", "op", "stage", "family", "kind", "description", "budget", "limit_key", "search",
             "device", "dtype", "phase"}


def csv_cell(value):
    """Integers exact; floats to 12 significant digits (1.1^2 is 1.21, not 1.2100000000000002)."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.12g}"
    return value


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


@dataclass(frozen=True)
class View:
    """The columns text output shows: every one where the text is kept (a file, `to_file`; a pipe; any
    stdout that is not a terminal), on a terminal those that fit its width (`width`, else COLUMNS, else the
    terminal's), every one (`wide`), or the ones named (`columns`: keys or headers, in text and markdown).
    CSV and JSON always keep every column."""
    wide: bool = False
    columns: tuple[str, ...] = ()
    width: int | None = None
    to_file: bool = False

    def text_width(self) -> int | None:
        """The width text must fit, or None where nothing is hidden or wrapped."""
        if self.width:
            return self.width
        if self.to_file or not stdout_is_terminal():
            return None
        return shutil.get_terminal_size((80, 24)).columns


MIN_CUT = 20  # a free-text column is cut to fit, but never below this; then it is hidden
CUT_KEYS = {"description"}


def named_columns(columns, names) -> list:
    """The columns asked for by key or header (any case), in the order asked."""
    known = {}
    for column in columns:
        known.setdefault(column[1].lower(), column)
        known.setdefault(column[0].lower(), column)
    unknown = [n for n in names if n.lower() not in known]
    if unknown:
        keys = [key for _, key, _ in columns]
        raise EffplanError(f"--columns: unknown column '{unknown[0]}'{did_you_mean(unknown[0], keys)}; "
                           f"known: {', '.join(keys)}")
    return list(dict.fromkeys(known[n.lower()] for n in names))


def fit_columns(columns, cells: dict, optional, width: int) -> tuple[list, list]:
    """The columns that fit `width` characters: every column not in `optional`, then the optional
    ones, last first, each that still fits (a free-text column is cut to fit, if MIN_CUT wide);
    returns (shown columns, hidden keys)."""
    widths = {key: max([len(h) + 2, *map(len, cells[key])]) for h, key, _ in columns}  # tabulate pads headers by 2
    optional = [key for key in optional if key in widths]  # a table may lack some (search's device columns)
    shown = {key for _, key, _ in columns} - set(optional)

    def total(keys):
        return sum(widths[k] for k in keys) + 2 * (len(keys) - 1)
    for key in reversed(optional):
        room = width - total(shown | {key})
        if room < 0 and key in CUT_KEYS and widths[key] + room >= MIN_CUT:
            widths[key] += room
            cells[key] = [c if len(c) <= widths[key] else c[:widths[key] - 1] + "…" for c in cells[key]]
            room = 0
        if room >= 0:
            shown.add(key)
    return [c for c in columns if c[1] in shown], [k for k in optional if k not in shown]


def wrap_text(text: str, width: int | None) -> str:
    """Long header and note lines wrapped to the width (None: kept whole); a '# ' line goes on as '#   '."""
    if width is None:
        return text
    lines = []
    for line in text.splitlines():
        indent = "#   " if line.startswith("# ") else "  "
        lines += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                               break_on_hyphens=False) or [""]
    return "\n".join(lines)


def markdown_preamble(text: str) -> str:
    """Header lines as HTML comments (a '# ' line would be an H1 heading on GitHub), other lines as
    paragraphs of their own."""
    return "\n\n".join(f"<!-- {line[2:].replace('-->', '->').replace('--!>', '-!>')} -->" if line.startswith("# ")
                        else markdown_cell(line) for line in text.splitlines() if line)


def text_cell(text: str) -> str:
    """A cell of a text table (or a name in a report's line) on its own line: control characters (a
    newline, a tab) shown as escapes, a leading '#' (which tools read as a comment line) escaped."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return "\\" + text if text.startswith("#") else text


def markdown_cell(text: str) -> str:
    """A cell of a markdown table: on one line, its '|' no column break, its HTML shown as text."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    for char, escaped in (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|")):
        text = text.replace(char, escaped)
    return text


def render_rows(rows: list[dict], columns, fmt: str, preamble: str = "", view: View | None = None,
                optional=(), total: dict | None = None) -> str:
    """Text and markdown show human units; CSV shows exact values under the same column keys. Text
    fits the width by hiding `optional` columns (see View); `total` is a last row (text and markdown)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([key for _, key, _ in columns])
        for row in rows:
            writer.writerow([csv_cell(row[key]) for _, key, _ in columns])
        return buf.getvalue()
    from tabulate import tabulate

    view = view or View()
    listed = rows + ([total] if total else [])
    escape = markdown_cell if fmt == "markdown" else text_cell
    cells = {key: [escape(f(row[key])) if key in row else "" for row in listed] for _, key, f in columns}
    shown, hidden, width = columns, [], view.text_width()
    if view.columns:
        shown = named_columns(columns, view.columns)
    elif fmt == "text" and not view.wide and width is not None:
        shown, hidden = fit_columns(columns, cells, optional, width)
    body = list(zip(*(cells[key] for _, key, _ in shown))) if listed else []
    align = ["left" if key in TEXT_KEYS else "right" for _, key, _ in shown]
    table = tabulate(body, headers=[h for h, _, _ in shown], colalign=align if body else None,  # 0.9 fails on none
                     tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True)
    if total and fmt == "text":  # a rule above the total row, as under the header
        lines = table.split("\n")
        table = "\n".join(lines[:-1] + [lines[1], lines[-1]])
    if fmt == "markdown":
        return (markdown_preamble(preamble) + "\n\n" if preamble else "") + table + "\n"
    headers = {key: h for h, key, _ in columns}
    note = (f"# {len(hidden)} {'column' if len(hidden) == 1 else 'columns'} hidden to fit the terminal's {width} "
            f"characters: {', '.join(headers[k] for k in hidden)} (--wide shows every column, --columns a,b,c "
            f"chooses; files and pipes get them all)" if hidden else "")
    return "".join(part + "\n" for part in (wrap_text(preamble, width), table, wrap_text(note, width)) if part)


_PLAIN = frozenset({str, int, bool})


def to_json(obj) -> str:
    """JSON proper: a NaN or infinity (a figure no file should give, but a device file or an ONNX file's
    metadata may) is written as null, never as the NaN that JSON parsers refuse."""
    return json.dumps(_finite(obj), indent=2, default=_plain, allow_nan=False) + "\n"


def _finite(value):
    if value is None or type(value) in _PLAIN:  # most of a table: exact str, int, bool pass as they are
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _finite(value.item())
    return value


def _plain(value):
    """numpy scalars as numbers, tuples and arrays as lists."""
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else list(value)
