"""Building real .xlsx files and posting them the way the UI's ModalUpload does."""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import openpyxl
from aiohttp import FormData
from aiohttp.test_utils import TestClient

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"
NOT_XLSX = "Fișierul încărcat nu este un .xlsx valid"
NOT_A_START_LIST = "Fișierul încărcat nu este un .xlsx sau un .csv valid"
EMPTY_FILE = "Fișierul încărcat este gol"


def workbook_bytes(tmp_path: Path, rows: Iterable[Iterable[Any]], header: Iterable[Any] = ("Nume", "Club")) -> bytes:
    """A real workbook saved by openpyxl; `rows` come after the header row."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    path = tmp_path / "start.xlsx"
    workbook.save(path)
    return path.read_bytes()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def form(file: bytes | io.BytesIO | None, *, category: str | None = "U16 Fete", routes_count: str | None = "2",
         holds_counts: str | None = "[20, 25]", include_clubs: str | None = "true",
         content_type: str = XLSX_TYPE, filename: str = "start.xlsx") -> FormData:
    data = FormData(default_to_multipart=True)  # the UI always sends multipart, file or not
    if routes_count is not None:
        data.add_field("routesCount", routes_count)
    if holds_counts is not None:
        data.add_field("holdsCounts", holds_counts)
    if category is not None:
        data.add_field("category", category)
    if file is not None:
        data.add_field("file", file, filename=filename, content_type=content_type)
    if include_clubs is not None:
        data.add_field("include_clubs", include_clubs)
    return data


async def upload(client: TestClient, data: Any, **headers: str) -> tuple[int, Any]:
    response = await client.post("/api/admin/upload", data=data, headers=headers)
    assert response.content_type == "application/json"
    return response.status, await response.json()
