"""Belay's contest rules: pure functions of (state, command, now, generated ids), no I/O."""

from .commands import COMMAND_TYPES, Command, CommandError, parse_command
from .limits import ACTION_WINDOW
from .names import normalize_name
from .snapshot import build_public_box, build_snapshot
from .state import default_state, state_from_checkpoint
from .tiebreak import LeadRanking, lead_ranking, lead_ranking_rows
from .timer import remaining_seconds, running_deadline_ms
from .transitions import (
    NO_DISK_WAIT,
    Outcome,
    apply_command,
    check_freshness,
    is_duplicate_action,
    needs_new_session,
)
from .valid_state import InvalidState, check_state

__all__ = [
    "ACTION_WINDOW",
    "COMMAND_TYPES",
    "NO_DISK_WAIT",
    "Command",
    "CommandError",
    "InvalidState",
    "LeadRanking",
    "Outcome",
    "apply_command",
    "build_public_box",
    "build_snapshot",
    "check_freshness",
    "check_state",
    "default_state",
    "is_duplicate_action",
    "lead_ranking",
    "lead_ranking_rows",
    "needs_new_session",
    "normalize_name",
    "parse_command",
    "remaining_seconds",
    "running_deadline_ms",
    "state_from_checkpoint",
]
