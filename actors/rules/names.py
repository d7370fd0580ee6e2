"""Normalisation of free text that reaches the box state (athlete names, clubs, categories)."""

import unicodedata

from .errors import CommandError

MAX_NAME_LENGTH = 255
MAX_CATEGORY_LENGTH = 100  # a category ("U16-Boys") as commands, uploads and result files take it

# Control, format (zero-width, bidi marks) and lone surrogate code points never belong in a name.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def normalize_name(value: object) -> str:
    """Scores are keyed by name, so every entry point must produce the same string for one athlete."""
    if not isinstance(value, str):
        raise CommandError("Invalid command: name must be a string")
    name = clean_text(value)
    if not name:
        raise CommandError("Invalid command: name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise CommandError(f"Invalid command: name must be at most {MAX_NAME_LENGTH} characters")
    return name


def clean_text(value: str) -> str:
    """Whitespace runs become one space, invisible characters go, the rest is NFC; idempotent."""
    if value.isascii() and value.isprintable():
        # Nearly every name: no control characters, no whitespace but " ", and NFC already.
        return " ".join(value.split())
    return _clean_any_text(value)


def _clean_any_text(value: str) -> str:
    # Whitespace first, so a tab (itself a control character) separates words instead of joining them.
    spaced = "".join(" " if ch.isspace() else ch for ch in value)
    visible = "".join(ch for ch in spaced if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    return " ".join(unicodedata.normalize("NFC", visible).split())
