"""Reading bulk-sale CSV uploads and writing CSV exports safely.

Uploads come from spreadsheets: Excel adds a byte-order mark, German Excel separates with
semicolons and writes decimal commas. Everything that is wrong with a file as a whole raises
:class:`BulkFileError` with a message for the person who uploaded it; what is wrong with one
line is reported per line by the sales service. Exports neutralise spreadsheet formulas
(``=cmd|...``), because names typed by customers end up in files opened in Excel.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from .csv_export import csv_bytes

#: The columns of a bulk-sale file, in the order of the downloadable template.
BULK_COLUMNS = ("amount", "template", "layout", "from", "for", "email")
REQUIRED_COLUMNS = ("amount", "template")
#: No line (the header included) may be wider: six columns are valid, spreadsheets add a few
#: empty ones. Anything wider is refused before any per-column work.
MAX_COLUMNS = 30
#: Longer than any valid value (an e-mail address is at most 254 characters).
MAX_CELL_CHARS = 1000
#: Empty lines tolerated besides the rows (spreadsheets leave some); reading stops after them.
MAX_BLANK_LINES = 1000
# Header spellings people use for the same column (compared case-insensitively, trimmed).
_ALIASES = {
    "e-mail": "email",
    "mail": "email",
    "from_name": "from",
    "for_name": "for",
    "to": "for",
    "value": "amount",
}


def max_upload_bytes() -> int:
    return int(settings.SALES_BULK_MAX_BYTES)


def max_upload_rows() -> int:
    return int(settings.SALES_BULK_MAX_ROWS)


class BulkFileError(Exception):
    """The file as a whole cannot be read; ``message`` says what to fix."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class CsvLine:
    line_number: int  # as a spreadsheet shows it: the header is line 1
    cells: dict[str, str]
    extra_cells: int = 0  # values beyond the header's columns
    missing_cells: int = 0


def _decode(data: bytes) -> str:
    try:
        # utf-8-sig drops Excel's byte-order mark when there is one.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkFileError(
            _(
                "The file is not UTF-8 text. In Excel choose “Save as” → “CSV UTF-8 (comma delimited)”, "
                "then upload it again."
            )
        ) from None


def _delimiter(header_line: str) -> str:
    # German Excel writes semicolons; a header line tells which one the file uses.
    return ";" if header_line.count(";") > header_line.count(",") else ","


def parse_bulk_csv(data: bytes, *, deadline: float | None = None) -> list[CsvLine]:
    """Split an upload into lines of named cells. Raises BulkFileError for file-level problems.

    Linear in the size of the file and bounded in time: headers and lines wider than
    :data:`MAX_COLUMNS`, values longer than :data:`MAX_CELL_CHARS` and more rows than allowed are
    refused as soon as they are seen, and ``deadline`` (a :func:`time.monotonic` value; default
    :func:`parse_deadline`) is checked on every line, so no file can hold a worker for long.
    """
    if deadline is None:
        deadline = parse_deadline()
    if len(data) > max_upload_bytes():
        raise BulkFileError(
            _("The file is larger than %(limit)d KB. Split it into smaller files.")
            % {"limit": max_upload_bytes() // 1024}
        )
    if b"\x00" in data:
        raise BulkFileError(_("This is not a CSV text file (it contains binary data)."))
    text = _decode(data)
    if not text.strip():
        raise BulkFileError(_("The file is empty."))
    stripped = text.lstrip()
    first_line = stripped[: stripped.find("\n") if "\n" in stripped else len(stripped)]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True)

    header: list[str] | None = None
    lines: list[CsvLine] = []
    count = 0
    too_many_lines = False
    try:
        for number, row in enumerate(reader, start=1):
            check_deadline(deadline)
            if number > max_upload_rows() + MAX_BLANK_LINES:
                count += _count_rest(reader, deadline)  # only to say how many; nothing more is built
                too_many_lines = True
                break
            _check_width(row, number)
            if not any(c.strip() for c in row):
                continue  # blank lines (before the header too) are skipped, line numbers kept
            if header is None:
                header = _read_header(row)
                continue
            count += 1
            if count > max_upload_rows():
                count += _count_rest(reader, deadline)  # only to say how many; nothing more is built
                break
            cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}
            extra = sum(1 for c in row[len(header) :] if c.strip())
            lines.append(
                CsvLine(
                    line_number=number,
                    cells=cells,
                    extra_cells=extra,
                    missing_cells=max(0, len(header) - len(row)),
                )
            )
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):  # the csv module's own cap (128 KiB)
            raise BulkFileError(_too_long(reader.line_num)) from None
        raise BulkFileError(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None
    if header is None:
        raise BulkFileError(_("The file is empty."))
    if count > max_upload_rows():
        raise BulkFileError(
            _("The file has %(count)d rows; at most %(limit)d can be sold at once. Split the file.")
            % {"count": count, "limit": max_upload_rows()}
        )
    if too_many_lines:
        raise BulkFileError(
            _("The file has more than %(lines)d lines, most of them empty. Remove the empty lines.")
            % {"lines": max_upload_rows() + MAX_BLANK_LINES}
        )
    if not count:
        raise BulkFileError(_("The file has a header line but no rows to sell."))
    return lines


def _count_rest(reader, deadline: float) -> int:
    rest = 0
    for rest_number, row in enumerate(reader):
        if rest_number % 1000 == 0:
            check_deadline(deadline)
        if any(row) and any(c.strip() for c in row):
            rest += 1
    return rest


def parse_deadline() -> float:
    """When reading and checking an upload must be done by (a time.monotonic value)."""
    return time.monotonic() + float(settings.SALES_BULK_PARSE_SECONDS)


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise BulkFileError(
            _("The file took too long to read (more than %(seconds)s seconds). Split it into smaller files.")
            % {"seconds": settings.SALES_BULK_PARSE_SECONDS}
        )


def _check_width(row: list[str], number: int) -> None:
    if len(row) > MAX_COLUMNS:
        raise BulkFileError(
            _(
                "Line %(line)d has %(count)d columns; a bulk-sale file has at most %(limit)d. "
                "The columns are: %(columns)s."
            )
            % {"line": number, "count": len(row), "limit": MAX_COLUMNS, "columns": ", ".join(BULK_COLUMNS)}
        )
    for cell in row:
        if len(cell) > MAX_CELL_CHARS:
            raise BulkFileError(_too_long(number))


def _too_long(number: int) -> str:
    return _("Line %(line)d has a value longer than %(limit)d characters.") % {
        "line": number,
        "limit": MAX_CELL_CHARS,
    }


def _read_header(row: list[str]) -> list[str]:
    """The header's column names (aliases resolved); BulkFileError when it does not fit."""
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in row]
    counts = Counter(h for h in header if h)
    unknown = [h for h in header if h and h not in BULK_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in counts]
    duplicated = sorted(h for h, n in counts.items() if n > 1)
    problems = []
    if missing:
        problems.append(_("missing columns: %(names)s") % {"names": ", ".join(missing)})
    if unknown:
        shown = [name[:40] for name in unknown[:10]] + (["…"] if len(unknown) > 10 else [])
        problems.append(_("unknown columns: %(names)s") % {"names": ", ".join(shown)})
    if duplicated:
        problems.append(
            _("columns given twice: %(names)s") % {"names": ", ".join(d[:40] for d in duplicated)}
        )
    if problems:
        raise BulkFileError(
            _("The header line does not fit (%(problems)s). The columns are: %(columns)s.")
            % {"problems": "; ".join(problems), "columns": ", ".join(BULK_COLUMNS)}
        )
    return header


# --- Writing (cells made formula-safe by csv_export) -------------------------------------------


@dataclass(frozen=True)
class TemplateExample:
    """One of the campaign's templates, as the example file uses it."""

    name: str
    layouts: tuple[int, ...]


#: The example of the file format when no campaign is chosen (its template name is an example).
GENERIC_EXAMPLE = (TemplateExample("Standard", (1,)),)


def bulk_template_csv(
    templates: tuple[TemplateExample, ...] | None = None, *, amount: str = "25.00"
) -> bytes:
    """The downloadable example file: the header and, per template (at most five; by default the
    generic example), a row without a layout and one with its first layout and names. A campaign
    without templates gets the header only: a row naming a template it lacks would not upload."""
    rows = []
    for template in list(GENERIC_EXAMPLE if templates is None else templates)[:5]:
        rows.append([amount, template.name, "", "", "", ""])
        if template.layouts:
            rows.append([amount, template.name, str(template.layouts[0]), "Anna", "Ben", "ben@example.com"])
    return csv_bytes(list(BULK_COLUMNS), rows)
