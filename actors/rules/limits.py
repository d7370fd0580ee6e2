"""Every bound of the contest rules, defined once: commands hold their input to these, and
`valid_state` holds a stored or restored state to the same ones, so no state can carry a value
a command could not have put there. Box ids are checked here too, wherever they come from (a
request, a token, users.json, a file name)."""

from typing import Final, TypeGuard

# JavaScript's Number.MAX_SAFE_INTEGER: the UI reads every number as a double, and orjson cannot
# write an int past 64 bits, so no counter or clock value may grow beyond this.
MAX_SAFE_INTEGER: Final = 2**53 - 1

# The last clock reading an event can record (its createdAt is a date, and dates end with year 9999).
MAX_EPOCH_MS: Final = 253_402_300_799_999

MAX_BOX_ID: Final = 9999
BOX_ID_RANGE: Final = f"0..{MAX_BOX_ID}"  # as messages name it
MAX_BOX_VERSION: Final = MAX_SAFE_INTEGER
# A restored box must still be able to take this many commands before its version runs out.
RESTORE_VERSION_ROOM: Final = 2**32
MAX_RESTORED_VERSION: Final = MAX_BOX_VERSION - RESTORE_VERSION_ROOM

MAX_COMPETITORS: Final = 500
MAX_ROUTES: Final = 999
MAX_HOLDS: Final = 100  # holdsCount, each of holdsCounts, and so the highest holdCount
MAX_SCORE: Final = 100
MAX_REGISTERED_TIME: Final = 3600  # seconds
MAX_REMAINING_SEC: Final = 9999  # the clock: TIMER_SYNC's and STOP_TIMER's `remaining`, every stored remainder
MAX_DELTA: Final = 10  # one PROGRESS_UPDATE
MAX_IDX: Final = 1000
MAX_RANK: Final = 1_000_000

MAX_SESSION_ID_LENGTH: Final = 64
MAX_ACTION_ID_LENGTH: Final = 128
MAX_TOKEN_LENGTH: Final = 256  # tie-break fingerprints and lineage keys
ACTION_WINDOW: Final = 256  # recent actionIds a box remembers to answer retries

MAX_NAMES: Final = 2000  # names in the scores or times table, or in one lineage's ranks
MAX_TIEBREAK_ENTRIES: Final = 1000  # fingerprints (or lineage keys) one tie-break map keeps


def is_box_id(value: object) -> TypeGuard[int]:
    """An int (not a bool: JSON's true is no box) from 0 to MAX_BOX_ID."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BOX_ID


def parse_box_id(text: str, *, leading_zeros: bool = False) -> int | None:
    """The box id `text` spells in ASCII digits, or None.

    Only the canonical spelling counts unless `leading_zeros` (text a client typed: "007" is box 7),
    so "7" and "007" never both name one file or one account. `str.isdigit` alone would admit "²"
    and "١", and `int` " 7", "+7" and "1_0"; the length is checked before `int()`, which would
    otherwise be handed a string of any size."""
    if not 0 < len(text) <= len(str(MAX_BOX_ID)) or not text.isascii() or not text.isdigit():
        return None
    if not leading_zeros and text[0] == "0" and len(text) > 1:
        return None
    value = int(text)
    return value if value <= MAX_BOX_ID else None
