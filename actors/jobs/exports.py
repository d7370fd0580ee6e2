"""The export jobs that run in the worker process: result files on disk, the official ZIP, the box CSV, the podium.

Every `*_job` function runs in the worker (see `ExportRunner`), never on the event loop. Jobs take and
return plain picklable values; contest rules come from actors.rules (pure), files are written
atomically (temp file, fsync, rename).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import orjson

from actors.codes import EXPORT_FAILED, EXPORT_TIMEOUT, RANKING_UNREADABLE, STORAGE_UNAVAILABLE
from actors.jobs.pool import WorkerDied, WorkerPool, WorkerTimeout
from actors.rules.results import Results, ResultsInput, compute_results, decisions_from_rows, ranking_table
from persistence.fs import FileSystem, write_atomic

log = logging.getLogger("belay.exports")
T = TypeVar("T")

EXPORT_TIMEOUT_S = 30.0
MAX_RESULT_ATHLETES = 500
# A lead round has 1-4 routes; 500 athletes on 16 routes build a full ZIP in ~9 s, well inside the time cap.
MAX_RESULT_ROUTES = 16
MAX_PODIUM_FILE_BYTES = 20 * 1024 * 1024
PODIUM_COLORS = {1: "#ffd700", 2: "#c0c0c0", 3: "#cd7f32"}
MAX_FOLDER_BYTES = 100
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}

EXPORT_TOO_SLOW = f"{EXPORT_TIMEOUT}: building the results took too long"
EXPORT_WORKER_DIED = f"{EXPORT_FAILED}: the export worker stopped"
NO_RANKING_SAVED = "Clasament inexistent pentru categoria specificată."
UNREADABLE_RANKING = "the saved ranking could not be read"


class ExportError(Exception):
    """A job that failed: its code (actors/codes.py) and the `detail` a client reads (the code
    itself unless given). Picklable across processes."""

    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = code if detail is None else detail


@dataclass(frozen=True, slots=True)
class LeadOutcome:
    """What the live lead ranking of the active route says, after the tie-break decisions."""

    rows: list[dict[str, Any]]
    tie_events: list[dict[str, Any]]
    current_fingerprint: str | None
    has_eligible_tie: bool
    is_resolved: bool


@dataclass(frozen=True, slots=True)
class ResultsJob:
    """Results to compute, and the state whose lead ranking decides ties on the active route."""

    given: ResultsInput
    lead_state: Mapping[str, Any]


class ExportRunner:
    """The worker process for exports: one job at a time, killed and replaced past EXPORT_TIMEOUT_S."""

    def __init__(self, timeout_s: float = EXPORT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._pool = WorkerPool(timeout_s)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args, deadline) in the worker; any failure becomes an ExportError with a JSON-friendly reason.

        `deadline` (wall clock) lets a job stop by itself between files; one that does not is killed
        shortly after it.
        """
        try:
            return await self._pool.run(fn, *args, time.time() + self.timeout_s)
        except ExportError:
            raise
        except WorkerTimeout:
            raise ExportError(EXPORT_TIMEOUT, EXPORT_TOO_SLOW) from None
        except WorkerDied:
            raise ExportError(EXPORT_FAILED, EXPORT_WORKER_DIED) from None
        except OSError as exc:
            log.error("export could not write or read its files: %s", exc)
            raise ExportError(STORAGE_UNAVAILABLE) from None
        except Exception:
            log.exception("export job %s failed", getattr(fn, "__name__", fn))
            raise ExportError(EXPORT_FAILED) from None

    async def close(self) -> None:
        await self._pool.close()


# -- folder names (event loop and worker) ---------------------------------------------------------


def results_folder(category: str) -> str:
    """A category (already validated: no separators, NUL or control characters) as one safe directory name.

    Letters (Romanian included), digits, space, "._-" are kept. Anything else, a leading dot, a Windows
    device name or an over-long name is replaced AND a hash of the category is appended, so two
    categories never share a folder.
    """
    kept = "".join(ch if ch.isalnum() or ch in " ._-" else "_" for ch in category).strip(" .")
    too_long = len(kept.encode()) > MAX_FOLDER_BYTES
    if kept == category and not too_long and kept.split(".")[0].upper() not in _WINDOWS_RESERVED:
        return kept
    while len(kept.encode()) > MAX_FOLDER_BYTES:
        kept = kept[:-1]
    digest = hashlib.sha1(category.encode()).hexdigest()[:10]
    return f"{kept.strip(' .')}-{digest}" if kept.strip(" .") else f"category-{digest}"


def ascii_folder(name: str) -> str:
    """§7.4: characters outside [A-Za-z0-9._-] become "_", leading/trailing "._-" trimmed, fallback "export"."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name).strip("._-")
    return safe or "export"


# -- jobs (worker process) ------------------------------------------------------------------------


def save_ranking_job(job: ResultsJob, folder: str, deadline: float) -> dict[str, Any]:
    """Write overall.xlsx/.pdf and route_k.xlsx/.pdf into `folder`; the save_ranking reply.

    Every file is built before the first is written, so a job over its time cap leaves the old set.
    """
    lead = lead_outcome(job.lead_state)
    results = compute_results(_with_decisions(job.given, lead))
    files = _built_files(results, deadline)
    directory = Path(folder)
    os.makedirs(directory, exist_ok=True)
    fs = FileSystem()
    saved = []
    for name, data in files:
        path = directory / name
        write_atomic(fs, path, data)
        saved.append(str(path.resolve()))
    return {
        "status": "ok",
        "saved": saved,
        "time_tiebreak_fingerprint": lead.current_fingerprint,
        "time_tiebreak_has_eligible_tie": lead.has_eligible_tie,
        "time_tiebreak_is_resolved": lead.is_resolved,
    }


def official_zip_job(job: ResultsJob, folder: str, metadata: dict[str, Any], deadline: float) -> bytes:
    """§7.4: <folder>/overall.*, route_k.*, metadata.json, with the box's tie-break decisions applied."""
    lead = lead_outcome(job.lead_state)
    results = compute_results(_with_decisions(job.given, lead))
    metadata = {
        **metadata,
        "timeTiebreakCurrentFingerprint": lead.current_fingerprint,
        "timeTiebreakHasEligibleTie": lead.has_eligible_tie,
        "timeTiebreakIsResolved": lead.is_resolved,
        "timeTiebreakEligibleGroups": lead.tie_events,
        "ranking": ranking_table(results),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in _built_files(results, deadline):
            archive.writestr(f"{folder}/{name}", data)
        archive.writestr(f"{folder}/metadata.json", orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
    return buffer.getvalue()


def box_csv_job(job: ResultsJob, header: dict[str, Any], competitors: list[str], deadline: float) -> str:
    """§1.8's CSV: box header, current state, competitors, then scores and the overall when there are scores."""
    from actors.jobs.sheets import mm_ss

    given = job.given
    out = io.StringIO()
    writer = csv.writer(out)

    def write(*cells: object) -> None:
        writer.writerow([_csv_cell(c) for c in cells])

    write("boxId", header["boxId"])
    write("competitionId", None)
    write("categorie", header["categorie"])
    write("boxVersion", header["boxVersion"])
    write()
    write("Current state")
    for key in ("holdCount", "started", "timerState", "currentClimber", "remaining"):
        write(key, header[key])
    write()
    write("Competitors (all)")
    write("id", "name", "category", "bib", "boxId")
    for name in competitors:
        write(None, name, None, None, header["boxId"])
    if any(any(v is not None for v in values) for values in given.scores.values()):
        n = given.routes_count
        write()
        write("Scores (per competitor)")
        write("Name", *(f"Route {k}" for k in range(1, n + 1)),
              *(f"Time {k}" for k in range(1, n + 1) if given.show_times))
        results = compute_results(_with_decisions(given, lead_outcome(job.lead_state)))
        for row in sorted(results.overall, key=lambda r: (r.name.casefold(), r.name)):
            write(row.name, *row.scores, *([mm_ss(t) for t in row.times] if given.show_times else []))
        write()
        write("Ranking (overall)")
        write("Rank", "Nume", "Club", *(f"Score R{k}" for k in range(1, n + 1)), "Total")
        for row in results.overall:
            write(row.rank, row.name, row.club or None, *row.scores, row.total)
    return out.getvalue()


def podium_job(path: str, deadline: float) -> list[dict[str, str]] | None:
    """The top of a saved overall.xlsx: every row ranked 1-3, coloured by its rank; None when nothing is saved."""
    import openpyxl

    file = Path(path)
    if not file.is_file():
        return None
    if file.stat().st_size > MAX_PODIUM_FILE_BYTES:
        raise ExportError(RANKING_UNREADABLE, UNREADABLE_RANKING)
    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except Exception:
        raise ExportError(RANKING_UNREADABLE, UNREADABLE_RANKING) from None
    try:
        sheet = workbook.active
        if sheet is None:  # no sheet to read: the job fails as it did when this raised AttributeError
            raise ExportError(EXPORT_FAILED)
        rows = sheet.iter_rows(values_only=True)
        header = [str(v) if v is not None else "" for v in next(rows, ())]
        name_col = header.index("Nume") if "Nume" in header else header.index("Name") if "Name" in header else None
        rank_col = header.index("Rank") if "Rank" in header else None
        if name_col is None:
            raise ExportError(RANKING_UNREADABLE, UNREADABLE_RANKING)
        podium = []
        for position, row in enumerate(rows, start=1):
            rank = row[rank_col] if rank_col is not None and rank_col < len(row) else position
            if not isinstance(rank, (int, float)) or isinstance(rank, bool):
                rank = position
            if rank > 3:
                break
            name = row[name_col] if name_col < len(row) else None
            if name is not None and str(name).strip():
                podium.append({"name": str(name), "color": PODIUM_COLORS[max(1, int(rank))]})
        return podium
    finally:
        workbook.close()


# -- helpers (worker process) ---------------------------------------------------------------------


def lead_outcome(state: Mapping[str, Any]) -> LeadOutcome:
    """The active route's lead ranking with the §7.2 tie-break workflow."""
    from actors.rules.tiebreak import lead_ranking

    ranking = lead_ranking(state)
    return LeadOutcome(list(ranking.rows), list(ranking.tie_events), ranking.current_fingerprint,
                       bool(ranking.has_eligible_tie), bool(ranking.is_resolved))


def _with_decisions(given: ResultsInput, lead: LeadOutcome) -> ResultsInput:
    ranks, tb_time, tb_prev = decisions_from_rows(lead.rows)
    return replace(given, active_ranks=ranks, tb_time=tb_time, tb_prev=tb_prev)


def _built_files(results: Results, deadline: float) -> list[tuple[str, bytes]]:
    """(file name, bytes) of overall.xlsx/.pdf and route_k.xlsx/.pdf; stops at the deadline."""
    from actors.jobs import sheets

    tables = [("overall", sheets.overall_table(results))]
    tables += [(f"route_{k}", sheets.route_table(results, k)) for k in range(1, results.routes_count + 1)]
    files = []
    for stem, table in tables:
        for suffix, build in ((".xlsx", sheets.xlsx_bytes), (".pdf", sheets.pdf_bytes)):
            if time.time() > deadline:
                raise ExportError(EXPORT_TIMEOUT, EXPORT_TOO_SLOW)
            files.append((stem + suffix, build(table)))
    return files


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection). Only text is
# quoted: numbers, negative ones included, are written by the writer as numbers and stay numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """Booleans as True/False and None as empty (§1.8); text a spreadsheet would run as a formula gets a leading "'"."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return "" if value is None else value
