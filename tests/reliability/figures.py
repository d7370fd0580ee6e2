"""Counts for the reliability report: `record(name, **figures)` appends one JSON line to the file
named by BELAY_RELIABILITY_OUT, and does nothing when it is not set."""
from __future__ import annotations

import os
import time
from typing import Any

import orjson


def record(name: str, **figures: Any) -> None:
    out = os.environ.get("BELAY_RELIABILITY_OUT")
    if not out:
        return
    line = orjson.dumps({"name": name, "at": time.time(), **figures}, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    with open(out, "ab") as fh:
        fh.write(line)
