"""`record(name, **figures)`: tests/reliability/figures.py when it exists, else this stand-in.

The stand-in has the same signature and behaviour: append one JSON line to the file named by the
environment variable BELAY_RELIABILITY_OUT, and do nothing when it is unset.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

try:  # the shared module another helper is writing
    from tests.reliability.figures import record  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover - depends on the other helper's progress
    def record(name: str, **figures: Any) -> None:  # type: ignore[misc]
        out = os.environ.get("BELAY_RELIABILITY_OUT")
        if not out:
            return
        line = json.dumps({"name": name, "time": time.time(), **figures}, default=str, sort_keys=True)
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
