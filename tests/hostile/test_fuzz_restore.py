"""POST /api/admin/restore under hostile numbers (issue 16, items 2 and 12).

JSON snapshots (Belay's, with `state`, and the escalada backend's, without) and backup zips whose
checkpoints, log lines and manifest carry numbers at and beyond 2**31, 2**53 and 2**64, negatives,
1e308, floats where ints belong, NaN-like text, deep nesting and huge strings, in every numeric
field of the state, of the escalada fields beside it, of a checkpoint and of an event.

The property: every restore answers 2xx, or 4xx with {"detail": str}, never a 5xx or a traceback;
and after it the box still takes a command, shows its state and backs up, and a full restore of
the competition (JSON every time, the backup zip now and then) still works. Never a bricked box.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import zipfile
from typing import Any

import orjson
from hypothesis import strategies as st

from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, fuzz, send
from tests.hostile.strategies import HOSTILE_TEXT, HUGE_INTS, SETUP, SPECIAL_FLOATS, dumps
from transport.keys import CONFIG, REGISTRY

JSON_HEADERS = {"Content-Type": "application/json"}
ZIP_HEADERS = {"Content-Type": "application/zip"}
BOXES = (0, 1, 2)


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


# Numbers at and past every bound a number can cross on its way to the UI, and the wrong types.
BOUNDARY_NUMBERS = st.sampled_from([
    0, 1, 2**31 - 1, 2**31, 2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 3, 2**64 - 1, 2**64, 2**70,
    -1, -(2**31), -(2**53), -(2**63), -(2**63) - 1, -(2**64), 10**30, 1e308, -1e308, 5e-324, 0.5, 1.0, 7.15,
    99.95, 253_402_300_800_000,
])
ODD_VALUES = st.sampled_from([
    "1", "NaN", "Infinity", "1e308", "-1", "", True, False, None, [], {}, [1], {"n": 1}, _nested(300), _nested(600),
    "x" * 100_000,
])
# The sweep: each numeric field gets each of these, alone.
SWEEP = [2**31, 2**53 - 1, 2**53, 2**64 - 3, 2**64, -1, 1e308, 0.5, "7", True, _nested(300)]
ZIP_SWEEP = [2**53, 2**64 - 3, -1, 1e308, "7"]
# Mostly the numbers: the class of defect this file hunts (a value no box can hold) lives there.
HOSTILE = (BOUNDARY_NUMBERS | BOUNDARY_NUMBERS | BOUNDARY_NUMBERS | HUGE_INTS | SPECIAL_FLOATS | ODD_VALUES
           | HOSTILE_TEXT)

# Paths into a snapshot's `state`. "*" is the first key (or item) found there when the example runs.
STATE_NUMBERS = [
    ("boxVersion",), ("holdsCount",), ("holdCount",), ("routeIndex",), ("routesCount",), ("timerEndsAtMs",),
    ("timerRemainingSec",), ("timerPresetSec",), ("remaining",), ("lastRegisteredTime",), ("holdsCounts", 0),
    ("holdsCounts", 5), ("scores", "*", 0), ("scores", "*", 998), ("times", "*", 0),
    ("prevRoundsTiebreakRanks", "*", "*"), ("prevRoundsTiebreakLineageRanks", "*", "*"),
    ("leadTiebreakBadgesRouteIndex",),
]
STATE_OTHERS = [
    ("competitors", 0, "marked"), ("competitors", 0, "club"), ("competitors", 0, "bib"), ("competitors", 0, "nume"),
    ("timeTiebreakDecisions", "*"), ("recentActionIds", 0), ("sessionId",), ("timerState",), ("started",),
    ("leadTiebreakBadgesByName", "*", "tb_prev"), ("currentClimber",), ("timerPreset",), ("categorie",),
    ("initiated",), ("timeCriterionEnabled",),
]
STATE_PATHS = STATE_NUMBERS + STATE_OTHERS
STATE_PATH = st.sampled_from(STATE_NUMBERS) | st.sampled_from(STATE_NUMBERS) | st.sampled_from(STATE_OTHERS)
# The escalada fields: beside a Belay `state`, or the whole of an escalada backend snapshot.
TOP_NUMBERS = [
    ("boxId",), ("boxVersion",), ("holdsCount",), ("holdCount",), ("routeIndex",), ("routesCount",),
    ("routes_count",), ("registeredTime",), ("remaining",), ("timerPresetSec",), ("competitionId",),
    ("holdsCounts", 0), ("competitorsAll", 0, "boxId"), ("competitorsAll", 0, "bib"), ("scores", "*", 0),
    ("times", "*", 0),
]
TOP_OTHERS = [("clubs", "*"), ("competitors", 0, "marked"), ("ranking",), ("timerState",), ("started",),
              ("timeCriterionEnabled",), ("sessionId",)]
TOP_PATH = st.sampled_from(TOP_NUMBERS) | st.sampled_from(TOP_NUMBERS) | st.sampled_from(TOP_OTHERS)
# Both at once, so the agreement check beside the state cannot hide the state's own check.
SHARED = [path for path in STATE_PATHS if path in TOP_NUMBERS + TOP_OTHERS]

SNAPSHOT_CHANGES = st.lists(st.one_of(
    st.tuples(st.just("both"), st.sampled_from(SHARED), HOSTILE),
    st.tuples(st.just("state"), STATE_PATH, HOSTILE),
    st.tuples(st.just("top"), TOP_PATH, HOSTILE),
), min_size=1, max_size=3)
SNAPSHOT_CASES = st.tuples(st.sampled_from(BOXES), st.sampled_from(["belay", "belay", "escalada"]), SNAPSHOT_CHANGES,
                           st.booleans())

# Paths into a checkpoint file and into one event line of the log.
CHECKPOINT_PATH = (st.sampled_from([("seq",), ("boxId",), ("format",)])
                   | STATE_PATH.map(lambda path: ("state", *path)))
EVENT_NUMBERS = [
    ("seq",), ("boxVersion",), ("nowMs",), ("boxId",), ("cmd", "boxVersion"), ("cmd", "delta"), ("cmd", "routeIndex"),
    ("cmd", "holdsCount"), ("cmd", "routesCount"), ("cmd", "remaining"), ("cmd", "score"), ("cmd", "registeredTime"),
    ("cmd", "idx"), ("cmd", "prevRoundsTiebreakRanksByName", "*"),
]
EVENT_PATH = (st.sampled_from(EVENT_NUMBERS)
              | st.sampled_from([("newSessionId",), ("baseSessionId",), ("cmd", "type"), ("restoredState",)])
              | STATE_PATH.map(lambda path: ("restoredState", *path)))
MANIFEST_PATHS = [("files", 0, "size"), ("storageFormatVersion",), ("committedLogOffset",)]
ZIP_CHANGE = st.one_of(
    st.tuples(st.just("checkpoint"), st.sampled_from(BOXES), CHECKPOINT_PATH, HOSTILE),
    st.tuples(st.just("event"), st.integers(0, 40), EVENT_PATH, HOSTILE),
    st.tuples(st.just("manifest"), st.just(0), st.sampled_from(MANIFEST_PATHS), HOSTILE),
)
# Without its checkpoint a box is rebuilt from the log alone, so every event is replayed.
ZIP_CASES = st.tuples(st.lists(ZIP_CHANGE, min_size=1, max_size=3), st.sets(st.sampled_from(BOXES), max_size=3))


async def test_fuzz_restore_json_snapshots(hostile: Hostile) -> None:
    bases = await _competition(hostile)
    restores, after = Verdicts("restore JSON numbers"), Verdicts("after restore JSON numbers")

    async def check(case: tuple[int, str, list[tuple[str, tuple[Any, ...], Any]], bool]) -> None:
        box_id, kind, changes, force = case
        snapshot = copy.deepcopy(bases[box_id])
        if kind == "escalada":
            snapshot.pop("state")
        for where, path, value in changes:
            if where in ("state", "both") and "state" in snapshot:
                _put(snapshot["state"], path, value)
            if where in ("top", "both"):
                _put(snapshot, path, value)
        body = dumps({"snapshots": [snapshot]})
        query = "?force=1" if force else ""
        status, _ = await send(restores, hostile.client, "POST /api/admin/restore (JSON)", "POST",
                               f"/api/admin/restore{query}", (kind, changes, force), data=body, headers=JSON_HEADERS)
        await _still_works(hostile, after, (kind, changes), box_id, full=200 <= status < 300)

    # Every numeric field with every boundary number, one at a time, then random mixtures.
    for path in STATE_NUMBERS:
        for value in SWEEP:
            await check((0, "belay", [("both" if path in SHARED else "state", path, value)], True))
    for path in TOP_NUMBERS:
        for value in SWEEP:
            await check((0, "belay", [("top", path, value)], True))
            await check((1, "escalada", [("top", path, value)], True))
    await fuzz(SNAPSHOT_CASES, check)
    _report(restores, after)
    assert restores.statuses[200] > 0, "no hostile snapshot was ever accepted: the fuzzer is too weak"
    assert sum(n for s, n in restores.statuses.items() if s == 400) > 0
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_restore_backup_zips(hostile: Hostile) -> None:
    await _competition(hostile)
    original = await _backup_zip(hostile)
    restores, after = Verdicts("restore zip numbers"), Verdicts("after restore zip numbers")
    runs = 0

    async def check(case: tuple[list[tuple[str, int, tuple[Any, ...], Any]], set[int]],
                    boxes: tuple[int, ...] = BOXES) -> None:
        nonlocal runs
        changes, without_checkpoint = case
        body = _forged(original, changes, without_checkpoint)
        example = (changes, sorted(without_checkpoint))
        status, _ = await send(restores, hostile.client, "POST /api/admin/restore (zip)", "POST",
                               "/api/admin/restore?force=1", example, data=body, headers=ZIP_HEADERS)
        for box_id in boxes:
            await _still_works(hostile, after, example, box_id, full=box_id == boxes[0] and 200 <= status < 300)
        runs += 1
        if runs % 25 == 0:  # the competition as it now is, backed up and put back whole
            await _zip_round_trip(hostile, after, example)

    # A checkpoint, then every event of a box rebuilt from the log alone (box 2's log holds a
    # RESTORE event), with every boundary number in every numeric field, then random mixtures.
    for path in [("seq",), *(("state", *p) for p in STATE_NUMBERS)]:
        for value in ZIP_SWEEP:
            await check(([("checkpoint", 0, path, value)], set()), (0,))
    for path in EVENT_NUMBERS:
        for value in ZIP_SWEEP:
            await check(([("box events", 0, path, value)], {0}), (0,))
    for path in STATE_NUMBERS:
        for value in ZIP_SWEEP:
            await check(([("box events", 2, ("restoredState", *path), value)], {2}), (2,))
    await fuzz(ZIP_CASES, check)
    await _zip_round_trip(hostile, after, "final")
    _report(restores, after)
    assert restores.statuses[200] > 0 and restores.statuses[400] > 0, dict(restores.statuses)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


# -- the competition the examples start from -----------------------------------------------------

async def _competition(hostile: Hostile) -> dict[int, dict[str, Any]]:
    """Box 0: a running clock, scores, times, clubs, the time criterion and both kinds of decision.
    Box 1: a fresh route. Box 2: restored once (so the log holds a RESTORE event), then scored."""
    client = hostile.client
    for box_id in BOXES:
        assert (await client.post("/api/cmd", json={"boxId": box_id, **SETUP})).status == 200
    await _cmd(hostile, 0, "SET_TIME_CRITERION", timeCriterionEnabled=True)
    await _cmd(hostile, 0, "SUBMIT_SCORE", competitor="Ana Pop", score=7.1, registeredTime=55)
    await _cmd(hostile, 0, "SUBMIT_SCORE", competitor="Bogdan", score=7.1, registeredTime=61.5)
    await _cmd(hostile, 0, "SET_TIME_TIEBREAK_DECISION", timeTiebreakDecision="yes", timeTiebreakFingerprint="fp-a")
    await _cmd(hostile, 0, "SET_PREV_ROUNDS_TIEBREAK_DECISION", prevRoundsTiebreakDecision="yes",
               prevRoundsTiebreakFingerprint="fp-b", prevRoundsTiebreakLineageKey="lk",
               prevRoundsTiebreakRanksByName={"Ana Pop": 1, "Bogdan": 2})
    await _cmd(hostile, 0, "PROGRESS_UPDATE", delta=0.1, actionId="setup-1")
    await _cmd(hostile, 0, "START_TIMER")
    response = await client.post("/api/admin/restore?force=1",
                                 json={"snapshots": [await _backup_of(hostile, 2)]})
    assert response.status == 200, await response.text()
    await _cmd(hostile, 2, "SUBMIT_SCORE", competitor="Ștefan", score=3, registeredTime=12)
    hostile.touched.update(BOXES)
    return {box_id: await _backup_of(hostile, box_id) for box_id in BOXES}


async def _cmd(hostile: Hostile, box_id: int, kind: str, **fields: Any) -> tuple[int, bytes]:
    live = hostile.app[REGISTRY].state(box_id)
    body = {"boxId": box_id, "type": kind, "sessionId": live["sessionId"], "boxVersion": live["boxVersion"], **fields}
    response = await hostile.client.post("/api/cmd", json=body)
    text = await response.read()
    assert response.status == 200, text
    return response.status, text


async def _backup_of(hostile: Hostile, box_id: int) -> dict[str, Any]:
    response = await hostile.client.get(f"/api/admin/backup/box/{box_id}")
    assert response.status == 200, await response.text()
    return (await response.json())["snapshot"]


async def _backup_zip(hostile: Hostile) -> bytes:
    response = await hostile.client.post("/api/admin/ops/backup/now")
    assert response.status == 200, await response.text()
    return (hostile.app[CONFIG].backup_dir / (await response.json())["filename"]).read_bytes()


# -- the property after each restore ------------------------------------------------------------

async def _still_works(hostile: Hostile, verdicts: Verdicts, example: object, box_id: int, *,
                       full: bool = True) -> None:
    """A command, a read and a backup of the box, then (if `full`) a JSON restore of every box."""
    client = hostile.client
    for _ in range(2):  # two: a version one short of a bound fails only on the second
        live = hostile.app[REGISTRY].state(box_id)
        command = {"boxId": box_id, "type": "REGISTER_TIME", "registeredTime": 12.5,
                   "sessionId": live["sessionId"], "boxVersion": live["boxVersion"]}
        status, body = await send(verdicts, client, "command on the box", "POST", "/api/cmd", example, json=command)
        if status != 200:
            verdicts.violate("command on the box", f"HTTP {status} (the box is bricked): {body[:160]!r}", example)
    for what, method, path, kwargs in (
            ("GET its state", "GET", f"/api/state/{box_id}", {}),
            ("backup of the box", "GET", f"/api/admin/backup/box/{box_id}", {})):
        status, body = await send(verdicts, client, what, method, path, example, **kwargs)
        if status != 200:
            verdicts.violate(what, f"HTTP {status} (the box is bricked): {body[:160]!r}", example)
    if not full:
        return
    status, body = await send(verdicts, client, "GET /api/admin/backup/full", "GET", "/api/admin/backup/full", example)
    if status != 200:
        verdicts.violate("full backup", f"HTTP {status}", example)
        return
    snapshots = orjson.loads(body)["snapshots"]
    status, body = await send(verdicts, client, "full JSON restore", "POST", "/api/admin/restore?force=1", example,
                              data=orjson.dumps({"snapshots": snapshots}), headers=JSON_HEADERS)
    if status != 200:
        verdicts.violate("full JSON restore", f"HTTP {status} (a backup Belay wrote was refused): {body[:160]!r}",
                         example)


async def _zip_round_trip(hostile: Hostile, verdicts: Verdicts, example: object) -> None:
    response = await hostile.client.post("/api/admin/ops/backup/now")
    if response.status != 200:
        verdicts.violate("backup zip", f"HTTP {response.status}: {await response.text()}", example)
        return
    data = (hostile.app[CONFIG].backup_dir / (await response.json())["filename"]).read_bytes()
    status, body = await send(verdicts, hostile.client, "zip restore of a fresh backup", "POST",
                              "/api/admin/restore?force=1", example, data=data, headers=ZIP_HEADERS)
    if status != 200:
        verdicts.violate("zip restore of a fresh backup", f"HTTP {status}: {body[:160]!r}", example)


# -- forging ---------------------------------------------------------------------------------------

def _forged(original: bytes, changes: list[tuple[str, int, tuple[Any, ...], Any]],
            without_checkpoint: set[int]) -> bytes:
    """The backup with the changes made and every checksum in the manifest made to match again
    (a wrong checksum is refused before anything is read: that would test nothing)."""
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = orjson.loads(files.pop("manifest.json"))
    for box_id in without_checkpoint:
        files.pop(f"boxes/{box_id}.json", None)
    lines = files["events.ndjson"].splitlines()
    manifest_changes = []
    for kind, index, path, value in changes:
        if kind == "checkpoint" and f"boxes/{index}.json" in files:
            doc = orjson.loads(files[f"boxes/{index}.json"])
            _put(doc, path, value)
            files[f"boxes/{index}.json"] = _raw(doc)
        elif kind == "event" and lines:
            event = json.loads(lines[index % len(lines)])
            _put(event, path, value)
            lines[index % len(lines)] = _raw(event)
        elif kind == "box events":  # every line of box `index`
            for number, line in enumerate(lines):
                event = json.loads(line)
                if event.get("boxId") == index and (path[0] != "restoredState" or "restoredState" in event):
                    _put(event, path, value)
                    lines[number] = _raw(event)
        elif kind == "manifest":
            manifest_changes.append((path, value))
    files["events.ndjson"] = b"".join(line + b"\n" for line in lines)
    manifest["files"] = [{"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                         for name, data in files.items()]
    for path, value in manifest_changes:
        _put(manifest, path, value)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", _raw(manifest))
    return buffer.getvalue()


def _raw(value: Any) -> bytes:
    """One line of JSON the way a hand edit could write it: big integers, NaN and all."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set `value` at `path`, creating what is missing; "*" is the first key or item already there."""
    *parents, last = path
    for step in parents:
        if isinstance(doc, dict):
            step = next(iter(doc), "Ana Pop") if step == "*" else step
            if not isinstance(doc.get(step), (dict, list)):
                doc[step] = {}
            doc = doc[step]
        elif isinstance(doc, list):
            step = 0 if step == "*" else step
            while len(doc) <= step:
                doc.append({})
            if not isinstance(doc[step], (dict, list)):
                doc[step] = {}
            doc = doc[step]
    if isinstance(doc, dict):
        doc[next(iter(doc), "Ana Pop") if last == "*" else last] = value
    elif isinstance(doc, list):
        last = 0 if last == "*" else last
        doc.extend([None] * (last + 1 - len(doc)))
        doc[last] = value


def _report(*all_verdicts: Verdicts) -> None:
    for verdicts in all_verdicts:
        record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, server_errors=verdicts.server_errors,
               accepted=sum(n for s, n in verdicts.statuses.items() if 200 <= s < 300),
               violations=len(verdicts.violations))
    problems = [v.report() for v in all_verdicts if v.violations]
    assert not problems, "\n".join(problems)
