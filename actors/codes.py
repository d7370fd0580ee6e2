"""Every code an actor refuses or fails a request with, defined once.

Actors answer with these codes, never with an HTTP status: transport/http/errors.py maps each one
to its status, in its one table. The code is also the `detail` a client reads, unless the answer
carries its own words (a command the rules refused says why).
"""
from typing import Final

# -- boxes (actors/box_actor.py, actors/registry.py) ----------------------------------------------
INVALID_COMMAND: Final = "invalid_command"  # the rules refused the command; the detail says why
RESTORE_REFUSED: Final = "restore_refused"  # the saved state cannot go back on this box; the detail says why
RESTORE_ABORTED: Final = "restore_aborted"  # another box of the same restore failed
STORAGE_UNAVAILABLE: Final = "storage_unavailable"  # nothing was made durable; the state did not change
BOX_UNAVAILABLE: Final = "box_unavailable"  # its history cannot rebuild it (see actors/recovery/restore.py)
SHUTTING_DOWN: Final = "shutting_down"
INTERNAL_ERROR: Final = "internal_error"  # a bug, logged where it happened

# -- accounts (actors/accounts/) -------------------------------------------------------------------
INVALID_BOX: Final = "invalid_box"
USERNAME_TAKEN: Final = "username_taken"  # a judge name held by an admin or viewer
USER_NOT_FOUND: Final = "user_not_found"
LAST_ADMIN: Final = "last_active_admin"  # the change would leave no active admin: nobody could log in to fix it
# A token that is refused (actors/accounts/tokens.py); the UI matches both word for word.
TOKEN_EXPIRED: Final = "token_expired"
INVALID_TOKEN: Final = "invalid_token"

# -- background jobs (actors/jobs/) ----------------------------------------------------------------
EXPORT_TIMEOUT: Final = "export_timeout"
EXPORT_FAILED: Final = "export_failed"
RANKING_UNREADABLE: Final = "ranking_unreadable"  # a saved overall.xlsx the podium cannot read
INVALID_START_LIST: Final = "invalid_start_list"  # an uploaded file that is no start list; the detail says why
