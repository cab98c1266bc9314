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
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from .csv_export import csv_bytes

#: The columns of a bulk-sale file, in the order of the downloadable template.
BULK_COLUMNS = ("amount", "template", "layout", "from", "for", "email")
REQUIRED_COLUMNS = ("amount", "template")
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


def parse_bulk_csv(data: bytes) -> list[CsvLine]:
    """Split an upload into lines of named cells. Raises BulkFileError for file-level problems."""
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
    first_line = text.lstrip().splitlines()[0]
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True))
    except csv.Error as exc:
        raise BulkFileError(_("The file is not valid CSV: %(error)s") % {"error": exc}) from None

    # Skip blank lines before the header, remembering line numbers.
    numbered = [(number, row) for number, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise BulkFileError(_("The file is empty."))
    _header_number, header_row = numbered[0]
    header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header_row]

    unknown = [h for h in header if h and h not in BULK_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    problems = []
    if missing:
        problems.append(_("missing columns: %(names)s") % {"names": ", ".join(missing)})
    if unknown:
        problems.append(_("unknown columns: %(names)s") % {"names": ", ".join(unknown)})
    if duplicated:
        problems.append(_("columns given twice: %(names)s") % {"names": ", ".join(duplicated)})
    if problems:
        raise BulkFileError(
            _("The header line does not fit (%(problems)s). The columns are: %(columns)s.")
            % {"problems": "; ".join(problems), "columns": ", ".join(BULK_COLUMNS)}
        )

    lines = []
    for number, row in numbered[1:]:
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}
        extra = max(0, len([c for c in row[len(header) :] if c.strip()]))
        lines.append(
            CsvLine(
                line_number=number,
                cells=cells,
                extra_cells=extra,
                missing_cells=max(0, len(header) - len(row)),
            )
        )
    if not lines:
        raise BulkFileError(_("The file has a header line but no rows to sell."))
    if len(lines) > max_upload_rows():
        raise BulkFileError(
            _("The file has %(count)d rows; at most %(limit)d can be sold at once. Split the file.")
            % {"count": len(lines), "limit": max_upload_rows()}
        )
    return lines


# --- Writing (cells made formula-safe by csv_export) -------------------------------------------


def bulk_template_csv() -> bytes:
    """The downloadable example file: the header and two rows (one with a layout and names)."""
    return csv_bytes(
        list(BULK_COLUMNS),
        [
            ["25.00", "Standard", "", "", "", ""],
            ["50.00", "Standard", "1", "Anna", "Ben", "ben@example.com"],
        ],
    )
