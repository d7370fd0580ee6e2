"""Reading a start list out of an .xlsx workbook or a CSV file.

Spreadsheets are untrusted and parsing them is slow, so `read_start_list` runs in the worker process
(`read_start_list_in_worker`, on a `WorkerPool`): the event loop never stalls, and a stuck or crashing
parse can be killed.
"""
from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from collections.abc import Iterable
from typing import Any

from actors.jobs.pool import WorkerDied, WorkerPool, WorkerTimeout
from actors.rules import CommandError, normalize_name
from actors.rules.commands import MAX_COMPETITORS
from actors.rules.names import MAX_NAME_LENGTH, clean_text

MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024
MAX_ZIP_ENTRIES = 1000
PARSE_TIMEOUT_S = 20.0
REQUIRED_ENTRIES = ("[Content_Types].xml", "xl/workbook.xml")
# Tried in order when the CSV is not UTF-8: Romanian Windows exports are cp1250, Western ones cp1252.
# (Plain latin-1 would add nothing: it decodes any byte, but 0x80-0x9F become control characters.)
CSV_FALLBACK_ENCODINGS = ("cp1250", "cp1252")
CSV_DELIMITERS = ",;"
CSV_SNIFF_CHARS = 16 * 1024  # Sniffer's quote regex is quadratic in a line's length: keep its input small
MAX_LISTED_DUPLICATES = 10
# Control characters a text file does not contain (tab, LF and CR are fine): binary data, or a wrong encoding.
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# The UI shows these two verbatim (reference wording).
NOT_XLSX = "Fișierul încărcat nu este un .xlsx valid"
NO_SHEET = "Fișierul Excel nu conține nicio foaie"
# Ours, in the same language, for what the UI shows next to them.
NOT_A_START_LIST = "Fișierul încărcat nu este un .xlsx sau un .csv valid"
EMPTY_FILE = "Fișierul încărcat este gol"
BAD_CSV = "the CSV file could not be read"
TOO_SLOW = "the file took too long to read"
TOO_BIG_UNPACKED = (f"the workbook is too large once unpacked (at most {MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MiB"
                    f" in at most {MAX_ZIP_ENTRIES} files)")
TOO_MANY_COMPETITORS = f"the sheet lists more than {MAX_COMPETITORS} competitors"
WORKER_DIED = "the file could not be read (the reader process stopped)"


class SheetError(Exception):
    """Bad spreadsheet content; `detail` is the client-facing reason. Picklable across processes."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def looks_like_zip(data: bytes) -> bool:
    """Every .xlsx starts with a zip local file header."""
    return data[:4] == b"PK\x03\x04"


def check_format(data: bytes) -> None:
    """A cheap first filter in the event loop, by content alone: a zip (maybe an .xlsx) or NUL-free text (maybe a CSV).

    Whether the zip really holds a workbook, and whether the text really decodes, is the worker's job.
    """
    if not data:
        raise SheetError(EMPTY_FILE)
    if not looks_like_zip(data) and b"\x00" in data:
        raise SheetError(NOT_A_START_LIST)


async def read_start_list_in_worker(pool: WorkerPool, data: bytes, include_clubs: bool) -> list[dict[str, str]]:
    """`read_start_list` in the worker process, within the pool's time limit; every failure is a SheetError."""
    try:
        return await pool.run(read_start_list, data, include_clubs, pool.timeout_s)
    except WorkerTimeout:
        raise SheetError(TOO_SLOW) from None
    except WorkerDied:  # e.g. the worker ran out of memory on this file
        raise SheetError(WORKER_DIED) from None


def read_start_list(data: bytes, include_clubs: bool, time_limit_s: float = PARSE_TIMEOUT_S) -> list[dict[str, str]]:
    """The competitors of the active sheet or the CSV: row 1 is a header, column A the name, column B the club.

    Runs in the worker process. Any failure becomes a SheetError, so no file can cause a 500.
    """
    deadline = time.monotonic() + time_limit_s
    check_format(data)
    if looks_like_zip(data):
        try:
            _check_archive(data)
            competitors = _read_rows(data, include_clubs, deadline)
        except SheetError:
            raise
        except Exception:  # openpyxl, zipfile and XML errors alike: the content is not a workbook we can read
            raise SheetError(NOT_XLSX) from None
    else:
        try:
            competitors = _read_csv(data, include_clubs, deadline)
        except SheetError:
            raise
        except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
            raise SheetError(f"{BAD_CSV}: {exc}") from None
        except Exception:
            raise SheetError(BAD_CSV) from None
    _check_duplicates(competitors)
    return [competitor for _, competitor in competitors]


def _check_archive(data: bytes) -> None:
    """Reject non-workbooks and zip bombs from the central directory alone, before openpyxl inflates anything.

    zipfile stops inflating an entry at its declared size (and fails its CRC), so the declared sizes
    checked here really bound what openpyxl can unpack.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise SheetError(NOT_XLSX) from None
    if len(entries) > MAX_ZIP_ENTRIES or sum(e.file_size for e in entries) > MAX_UNCOMPRESSED_BYTES:
        raise SheetError(TOO_BIG_UNPACKED)
    names = {e.filename for e in entries}
    if not all(required in names for required in REQUIRED_ENTRIES):
        raise SheetError(NOT_XLSX)


Numbered = list[tuple[int, dict[str, str]]]  # (spreadsheet row number, competitor)


def _read_rows(data: bytes, include_clubs: bool, deadline: float) -> Numbered:
    import openpyxl  # only the worker process needs it; keeps server start-up light

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = workbook.active
        if sheet is None or not hasattr(sheet, "iter_rows"):  # no sheet, or a chart sheet
            raise SheetError(NO_SHEET)
        # max_col=2 pads short rows, so a one-column sheet works.
        rows = enumerate(sheet.iter_rows(min_row=2, max_col=2, values_only=True), start=2)
        return _competitors(rows, include_clubs, deadline)
    finally:
        workbook.close()


def _read_csv(data: bytes, include_clubs: bool, deadline: float) -> Numbered:
    text = _decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    next(reader, None)  # the header row, as in a workbook
    # Row numbers count records, so they match the row a spreadsheet program shows for the file.
    return _competitors(enumerate(reader, start=2), include_clubs, deadline)


def _decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else a Windows code page; text with control characters is not a CSV."""
    for encoding in ("utf-8-sig", *CSV_FALLBACK_ENCODINGS):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _BINARY_CHARS.search(text) is None:
            return text
    raise SheetError(NOT_A_START_LIST)


def _delimiter(text: str) -> str:
    """Comma or semicolon (a Romanian Excel saves CSV with ";"): Sniffer first, else the header row's commoner one."""
    sample = text[:CSV_SNIFF_CHARS]
    if len(text) > CSV_SNIFF_CHARS:
        sample = sample.rpartition("\n")[0] or sample  # whole lines only: a cut line would skew the counts
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:  # e.g. a one-column file, or rows with differing counts
        header = next((line for line in sample.splitlines() if line.strip()), "")
        return ";" if header.count(";") > header.count(",") else ","


def _competitors(rows: Iterable[tuple[int, Any]], include_clubs: bool, deadline: float) -> Numbered:
    competitors: Numbered = []
    for row_number, row in rows:
        # Checked per row: a sheet can declare a million empty rows, each cheap but not free.
        if time.monotonic() > deadline:
            raise SheetError(TOO_SLOW)
        competitor = _competitor(row_number, tuple(row[:2]), include_clubs)
        if competitor is None:
            continue
        if len(competitors) >= MAX_COMPETITORS:
            raise SheetError(TOO_MANY_COMPETITORS)
        competitors.append((row_number, competitor))
    return competitors


def _check_duplicates(competitors: Numbered) -> None:
    """Scores are keyed by name, so two rows naming one athlete (ignoring case) are refused, naming the rows."""
    rows_by_name: dict[str, list[int]] = {}
    first_spelling: dict[str, str] = {}
    for row_number, competitor in competitors:
        key = competitor["nume"].casefold()
        rows_by_name.setdefault(key, []).append(row_number)
        first_spelling.setdefault(key, competitor["nume"])
    duplicates = [(first_spelling[key], rows) for key, rows in rows_by_name.items() if len(rows) > 1]
    if not duplicates:
        return
    shown = duplicates[:MAX_LISTED_DUPLICATES]
    listed = "; ".join(f"{name} (rows {', '.join(map(str, rows))})" for name, rows in shown)
    if len(duplicates) > MAX_LISTED_DUPLICATES:
        listed += f"; and {len(duplicates) - MAX_LISTED_DUPLICATES} more"
    raise SheetError(f"duplicate names (a name identifies one athlete): {listed}")


def _competitor(row_number: int, row: tuple[Any, ...], include_clubs: bool) -> dict[str, str] | None:
    raw_name = cell_text(row[0]) if len(row) > 0 else ""
    if not raw_name.strip():
        return None  # an empty row, or one with a club but no name
    try:
        name = normalize_name(raw_name)
    except CommandError as exc:
        raise SheetError(f"row {row_number}: {exc.detail.removeprefix('Invalid command: ')}") from None
    competitor = {"nume": name}
    if include_clubs and len(row) > 1:
        club = clean_text(cell_text(row[1]))
        if len(club) > MAX_NAME_LENGTH:
            raise SheetError(f"row {row_number}: club must be at most {MAX_NAME_LENGTH} characters")
        if club:
            competitor["club"] = club
    return competitor


def cell_text(value: object) -> str:
    """A cell as the text a person sees: 5.0 → "5", TRUE → "TRUE", empty → ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
