"""CSV start lists, the format decided by content, holdsCounts against routesCount, and duplicate names."""
from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from actors.jobs.start_list import SheetError, read_start_list
from tests.transport.http.upload_helpers import CSV_TYPE, NOT_A_START_LIST, XLSX_TYPE, form, upload, workbook_bytes

ROMANIAN = ["Ștefan Țurcanu", "Ioana Mărgărit", "Andreea Râșnoveanu", "Îngrid Știrbu"]


def names(body: dict) -> list[str]:
    return [c["nume"] for c in body["listbox"]["concurenti"]]


def parse(data: bytes, include_clubs: bool = True) -> list[dict[str, str]]:
    return read_start_list(data, include_clubs)


async def test_comma_csv_becomes_the_same_listbox_as_a_workbook(client: TestClient, tmp_path: Path) -> None:
    rows = [("Ana Pop", "CS Arad"), ("Bogdan Ionescu", "Clubul Alpin"), ("Cris Matei", None)]
    csv_file = b"Nume,Club\nAna Pop,CS Arad\nBogdan Ionescu,Clubul Alpin\nCris Matei,\n"
    status, from_csv = await upload(client, form(csv_file, content_type=CSV_TYPE, filename="start.csv"))
    assert status == 200
    status, from_xlsx = await upload(client, form(workbook_bytes(tmp_path, rows)))
    assert status == 200
    assert from_csv == from_xlsx
    assert from_csv["listbox"]["concurenti"][0] == {"nume": "Ana Pop", "club": "CS Arad"}


async def test_semicolon_csv_with_commas_inside_clubs(client: TestClient) -> None:
    csv_file = "Nume;Club\r\nAna Pop;CS Arad, Timișoara\r\nPop, Dan;Clubul Alpin\r\n".encode()
    status, body = await upload(client, form(csv_file, content_type=CSV_TYPE, filename="start.csv"))
    assert status == 200
    assert body["listbox"]["concurenti"] == [{"nume": "Ana Pop", "club": "CS Arad, Timișoara"},
                                             {"nume": "Pop, Dan", "club": "Clubul Alpin"}]


async def test_utf8_bom_and_romanian_names_survive(client: TestClient) -> None:
    text = "Nume;Club\n" + "".join(f"{name};Clubul Sportiv „Ștefănești”\n" for name in ROMANIAN)
    for data in (text.encode("utf-8-sig"), text.encode("utf-8")):
        status, body = await upload(client, form(data, content_type=CSV_TYPE, filename="start.csv"))
        assert status == 200
        assert names(body) == ROMANIAN
        assert body["listbox"]["concurenti"][0]["club"] == "Clubul Sportiv „Ștefănești”"


def test_utf8_bom_is_not_part_of_the_first_cell() -> None:
    # A one-column file with no header text of its own: the BOM must not turn into a visible character anywhere.
    data = "\ufeffNume\nȘtefan Țurcanu\n".encode()
    assert parse(data) == [{"nume": "Ștefan Țurcanu"}]


def test_windows_code_page_fallbacks() -> None:
    # cp1250 (Romanian Windows) has only the cedilla forms ş ţ, and no comma-below ș ț.
    cp1250 = "Nume;Club\nŞtefan Ţurcanu;CS Brăila\nIoana Mărgărit;Râşnov\n".encode("cp1250")
    assert parse(cp1250) == [{"nume": "Ştefan Ţurcanu", "club": "CS Brăila"},
                             {"nume": "Ioana Mărgărit", "club": "Râşnov"}]
    # 0x83 is undefined in cp1250 and "ƒ" in cp1252, so this one falls through to cp1252.
    cp1252 = "Nume,Club\nSeán Müller,Club ƒ\n".encode("cp1252")
    assert parse(cp1252) == [{"nume": "Seán Müller", "club": "Club ƒ"}]


def test_quoting_one_column_and_empty_rows() -> None:
    data = (b'Nume,Club\n"Pop, Ana","CS ""Arad"""\n\n,club without a name\n  ,  \n'
            b'Bogdan Ionescu\n"Dan   Pop ",  CS  Arad \n')
    assert parse(data) == [{"nume": "Pop, Ana", "club": 'CS "Arad"'}, {"nume": "Bogdan Ionescu"},
                           {"nume": "Dan Pop", "club": "CS Arad"}]
    assert parse(data, include_clubs=False) == [{"nume": "Pop, Ana"}, {"nume": "Bogdan Ionescu"}, {"nume": "Dan Pop"}]
    one_column = b"Nume\r\nAna Pop\r\n\r\nBogdan Ionescu\r\n"
    assert parse(one_column) == [{"nume": "Ana Pop"}, {"nume": "Bogdan Ionescu"}]
    assert parse(b"Nume,Club\n") == [] and parse(b"Nume") == []  # a header alone, as with an empty sheet
    assert parse(b"Nume,Club,Extra\nAna Pop,CS Arad,ignored\n") == [{"nume": "Ana Pop", "club": "CS Arad"}]


async def test_csv_sent_as_xlsx_and_xlsx_sent_as_csv(client: TestClient, tmp_path: Path) -> None:
    csv_file = "Nume,Club\nȘtefan Țurcanu,CS Arad\n".encode()
    status, body = await upload(client, form(csv_file, content_type=XLSX_TYPE, filename="start.xlsx"))
    assert status == 200 and body["listbox"]["concurenti"] == [{"nume": "Ștefan Țurcanu", "club": "CS Arad"}]
    xlsx_file = workbook_bytes(tmp_path, [("Ștefan Țurcanu", "CS Arad")])
    for content_type, filename in ((CSV_TYPE, "start.csv"), ("application/octet-stream", "start"),
                                   ("application/vnd.ms-excel", "start.xls")):
        status, body = await upload(client, form(xlsx_file, content_type=content_type, filename=filename))
        assert status == 200 and body["listbox"]["concurenti"] == [{"nume": "Ștefan Țurcanu", "club": "CS Arad"}]


@pytest.mark.parametrize("content", [
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504,  # an old binary .xls (OLE2)
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 5 >>\nstream\n\x00\x01\x02\nendstream\n",
    bytes(range(1, 256)) * 4,  # no NUL, and every byte decodes in some code page, but it is not text
    "Nume,Club\nAna Pop,CS Arad\n".encode("utf-16"),  # NUL bytes everywhere
])
async def test_binary_that_is_not_a_spreadsheet(client: TestClient, content: bytes) -> None:
    status, body = await upload(client, form(content, content_type=CSV_TYPE, filename="start.csv"))
    assert (status, body) == (400, {"detail": NOT_A_START_LIST})


async def test_csv_row_limits(client: TestClient) -> None:
    def csv_of(rows: list[str]) -> bytes:
        return ("Nume,Club\n" + "".join(row + "\n" for row in rows)).encode()

    status, body = await upload(client, form(csv_of([f"Atlet {i}" for i in range(500)])))
    assert status == 200 and len(body["listbox"]["concurenti"]) == 500
    status, body = await upload(client, form(csv_of([f"Atlet {i}" for i in range(501)])))
    assert status == 400 and "500" in body["detail"]
    status, body = await upload(client, form(csv_of(["Ana Pop", "", "x" * 256])))
    assert status == 400 and body["detail"].startswith("row 4:")  # blank lines count, as in a spreadsheet
    status, body = await upload(client, form(csv_of(["Ana Pop", "x" * 200_000])))
    assert status == 400 and body["detail"].startswith("the CSV file could not be read")


async def test_holds_counts_length_must_equal_routes_count(client: TestClient, tmp_path: Path) -> None:
    file = workbook_bytes(tmp_path, [("Ana Pop", None)])
    for routes_count, holds_counts in (("2", "[20]"), ("2", "[20, 25, 30]"), ("1", "[]"), ("3", "[]")):
        status, body = await upload(client, form(file, routes_count=routes_count, holds_counts=holds_counts))
        assert status == 422, (routes_count, holds_counts)
        assert body["detail"] == "invalid_holds_counts"  # exactly: the UI may match it
        assert routes_count in body["reason"] and "holdsCounts" in body["reason"]
        assert set(body) == {"detail", "reason"}
    status, body = await upload(client, form(file, routes_count="1", holds_counts="[30]"))
    assert status == 200 and body["listbox"]["holdsCounts"] == [30]


async def test_duplicate_names_are_refused_naming_the_rows(client: TestClient, tmp_path: Path) -> None:
    rows = [("Ana Pop", "CS Arad"), ("Bogdan Ionescu", None), ("ana  pop", "Clubul Alpin"), ("BOGDAN IONESCU", None),
            ("Cris Matei", None), ("Ana\u200b Pop", None)]
    status, body = await upload(client, form(workbook_bytes(tmp_path, rows)))
    assert status == 400
    assert body["detail"].startswith("duplicate names")
    assert "Ana Pop (rows 2, 4, 7)" in body["detail"] and "Bogdan Ionescu (rows 3, 5)" in body["detail"]
    assert "Cris Matei" not in body["detail"]

    csv_file = b"Nume;Club\nAna Pop;CS Arad\n\nana  pop;CS Arad\n"
    status, body = await upload(client, form(csv_file, content_type=CSV_TYPE, filename="start.csv"))
    assert status == 400 and "Ana Pop (rows 2, 4)" in body["detail"]

    # Different letters are different athletes: diacritics are not folded away.
    distinct = "Nume\nStefan Turcanu\nȘtefan Țurcanu\n".encode()
    status, body = await upload(client, form(distinct))
    assert status == 200 and names(body) == ["Stefan Turcanu", "Ștefan Țurcanu"]


def test_a_long_duplicate_listing_is_cut_short() -> None:
    data = ("Nume\n" + "".join(f"Atlet {i}\natlet {i}\n" for i in range(15))).encode()
    with pytest.raises(SheetError) as caught:
        parse(data)
    assert "Atlet 0 (rows 2, 3)" in caught.value.detail and "Atlet 9 (rows 20, 21)" in caught.value.detail
    assert "Atlet 10 " not in caught.value.detail and caught.value.detail.endswith("and 5 more")
