"""Shared machinery of the hostile-input tests: the verdict on every reply, a trap for server
tracebacks, the hypothesis runner, and resource probes (fds, tasks, subscribers)."""
from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# Loggers whose ERROR lines mean "the server failed on input" (the request middleware logs "unhandled error ..."
# on belay.http; aiohttp logs handler crashes on aiohttp.server; lost task errors go to asyncio).
TRAPPED_LOGGERS = ("belay", "aiohttp", "asyncio")


def fuzz_examples(default: int = 100) -> int:
    return int(os.environ.get("BELAY_FUZZ_EXAMPLES") or default)


def flood_size(default: int = 2000) -> int:
    return int(os.environ.get("BELAY_FLOOD_SIZE") or default)


class ErrorTrap(logging.Handler):
    """Collects every ERROR (or worse) logged by the server while installed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorTrap:
        for name in TRAPPED_LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in TRAPPED_LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def describe(self) -> list[str]:
        out = []
        for record in self.records:
            exc_info = record.exc_info
            kind = f" [{exc_info[0].__name__}: {exc_info[1]}]" if exc_info and exc_info[0] else ""
            out.append(f"{record.name} {record.levelname}: {record.getMessage()}{kind}")
        return out

    def with_traceback(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.exc_info or "unhandled error" in r.getMessage()]


@dataclass
class Verdicts:
    """Every reply of a fuzz target, judged: 2xx, or 4xx with a JSON object holding a string `detail`.

    Violations do not stop the run (so one bug does not hide the next); the smallest example of each
    distinct failure is kept for the report and asserted on at the end.
    """

    target: str
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    violations: dict[tuple[str, str], str] = field(default_factory=dict)

    def judge(self, what: str, status: int, body: bytes, example: object) -> bool:
        self.cases += 1
        self.statuses[status] += 1
        problem = None
        if status >= 500:
            problem = f"HTTP {status}"
        elif 400 <= status < 500:
            try:
                reply = orjson.loads(body)
            except orjson.JSONDecodeError:
                problem = f"HTTP {status} body is not JSON"
            else:
                if not isinstance(reply, dict) or not isinstance(reply.get("detail"), str):
                    problem = f"HTTP {status} without a string detail"
        elif not 200 <= status < 300:
            problem = f"HTTP {status} (neither 2xx nor 4xx)"
        if problem is not None:
            self.violate(what, f"{problem}: {body[:160]!r}", example)
            return False
        return True

    def violate(self, what: str, problem: str, example: object) -> None:
        key = (what, problem)
        shown = _short(example)
        if key not in self.violations or len(shown) < len(self.violations[key]):
            self.violations[key] = shown

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def report(self) -> str:
        lines = [f"{self.target}: {len(self.violations)} distinct failure(s) in {self.cases} cases"]
        for (what, problem), example in sorted(self.violations.items()):
            lines.append(f"  {what}: {problem}\n    smallest example: {example}")
        return "\n".join(lines)


def _short(example: object, limit: int = 600) -> str:
    text = repr(example)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


async def fuzz(strategy: st.SearchStrategy, check: Callable[[Any], Awaitable[None]], *,
               examples: int | None = None) -> None:
    """Run `check` on `examples` values drawn by hypothesis, each on the server's event loop.

    Hypothesis drives from a worker thread, so the server keeps running on this loop between
    examples. Derandomized (reproducible), no deadline, no example database (nothing written to
    the working tree), no shrinking (checks record violations instead of failing).
    """
    loop = asyncio.get_running_loop()

    @settings(max_examples=examples or fuzz_examples(), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(strategy)
    def run(value: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=120)

    await asyncio.to_thread(run)


async def send(verdicts: Verdicts, client: Any, what: str, method: str, path: str, example: object,
               **kwargs: Any) -> tuple[int, bytes]:
    """One request, judged. A dropped connection or a hang counts as a failure too."""
    try:
        async with client.request(method, path, timeout=aiohttp.ClientTimeout(total=60), **kwargs) as response:
            body = await response.read()
    except (TimeoutError, aiohttp.ClientConnectionError) as exc:
        verdicts.cases += 1
        verdicts.violate(what, f"no reply: {type(exc).__name__}: {exc}", example)
        return 0, b""
    verdicts.judge(what, response.status, body, example)
    return response.status, body


# -- resources -----------------------------------------------------------------------------------

def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def task_count() -> int:
    return len(asyncio.all_tasks())


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


async def settle(probes: dict[str, Callable[[], int]], baseline: dict[str, int], slack: dict[str, int], *,
                 attempts: int = 400, pause: float = 0.05) -> dict[str, int]:
    """Poll until every probe is back within baseline + slack (a bounded number of rounds, not a
    time budget); returns the last readings, which the caller asserts on."""
    readings: dict[str, int] = {}
    for _ in range(attempts):
        readings = {name: probe() for name, probe in probes.items()}
        if all(readings[name] <= baseline[name] + slack.get(name, 0) for name in probes):
            break
        await asyncio.sleep(pause)
    return readings


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
