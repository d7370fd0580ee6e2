"""Numbers from hell wherever a request becomes a number: every numeric path segment of every
route (found in the router, so a new route is covered by itself), the numeric query parameters,
the upload's form fields, every numeric field of every command and of every other JSON body,
WebSocket frames, and the numeric HTTP headers.

Texts of thousands of digits (past Python's 4,300-digit int() limit: once a 500 on
`?limit=`), numbers at and beyond 2**53, 2**63 and 2**64, 1e308, -0.0, huge negatives, spaces,
signs and non-ASCII digits. Every reply is 2xx, or 4xx with {"detail": str}; no 5xx; no
traceback logged; what was accepted can still be read back (snapshot, audit log); afterwards the
server still serves. The restore route's bodies are fuzzed with their own file (state validation).
"""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import WSMsgType, web
from hypothesis import strategies as st
from yarl import URL

from actors.officials import OFFICIAL_KEYS
from actors.rules.commands import COMMAND_TYPES
from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, fuzz, fuzz_examples, send
from tests.hostile.strategies import JSON_NUMBERS, NUMERIC_TEXTS, SETUP, THOUSANDS_OF_DIGITS, dumps
from tests.hostile.test_fuzz_admin import BOUNDARY, multipart
from transport.keys import REGISTRY

JSON_HEADERS = {"Content-Type": "application/json"}
# Query parameters that are numbers, per route. The restore's box_ids belongs to the restore fuzzer.
NUMERIC_QUERIES = {"/api/admin/audit/events": ("limit", "boxId")}
# A valid command of each type: one numeric field at a time is then replaced, so the value meets
# that field's own check rather than an earlier refusal of the body.
VALID_COMMANDS: dict[str, dict[str, Any]] = {
    "INIT_ROUTE": {k: v for k, v in SETUP.items() if k != "type"},
    "START_TIMER": {}, "STOP_TIMER": {"remaining": 120}, "RESUME_TIMER": {}, "PROGRESS_UPDATE": {"delta": 1},
    "REGISTER_TIME": {"registeredTime": 42.5}, "TIMER_SYNC": {"remaining": 100},
    "SET_TIMER_PRESET": {"timerPreset": "05:00"},
    "SUBMIT_SCORE": {"competitor": "Ana Pop", "score": 10, "registeredTime": 61},
    "SET_TIME_CRITERION": {"timeCriterionEnabled": True},
    "SET_TIME_TIEBREAK_DECISION": {"timeTiebreakDecision": "yes", "timeTiebreakFingerprint": "f"},
    "SET_PREV_ROUNDS_TIEBREAK_DECISION": {"prevRoundsTiebreakDecision": "yes", "prevRoundsTiebreakFingerprint": "f",
                                          "prevRoundsTiebreakRanksByName": {"Ana Pop": 1, "Bogdan": 2}},
    "RESET_PARTIAL": {"resetTimer": True}, "RESET_BOX": {}, "ACTIVE_CLIMBER": {"competitor": "Ana Pop"},
    "REQUEST_ACTIVE_COMPETITOR": {}, "REQUEST_STATE": {},
}
assert set(VALID_COMMANDS) == set(COMMAND_TYPES), "a new command type needs its valid example here"
PRESETS = st.tuples(NUMERIC_TEXTS, NUMERIC_TEXTS).map(lambda t: f"{t[0]}:{t[1]}")
COMMAND_NUMBERS: dict[str, st.SearchStrategy] = {
    **dict.fromkeys(("boxId", "boxVersion", "routeIndex", "holdsCount", "routesCount", "remaining", "delta",
                     "registeredTime", "time", "idx", "competitorIdx", "score"), JSON_NUMBERS),
    "holdsCounts": st.lists(JSON_NUMBERS, min_size=1, max_size=3),
    "prevRoundsTiebreakRanksByName": st.dictionaries(st.sampled_from(["Ana Pop", "Bogdan"]), JSON_NUMBERS, min_size=1),
    "timerPreset": PRESETS,
}
RANKING = {"categorie": "U16", "route_count": 2, "scores": {"Ana Pop": [10, 20], "Bogdan": [5, None]},
           "times": {"Ana Pop": [60, 70]}, "holds_counts": [20, 25], "route_index": 2, "box_id": 1}
RANKING_NUMBERS: dict[str, st.SearchStrategy] = {
    **dict.fromkeys(("route_count", "route_index", "active_holds_count", "box_id"), JSON_NUMBERS),
    "holds_counts": st.lists(JSON_NUMBERS, min_size=1, max_size=3),
    "scores": st.lists(JSON_NUMBERS, min_size=1, max_size=2).map(lambda v: {"Ana Pop": v, "Bogdan": [5]}),
    "times": (st.lists(JSON_NUMBERS, min_size=1, max_size=2)
              | st.lists(PRESETS | NUMERIC_TEXTS, min_size=1, max_size=2)).map(lambda v: {"Ana Pop": v}),
    "prev_rounds_tiebreak_resolved_ranks_by_name": st.dictionaries(st.just("Ana Pop"), JSON_NUMBERS, min_size=1),
}
START_LIST = b"Nume,Club\nAna Pop,CS Arad\nBogdan,\n"


def numeric_path_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route with a box id in its path."""
    found = set()
    for route in app.router.routes():
        formatter = route.resource.get_info().get("formatter", "") if route.resource else ""
        if "{box_id}" in formatter and route.method != "HEAD":
            found.add((route.method, formatter))
    return sorted(found)


def _report(*all_verdicts: Verdicts) -> None:
    for verdicts in all_verdicts:
        record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, server_errors=verdicts.server_errors,
               accepted=sum(n for s, n in verdicts.statuses.items() if isinstance(s, int) and 200 <= s < 300),
               violations=len(verdicts.violations))
    problems = [v.report() for v in all_verdicts if v.violations]
    assert not problems, "\n".join(problems)


async def test_fuzz_numbers_in_paths_and_query_strings(hostile: Hostile) -> None:
    client = hostile.client
    assert (await client.post("/api/cmd", json={"boxId": 1, **SETUP})).status == 200
    routes = numeric_path_routes(hostile.app)
    assert len(routes) >= 8, routes  # state, sockets, exports, backups, judge passwords...
    paths, queries = Verdicts("numbers in paths"), Verdicts("numbers in query strings")
    base = str(client.make_url("/")).rstrip("/")

    async def path_number(case: tuple[tuple[str, str], str]) -> None:
        (method, template), text = case
        url = URL(base + template.replace("{box_id}", quote(text, safe="")), encoded=True)
        status, _ = await send(paths, client.session, f"{method} {template}", method, url, case,
                               data=b'{"password":"judge-pass-123"}' if method == "POST" else None,
                               headers=JSON_HEADERS if method == "POST" else None)
        if status in (101, 200) and template.startswith(("/api/ws/", "/api/public/ws/")):
            paths.violate(template, "a plain GET on a socket route was answered 200", case)

    async def query_number(case: tuple[str, str, str]) -> None:
        path, name, text = case
        url = URL(f"{base}{path}?{name}={quote(text, safe='')}", encoded=True)
        await send(queries, client.session, f"GET {path}?{name}=", "GET", url, case)

    numeric_queries = [(path, name) for path, names in NUMERIC_QUERIES.items() for name in names]
    # Each route and each parameter meets the thousands of digits at least once, then anything.
    for method, template in routes:
        await path_number(((method, template), THOUSANDS_OF_DIGITS))
    for path, name in numeric_queries:
        await query_number((path, name, THOUSANDS_OF_DIGITS))
    await fuzz(st.tuples(st.sampled_from(routes), NUMERIC_TEXTS), path_number, examples=fuzz_examples() * 2)
    await fuzz(st.tuples(st.sampled_from(numeric_queries), NUMERIC_TEXTS).map(lambda t: (*t[0], t[1])), query_number)
    assert queries.statuses[200] > 0, "no valid limit got through: the fuzzer is too weak"
    _report(paths, queries)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_numbers_in_upload_form_fields(hostile: Hostile) -> None:
    client = hostile.client
    upload = Verdicts("numbers in upload form fields")

    async def upload_numbers(case: tuple[str, str]) -> None:
        routes_count, holds_counts = case
        parts = [("category", b"U16", None), ("routesCount", routes_count.encode(), None),
                 ("holdsCounts", holds_counts.encode(), None), ("file", START_LIST, "start.csv")]
        await send(upload, client, "POST /api/admin/upload", "POST", "/api/admin/upload", case,
                   data=multipart(parts, BOUNDARY),
                   headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})

    # One field at a time, the other valid (routesCount 1 wants exactly one hold count).
    holds = (JSON_NUMBERS.map(lambda n: dumps([n]).decode()) | NUMERIC_TEXTS.map(lambda t: dumps([t]).decode())
             | NUMERIC_TEXTS.map(lambda t: f"[{t}]")
             | st.lists(JSON_NUMBERS, max_size=3).map(lambda v: dumps(v).decode()))
    await upload_numbers(("1", "[20]"))
    await upload_numbers((THOUSANDS_OF_DIGITS, "[20]"))
    await upload_numbers(("1", f"[{THOUSANDS_OF_DIGITS}]"))
    await fuzz(st.tuples(NUMERIC_TEXTS, st.just("[20]")) | st.tuples(st.just("1"), holds), upload_numbers)
    assert upload.statuses[200] > 0, "no upload got through: the fuzzer is too weak"
    _report(upload)
    hostile.assert_no_tracebacks()


async def test_fuzz_numbers_in_every_numeric_command_field(hostile: Hostile) -> None:
    client = hostile.client
    for box_id in (0, 1, 2):
        assert (await client.post("/api/cmd", json={"boxId": box_id, **SETUP})).status == 200
        hostile.touched.add(box_id)
    commands = Verdicts("numbers in command fields")

    async def command(case: tuple[str, str, Any, int]) -> None:
        kind, field, value, box_id = case
        state = hostile.app[REGISTRY].state(box_id)
        body = {"boxId": box_id, "type": kind, "sessionId": state["sessionId"], "boxVersion": state["boxVersion"],
                **VALID_COMMANDS[kind], field: value}
        status, _ = await send(commands, client, f"POST /api/cmd {field}", "POST", "/api/cmd", body,
                               data=dumps(body), headers=JSON_HEADERS)
        if status == 200:
            # What was accepted must read back: the snapshot and the audit line that holds it.
            await send(commands, client, "GET /api/state after", "GET", f"/api/state/{box_id}", body)
            await send(commands, client, "GET audit after", "GET", "/api/admin/audit/events?limit=1&includePayload=1",
                       body)

    cases = st.tuples(st.sampled_from(COMMAND_TYPES), st.sampled_from(sorted(COMMAND_NUMBERS))).flatmap(
        lambda kf: st.tuples(st.just(kf[0]), st.just(kf[1]), COMMAND_NUMBERS[kf[1]], st.sampled_from([0, 1, 2])))
    await fuzz(cases, command, examples=fuzz_examples() * 3)
    assert commands.statuses[200] > 0, "no command got through: the fuzzer is too weak"
    _report(commands)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_numbers_in_other_json_bodies(hostile: Hostile) -> None:
    """save_ranking's numeric fields; a number where officials, judge passwords and logins want text."""
    client = hostile.client
    ranking, others = Verdicts("numbers in save_ranking"), Verdicts("numbers in other JSON bodies")

    async def save_ranking(case: tuple[str, Any]) -> None:
        field, value = case
        body = {**RANKING, field: value}
        await send(ranking, client, f"POST /api/save_ranking {field}", "POST", "/api/save_ranking", body,
                   data=dumps(body), headers=JSON_HEADERS)

    async def other(case: tuple[str, str, dict[str, Any]]) -> None:
        what, path, body = case
        await send(others, client.session, what, "POST", client.make_url(path), body, data=dumps(body),
                   headers=JSON_HEADERS)

    ranking_cases = st.sampled_from(sorted(RANKING_NUMBERS)).flatmap(
        lambda field: st.tuples(st.just(field), RANKING_NUMBERS[field]))
    await fuzz(ranking_cases, save_ranking, examples=max(20, fuzz_examples() // 2))
    other_cases = st.one_of(
        st.tuples(st.just("officials"), st.just("/api/admin/competition_officials"),
                  st.dictionaries(st.sampled_from(OFFICIAL_KEYS), JSON_NUMBERS, min_size=1)),
        st.tuples(st.just("judge password"), st.sampled_from(["/api/admin/auth/boxes/1/password"]),
                  st.fixed_dictionaries({"password": JSON_NUMBERS | st.just("judge-pass-123")},
                                        optional={"username": JSON_NUMBERS})),
        st.tuples(st.just("login"), st.just("/api/auth/login"),
                  st.fixed_dictionaries({"username": JSON_NUMBERS | st.just("admin"), "password": JSON_NUMBERS})),
    )
    await fuzz(other_cases, other)
    _report(ranking, others)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_numbers_in_websocket_frames(hostile: Hostile) -> None:
    client = hostile.client
    verdicts = Verdicts("numbers in ws frames")
    ws = await client.ws_connect("/api/ws/0")
    await ws.receive(timeout=10)

    async def frame(case: tuple[str, Any]) -> None:
        kind, value = case
        verdicts.cases += 1
        key = "boxId" if kind == "REQUEST_STATE" else "timestamp"
        await ws.send_str(dumps({"type": kind, key: value}).decode())
        await ws.send_str('{"type":"REQUEST_STATE"}')
        while True:
            message = await ws.receive(timeout=10)
            if message.type != WSMsgType.TEXT:
                verdicts.violate(kind, f"socket ended: {message.type} {ws.close_code}", case)
                return
            try:
                reply = orjson.loads(message.data)
            except orjson.JSONDecodeError:
                verdicts.violate(kind, f"non-JSON frame {message.data[:80]!r}", case)
                return
            if reply.get("type") == "STATE_SNAPSHOT" and reply.get("boxId") == 0:
                verdicts.statuses["answered"] += 1
                return

    await fuzz(st.tuples(st.sampled_from(["REQUEST_STATE", "PING"]), JSON_NUMBERS), frame)
    await ws.close()
    record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, answered=verdicts.statuses["answered"],
           violations=len(verdicts.violations))
    assert not verdicts.violations, verdicts.report()
    hostile.assert_no_tracebacks()


NUMERIC_HEADERS = [
    ("POST", "/api/cmd", "Content-Length", [THOUSANDS_OF_DIGITS, str(2**64), str(2**63), "-1", "1e3", " 2", "+2",
                                            "２", "2, 2", "0x2"]),
    ("GET", "/api/admin/backup/download", "Range", [f"bytes={THOUSANDS_OF_DIGITS}-", f"bytes=0-{THOUSANDS_OF_DIGITS}",
                                                    f"bytes=-{2**64}", "bytes=١-٢", f"bytes={2**63}-{2**64}"]),
    ("GET", "/api/state/0", "Host", [f"127.0.0.1:{THOUSANDS_OF_DIGITS[:4000]}", f"127.0.0.1:{2**64}", "[::1]:-1"]),
    ("GET", "/api/ws/0", "Sec-WebSocket-Version", [THOUSANDS_OF_DIGITS[:4000], str(2**64), "-13", "١٣"]),
]


async def test_numeric_headers_never_break_the_server(hostile: Hostile) -> None:
    """Written on a raw socket: aiohttp parses these itself and may answer with its own plain-text
    400 (or 416 for a Range it cannot satisfy); what Belay promises is no 5xx, no traceback, and
    service afterwards."""
    client = hostile.client
    assert (await client.post("/api/admin/ops/backup/now")).status == 200
    cookie = "; ".join(f"{c.key}={c.value}" for c in client.session.cookie_jar)
    cases = 0
    for method, path, header, values in NUMERIC_HEADERS:
        for value in values:
            cases += 1
            reader, writer = await asyncio.open_connection(client.host, client.port)
            head = f"{method} {path} HTTP/1.1\r\nCookie: {cookie}\r\n"
            if header == "Host":  # a foreign Origin makes the server compare it with the Host
                head += "Origin: http://evil.example\r\n"
            else:
                head += "Host: 127.0.0.1\r\n"
            if path.startswith("/api/ws/"):
                head += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            body = b"{}" if method == "POST" else b""
            writer.write(f"{head}{header}: {value}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
            writer.write_eof()  # a declared length longer than the body: the server must not wait for the rest
            reply = await asyncio.wait_for(reader.read(1 << 16), 30)
            writer.close()
            status_line = reply.split(b"\r\n", 1)[0]
            assert not status_line or int(status_line.split()[1]) < 500, (header, value[:40], reply[:300])
    record("hostile.fuzz", target="numeric headers", cases=cases, server_errors=0, violations=0)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()
