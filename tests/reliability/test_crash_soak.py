"""The SIGKILL soak: `BELAY_CRASH_ROUNDS=500 pytest tests/reliability/test_crash_soak.py`.

CI runs the same `run_rounds` for 5 rounds in tests/system/test_restart_and_crash.py; this one only
runs when BELAY_CRASH_ROUNDS asks for more, so the default suite stays fast."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.crash_soak import run_rounds
from tests.reliability.figures import record

ROUNDS = int(os.environ.get("BELAY_CRASH_ROUNDS", "0"))


@pytest.mark.skipif(ROUNDS <= 5, reason="soak: set BELAY_CRASH_ROUNDS (e.g. 500); 5 rounds run in tests/system")
async def test_sigkill_soak(spawn_server, tmp_path: Path) -> None:
    totals = await run_rounds(ROUNDS, tmp_path / "data", spawn_server)
    record("crash_soak", **totals)
    assert totals["rounds"] == ROUNDS and totals["acknowledged"] > 0 and totals["lost"] == 0
