"""Result tables as .xlsx (openpyxl) and landscape A4 .pdf (reportlab) bytes (reference-backend §7.3).

Runs in the export worker process only: nothing here is imported by the event loop's modules.
Romanian names need ș/ț (comma below, U+0219/U+021B), which reportlab's bundled Vera font lacks, so the
PDFs embed Noto Sans from the pymupdf-fonts package (an installed dependency, never fetched at run time).
"""
from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.rules.results import OverallRow, Results, RouteRow

FONT_NAME = "BelayNotoSans"
FONT_BOLD_NAME = "BelayNotoSans-Bold"
TB_TIME = "TB Time"
TB_PREV = "TB Prev"


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def overall_table(results: Results) -> Table:
    """Rank, Nume, Club, Score R1..Rn, [Time R1..Rn], Total, [TB Time], [TB Prev] (TB columns only when used)."""
    n = results.routes_count
    tb_time = any(row.tb_time for row in results.overall)
    tb_prev = any(row.tb_prev for row in results.overall)
    header = ["Rank", "Nume", "Club", *(f"Score R{k}" for k in range(1, n + 1))]
    if results.show_times:
        header += [f"Time R{k}" for k in range(1, n + 1)]
    header.append("Total")
    header += [TB_TIME] * tb_time + [TB_PREV] * tb_prev
    rows = tuple(tuple(_overall_cells(row, results.show_times, tb_time, tb_prev)) for row in results.overall)
    return Table(f"{results.category} – Overall", tuple(header), rows)


def route_table(results: Results, route: int) -> Table:
    """Rank, Name, Club, Score, [Time], [TB Time], [TB Prev], Points for route `route` (1-based)."""
    route_rows = results.routes[route - 1]
    tb_time = any(row.tb_time for row in route_rows)
    tb_prev = any(row.tb_prev for row in route_rows)
    header = ["Rank", "Name", "Club", "Score"] + ["Time"] * results.show_times
    header += [TB_TIME] * tb_time + [TB_PREV] * tb_prev + ["Points"]
    rows = tuple(tuple(_route_cells(row, results.show_times, tb_time, tb_prev)) for row in route_rows)
    return Table(f"{results.category} – Route {route}", tuple(header), rows)


def mm_ss(seconds: float | None) -> str | None:
    """Times print as whole seconds, m:ss (§7.3)."""
    if seconds is None:
        return None
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _overall_cells(row: OverallRow, show_times: bool, tb_time: bool, tb_prev: bool) -> list[Any]:
    cells: list[Any] = [row.rank, row.name, row.club or None, *row.scores]
    if show_times:
        cells += [mm_ss(t) for t in row.times]
    cells.append(row.total)
    if tb_time:
        cells.append(TB_TIME if row.tb_time else None)
    if tb_prev:
        cells.append(TB_PREV if row.tb_prev else None)
    return cells


def _route_cells(row: RouteRow, show_times: bool, tb_time: bool, tb_prev: bool) -> list[Any]:
    cells: list[Any] = [row.rank, row.name, row.club or None, row.score]
    if show_times:
        cells.append(mm_ss(row.time))
    if tb_time:
        cells.append(TB_TIME if row.tb_time else None)
    if tb_prev:
        cells.append(TB_PREV if row.tb_prev else None)
    cells.append(row.points)
    return cells


# -- xlsx ----------------------------------------------------------------------------------------


def xlsx_bytes(table: Table) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_sheet_title(table.title))
    for index, name in enumerate(table.header, start=1):
        letter = _column_letter(index)
        sheet.column_dimensions[letter].width = 28 if name in ("Nume", "Name", "Club") else max(8, len(name) + 2)
    bold = Font(bold=True)
    header = []
    for name in table.header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in table.rows:
        sheet.append([_xlsx_cell(sheet, v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    """Excel refuses []:*?/\\ in sheet titles and more than 31 characters."""
    cleaned = "".join("_" if ch in '[]:*?/\\' else ch for ch in title).strip("'")
    return cleaned[:31] or "Results"


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    """A name starting with "=" stays text: it must never become a formula in the organiser's Excel."""
    if isinstance(value, str) and value.startswith("="):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


# -- pdf -----------------------------------------------------------------------------------------

def pdf_bytes(table: Table) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    _register_fonts()
    page = landscape(A4)
    margin = 10 * mm
    width = page[0] - 2 * margin
    widths, font_size = _column_widths(table.header, width)
    cell_style = ParagraphStyle("cell", fontName=FONT_NAME, fontSize=font_size, leading=font_size * 1.2)
    title_style = ParagraphStyle("title", fontName=FONT_BOLD_NAME, fontSize=16, leading=20)
    wide = {i for i, name in enumerate(table.header) if name in ("Nume", "Name", "Club")}

    data: list[list[Any]] = [list(table.header)]
    data.extend([Paragraph(_escape(_pdf_text(v)), cell_style) if i in wide else _pdf_text(v)
                 for i, v in enumerate(row)] for row in table.rows)
    grid = LongTable(data, colWidths=widths, repeatRows=1)
    grid.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT_NAME),
        ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD_NAME),
        ("FONTSIZE", (0, 0), (-1, -1), font_size),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f6f6")]),
    ]))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=page, leftMargin=margin, rightMargin=margin,
                                 topMargin=margin, bottomMargin=margin, title=table.title, author="Belay")
    document.build([Paragraph(_escape(table.title), title_style), Spacer(1, 4 * mm), grid])
    return buffer.getvalue()


@functools.cache  # one registration per worker process (reportlab's registry is process-wide)
def _register_fonts() -> None:
    from pymupdf_fonts import fontbuffers
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(FONT_NAME, io.BytesIO(fontbuffers["notos"]())))
    pdfmetrics.registerFont(TTFont(FONT_BOLD_NAME, io.BytesIO(fontbuffers["notosbo"]())))


def _column_widths(header: Sequence[str], width: float) -> tuple[list[float], float]:
    """Name and Club share 40 % of the page, the rest is split evenly; the font shrinks with the columns."""
    wide = [name in ("Nume", "Name", "Club") for name in header]
    narrow_count = len(header) - sum(wide)
    wide_share = 0.4 if narrow_count > 6 else 0.55
    narrow = width * (1 - wide_share) / max(narrow_count, 1)
    name_width = width * wide_share / max(sum(wide), 1)
    font_size = max(4.0, min(9.0, narrow / 4.2))
    return [name_width if w else narrow for w in wide], font_size


def _pdf_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
