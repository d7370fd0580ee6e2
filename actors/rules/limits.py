"""Every bound of the contest rules, defined once: commands hold their input to these, and
`valid_state` holds a stored or restored state to the same ones, so no state can carry a value
a command could not have put there."""

from typing import Final

# JavaScript's Number.MAX_SAFE_INTEGER: the UI reads every number as a double, and orjson cannot
# write an int past 64 bits, so no counter or clock value may grow beyond this.
MAX_SAFE_INTEGER: Final = 2**53 - 1

# The last clock reading an event can record (its createdAt is a date, and dates end with year 9999).
MAX_EPOCH_MS: Final = 253_402_300_799_999

MAX_BOX_ID: Final = 9999
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
