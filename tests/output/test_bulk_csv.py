"""Reading bulk-sale files (every kind of malformed file) and writing safe CSV exports."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.sales import csv_file
from vouchers.output.bulk_csv import BulkFileError, bulk_template_csv, parse_bulk_csv
from vouchers.output.csv_export import csv_bytes
from vouchers.output.csv_export import safe_cell as csv_safe


def test_plain_comma_file():
    lines = parse_bulk_csv(csv_file("25,Standard,,,,", "30,Standard,1,Anna,Ben,ben@example.com"))
    assert [line.line_number for line in lines] == [2, 3]
    assert lines[1].cells == {
        "amount": "30",
        "template": "Standard",
        "layout": "1",
        "from": "Anna",
        "for": "Ben",
        "email": "ben@example.com",
    }


def test_excel_bom_semicolons_decimal_commas_crlf_and_umlauts():
    data = "\ufeffAmount;Template;Layout;From;For;E-Mail\r\n12,50;Standard;1;Jürgen;Käthe;k@example.de\r\n"
    lines = parse_bulk_csv(data.encode("utf-8"))
    assert lines[0].cells["amount"] == "12,50"
    assert lines[0].cells["from"] == "Jürgen" and lines[0].cells["email"] == "k@example.de"


def test_only_required_columns_and_blank_lines_are_fine():
    lines = parse_bulk_csv(b"amount,template\n\n25,Standard\n\n")
    assert (
        len(lines) == 1
        and lines[0].line_number == 3
        and lines[0].cells == {"amount": "25", "template": "Standard"}
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"amount,template,layout,from,for,email\n", "no rows"),
        ("amount,template,from\n25,Standard,Jürgen\n".encode("cp1252"), "not UTF-8"),
        (b"amount,layout\n25,1\n", "missing columns: template"),
        (b"amount,template,colour\n25,Standard,red\n", "unknown columns: colour"),
        (b"amount,template,amount\n25,Standard,3\n", "given twice: amount"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        (b'amount,template\n"25,Standard\n', "not valid CSV"),
    ],
)
def test_file_level_problems_have_clear_messages(data, message):
    with pytest.raises(BulkFileError) as info:
        parse_bulk_csv(data)
    assert message in info.value.message


def test_row_and_size_limits(settings):
    rows = ["25,Standard"] * 10_000
    with pytest.raises(BulkFileError) as info:
        parse_bulk_csv(csv_file(*rows, header="amount,template"))
    assert "10000 rows" in info.value.message and "at most 1000" in info.value.message
    settings.SALES_BULK_MAX_BYTES = 100
    with pytest.raises(BulkFileError) as info:
        parse_bulk_csv(b"amount,template\n" + b"25,Standard\n" * 20)
    assert "larger than" in info.value.message


def test_extra_and_missing_cells_are_counted_per_line():
    lines = parse_bulk_csv(b"amount,template,layout\n25,Standard,1,surplus\n25\n")
    assert lines[0].extra_cells == 1
    assert lines[1].missing_cells == 2 and lines[1].cells["template"] == ""


@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_formulas_are_neutralised(value):
    assert csv_safe(value) == "'" + value


def test_export_is_excel_friendly_and_safe():
    data = csv_bytes(["name"], [['=HYPERLINK("http://evil")'], ["Jürgen"], [None]])
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["name"], ['\'=HYPERLINK("http://evil")'], ["Jürgen"], [""]]


def test_template_file_parses_as_a_valid_upload():
    lines = parse_bulk_csv(bulk_template_csv())
    assert len(lines) == 2 and lines[1].cells["layout"] == "1"
