"""POST /api/admin/upload over a real socket: real workbooks in, the §1.7 listbox or a 4xx {"detail"} out."""
from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.transport.http.upload_helpers import (
    EMPTY_FILE,
    NOT_A_START_LIST,
    NOT_XLSX,
    XLSX_TYPE,
    form,
    upload,
    workbook_bytes,
    zip_bytes,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


async def test_reply_shape_with_clubs(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", "CS Arad"), ("Bogdan Ionescu", "Clubul Alpin"), ("Cris Matei", None)])
    status, body = await upload(client, form(file, routes_count="2", holds_counts="[20, 25]"))
    assert status == 200
    assert body == {
        "status": "success",
        "message": "Listbox uploaded successfully",
        "listbox": {
            "categorie": "U16 Fete",
            "concurenti": [{"nume": "Ana Pop", "club": "CS Arad"}, {"nume": "Bogdan Ionescu", "club": "Clubul Alpin"},
                           {"nume": "Cris Matei"}],
            "routesCount": 2,
            "holdsCounts": [20, 25],
            "routeIndex": 1,
            "holdsCount": 20,
            "initiated": False,
            "timerPreset": "05:00",
        },
    }


async def test_include_clubs_false_drops_clubs_and_defaults_to_true(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", "CS Arad"), ("Bogdan Ionescu", "Clubul Alpin")])
    for off in ("false", "0", "no", "whatever"):
        status, body = await upload(client, form(file, include_clubs=off))
        assert status == 200
        assert body["listbox"]["concurenti"] == [{"nume": "Ana Pop"}, {"nume": "Bogdan Ionescu"}]
    status, body = await upload(client, form(file, include_clubs=None))  # the field is optional
    assert status == 200
    assert body["listbox"]["concurenti"][0] == {"nume": "Ana Pop", "club": "CS Arad"}


async def test_one_column_sheet_empty_rows_and_numbers(client: TestClient, tmp_path: Path) -> None:
    one_column = workbook_bytes(tmp_path, [("Ana Pop",), (None,), ("  ",), ("Bogdan Ionescu",)], header=("Nume",))
    status, body = await upload(client, form(one_column))
    assert status == 200
    assert body["listbox"]["concurenti"] == [{"nume": "Ana Pop"}, {"nume": "Bogdan Ionescu"}]

    rows = [(5, 12.0), (None, "club without a name"), (7.0, None), (2.5, 3), ("", ""), ("  Dan   Pop ", "  CS  Arad ")]
    status, body = await upload(client, form(workbook_bytes(tmp_path, rows)))
    assert status == 200
    assert body["listbox"]["concurenti"] == [
        {"nume": "5", "club": "12"}, {"nume": "7"}, {"nume": "2.5", "club": "3"},
        {"nume": "Dan Pop", "club": "CS Arad"},
    ]


async def test_real_names_are_accepted_and_cleaned(client: TestClient, tmp_path: Path) -> None:
    names = ["Seán O'Connor", "Ion Dropu", "Ștefan Țurcanu", "Maria D'Andrea", "Select Update", "Ana--Maria"]
    rows = [(name, "Clubul Sportiv „Ștefănești”") for name in names] + [("Ana\tMaria\u200b", "CS\u200b Arad")]
    status, body = await upload(client, form(workbook_bytes(tmp_path, rows)))
    assert status == 200
    concurenti = body["listbox"]["concurenti"]
    assert [c["nume"] for c in concurenti] == [*names, "Ana Maria"]
    assert concurenti[0]["club"] == "Clubul Sportiv „Ștefănești”"
    assert concurenti[-1]["club"] == "CS Arad"


@pytest.mark.parametrize(("content", "detail"), [
    (PNG, NOT_A_START_LIST), (os.urandom(4096), NOT_A_START_LIST), (b"", EMPTY_FILE),
    (b"PK\x03\x04 but not really a zip", NOT_XLSX),  # a broken zip keeps the reference's xlsx message
])
async def test_content_decides_not_the_claimed_type(client: TestClient, content: bytes, detail: str) -> None:
    status, body = await upload(client, form(content, content_type=XLSX_TYPE))
    assert (status, body) == (400, {"detail": detail})


async def test_a_zip_that_is_not_a_workbook(client: TestClient, tmp_path: Path) -> None:
    status, body = await upload(client, form(zip_bytes({"readme.txt": b"hello"})))
    assert (status, body) == (400, {"detail": NOT_XLSX})
    # The two entries are there, but the workbook inside is garbage: still a 400, never a 500.
    fake = zip_bytes({"[Content_Types].xml": b"<not xml", "xl/workbook.xml": b"\x00\x01"})
    status, body = await upload(client, form(fake))
    assert (status, body) == (400, {"detail": NOT_XLSX})
    # A real workbook whose sheet XML is cut off.
    real = workbook_bytes(tmp_path, [("Ana Pop", "CS Arad")])
    with zipfile.ZipFile(io.BytesIO(real)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["xl/worksheets/sheet1.xml"] = entries["xl/worksheets/sheet1.xml"][:-40]
    status, body = await upload(client, form(zip_bytes(entries)))
    assert (status, body) == (400, {"detail": NOT_XLSX})


async def test_zip_bomb_is_refused_quickly(client: TestClient) -> None:
    bomb = zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>",
                      "xl/worksheets/sheet1.xml": b"\x00" * (60 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    started = time.monotonic()
    status, body = await upload(client, form(bomb))
    assert status == 400 and "too large once unpacked" in body["detail"]
    assert time.monotonic() - started < 10

    many = zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>",
                      **{f"xl/media/{i}.bin": b"" for i in range(1001)}})
    status, body = await upload(client, form(many))
    assert status == 400 and "too large once unpacked" in body["detail"]


async def test_body_over_10_mib_is_413(client: TestClient) -> None:
    big = io.BytesIO(b"PK\x03\x04" + os.urandom(10 * 1024 * 1024))  # a stream: aiohttp warns on huge raw bytes
    status, body = await upload(client, form(big))
    assert (status, body) == (413, {"detail": "request body too large"})


async def test_bad_routes_count_is_422(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", None)])
    for bad in ("0", "-1", "1000", "abc", "", "1.5", "1_0", "²", "true"):
        status, body = await upload(client, form(file, routes_count=bad))
        assert (status, body) == (422, {"detail": "invalid_routes_count"}), bad
    status, body = await upload(client, form(file, routes_count=" 3 ", holds_counts="[0, 4, 5]"))
    assert status == 200
    assert (body["listbox"]["routesCount"], body["listbox"]["holdsCount"]) == (3, 0)


async def test_bad_holds_counts_is_422(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", None)])
    bad_values = ("[true]", "[-1]", "[101]", "[1.5]", '["a"]', '["-1"]', '[" 5"]', "[null]", "[[1]]", "{}", "20",
                  "not json", "", "[" + ",".join(["1"] * 1000) + "]", "[99999999999999999999999]")
    for bad in bad_values:
        status, body = await upload(client, form(file, holds_counts=bad))
        assert (status, body) == (422, {"detail": "invalid_holds_counts"}), bad
    status, body = await upload(client, form(file, routes_count="3", holds_counts='[10, 12.0, "15"]'))
    assert status == 200
    assert (body["listbox"]["holdsCounts"], body["listbox"]["holdsCount"]) == ([10, 12, 15], 10)


async def test_missing_fields_are_400_naming_the_field(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", None)])
    cases = {"category": {"category": None}, "routesCount": {"routes_count": None},
             "holdsCounts": {"holds_counts": None}, "file": {"file": None}}
    for field, missing in cases.items():
        status, body = await upload(client, form(**{"file": file, **missing}))
        assert status == 400 and field in body["detail"], (field, body)
    for bad in ("   ", "x" * 101):
        status, body = await upload(client, form(file, category=bad))
        assert status == 400 and "category" in body["detail"]
    status, body = await upload(client, b"{}", **{"Content-Type": "application/json"})
    assert status == 400 and "multipart" in body["detail"]


async def test_row_limits(client: TestClient, tmp_path: Path) -> None:
    status, body = await upload(client, form(workbook_bytes(tmp_path, [(f"Atlet {i}", None) for i in range(500)])))
    assert status == 200 and len(body["listbox"]["concurenti"]) == 500
    status, body = await upload(client, form(workbook_bytes(tmp_path, [(f"Atlet {i}", None) for i in range(501)])))
    assert status == 400 and "500" in body["detail"]
    status, body = await upload(client, form(workbook_bytes(tmp_path, [("Ana Pop", None), ("x" * 256, None)])))
    assert status == 400 and body["detail"].startswith("row 3:")
    status, body = await upload(client, form(workbook_bytes(tmp_path, [("Ana Pop", "c" * 256)])))
    assert status == 400 and body["detail"].startswith("row 2:")
    status, body = await upload(client, form(workbook_bytes(tmp_path, [("\u200b\u200b", None)])))
    assert status == 400 and body["detail"].startswith("row 2:")


async def test_upload_needs_an_admin(anonymous: TestClient, tmp_path: Path) -> None:
    status, body = await upload(anonymous, form(workbook_bytes(tmp_path, [("Ana Pop", None)])))
    assert status == 401 and body["detail"]
