"""Numbers typed by a client: only ASCII digits, bounded before int(), never a 500."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from transport.request_numbers import whole_number

THOUSANDS_OF_DIGITS = "9" * 5000  # past Python's 4,300-digit limit of int()


@pytest.mark.parametrize("text", ["", " 7", "7 ", "+7", "-7", "1_0", "٣", "²", "１", "0x1", "1e3", "7.0",
                                  THOUSANDS_OF_DIGITS, "0" * 5000 + "1", "00001"])
def test_whole_number_refuses_anything_but_a_few_ascii_digits(text: str) -> None:
    assert whole_number(text, 0, 9999) is None


def test_whole_number_takes_plain_digits_in_range() -> None:
    assert whole_number("0", 0, 9999) == 0
    assert whole_number("0042", 0, 9999) == 42
    assert whole_number("9999", 0, 9999) == 9999
    assert whole_number("10000", 0, 99999) == 10000
    assert whole_number("2001", 1, 2000) is None
    assert whole_number("007", 1, 10, max_digits=3) == 7


@pytest.mark.parametrize("query", [f"limit={THOUSANDS_OF_DIGITS}", f"limit={'0' * 5000}1",
                                   f"boxId={THOUSANDS_OF_DIGITS}", "limit=%EF%BC%91", "limit=-1", "limit=+5"])
async def test_audit_query_numbers_of_any_length_get_400(client: TestClient, query: str) -> None:
    response = await client.get(f"/api/admin/audit/events?{query}")
    assert response.status == 400, await response.text()
    assert "must be an integer" in (await response.json())["detail"]


async def test_a_box_id_of_thousands_of_digits_in_a_path_gets_400(client: TestClient) -> None:
    for path in (f"/api/state/{THOUSANDS_OF_DIGITS}", f"/api/admin/export/box/{THOUSANDS_OF_DIGITS}"):
        response = await client.get(path)
        assert response.status == 400, path
