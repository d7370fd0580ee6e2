import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.rules import CommandError, normalize_name
from actors.rules.names import _clean_any_text, clean_text


@pytest.mark.parametrize("name",
                         ["O'Connor", "Dropu", "Ștefan", "D'Andrea", "Select Ana", "Müller-Lüdenscheidt", "李娜"])
def test_real_names_are_accepted_unchanged(name: str) -> None:
    assert normalize_name(name) == name


def test_whitespace_runs_collapse_and_ends_are_stripped() -> None:
    assert normalize_name("  Ana \t\n Pop\u00a0 ") == "Ana Pop"


def test_control_and_format_characters_are_removed() -> None:
    assert normalize_name("A\x00n\x07a\u200b Pop\u200e\ufeff") == "Ana Pop"


def test_lone_surrogates_are_removed() -> None:
    assert normalize_name("Ana\ud800") == "Ana"


def test_names_are_nfc_normalised_so_one_athlete_has_one_key() -> None:
    decomposed = "S\u0326tefan"  # S + combining comma below
    assert normalize_name(decomposed) == normalize_name("Ștefan") == "Ștefan"


def test_removing_an_invisible_character_does_not_leave_a_decomposed_name() -> None:
    assert normalize_name("S\u200b\u0326tefan") == "Ștefan"


@pytest.mark.parametrize("value", ["", "   ", "\u200b\x00", None, 5, ["Ana"]])
def test_empty_or_non_string_names_are_rejected(value: object) -> None:
    with pytest.raises(CommandError) as caught:
        normalize_name(value)
    assert caught.value.detail.startswith("Invalid command: ")


def test_names_longer_than_255_characters_are_rejected() -> None:
    assert normalize_name("a" * 255) == "a" * 255
    with pytest.raises(CommandError):
        normalize_name("a" * 256)


def test_normalisation_is_idempotent() -> None:
    for raw in ["  Ana \t Pop ", "S\u200b\u0326tefan", "x\u2028y"]:
        once = normalize_name(raw)
        assert normalize_name(once) == once


# Every ASCII character, with spaces often enough to meet each other inside a printable name.
_ASCII = st.sampled_from(" a") | st.characters(max_codepoint=127)


@given(st.text(alphabet=_ASCII))
def test_the_ascii_shortcut_gives_what_the_full_cleaning_gives(text: str) -> None:
    assert clean_text(text) == _clean_any_text(text)
