"""Box ids: one range and one parser, shared by requests, tokens, users.json and file names."""
from __future__ import annotations

import pytest

from actors.rules.limits import MAX_BOX_ID, is_box_id, parse_box_id


@pytest.mark.parametrize("text, box_id", [("0", 0), ("7", 7), ("42", 42), (str(MAX_BOX_ID), MAX_BOX_ID)])
def test_a_box_id_is_its_canonical_ascii_digits(text: str, box_id: int) -> None:
    assert parse_box_id(text) == box_id
    assert parse_box_id(text, leading_zeros=True) == box_id


@pytest.mark.parametrize("text", ["", "-1", "+7", " 7", "7 ", "1_0", "0x1", "1.0", "1e3", "٧", "７", "²",
                                  str(MAX_BOX_ID + 1), "9" * 5000])
def test_anything_else_is_no_box_id(text: str) -> None:
    assert parse_box_id(text) is None
    assert parse_box_id(text, leading_zeros=True) is None


@pytest.mark.parametrize("text", ["07", "007", "0007", "00"])
def test_leading_zeros_count_only_where_a_client_typed_the_text(text: str) -> None:
    """A file name or an account name has one spelling per box ("7" and "007" never both claim box 7);
    a path or a command-line argument may say "007" for box 7, as it always could."""
    assert parse_box_id(text) is None
    assert parse_box_id(text, leading_zeros=True) == int(text)


def test_leading_zeros_never_lengthen_what_is_read() -> None:
    assert parse_box_id("0" * (len(str(MAX_BOX_ID)) + 1), leading_zeros=True) is None


@pytest.mark.parametrize("value, expected", [(0, True), (MAX_BOX_ID, True), (-1, False), (MAX_BOX_ID + 1, False),
                                             (True, False), (False, False), (1.0, False), ("1", False), (None, False)])
def test_is_box_id_wants_an_int_in_range(value: object, expected: bool) -> None:
    assert is_box_id(value) is expected
