"""Every admin route, and login, under hostile input: officials, judge passwords, account changes,
restore JSON, save_ranking, the start-list upload (random multipart parts), audit query strings, box ids and
categories in paths.

Every reply is 2xx, or 4xx with {"detail": str}; no 5xx; no ERROR logged; afterwards every box
(restored ones included) still builds a snapshot and a valid command still works.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from yarl import URL

from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, fuzz, fuzz_examples, send
from tests.hostile.strategies import (
    BODIES,
    JSON,
    JUDGE_PASSWORD,
    LOGIN,
    OFFICIALS,
    PARTS,
    QUERIES,
    RAW_QUERIES,
    RESTORE,
    SAVE_RANKING,
    SEGMENTS,
    SETUP,
    TEXT,
    dumps,
)

JSON_HEADERS = {"Content-Type": "application/json"}
PATH_ROUTES = ("GET /api/state/{}", "GET /api/admin/export/box/{}", "GET /api/admin/export/official/box/{}",
               "GET /api/admin/backup/box/{}", "GET /api/podium/{}", "POST /api/admin/auth/boxes/{}/password",
               "POST /api/admin/auth/boxes/{}/magic-token", "GET /api/ws/{}", "GET /api/public/ws/{}")


ACCOUNT_CHANGES = st.tuples(
    st.sampled_from(["disable", "enable", "remove"]),
    st.fixed_dictionaries({}, optional={"username": st.sampled_from(["admin", "Box 1", "1", "box 0"]) | TEXT | JSON})
    | JSON)

BOUNDARY = "belay-hostile-boundary"


def multipart(parts: list[tuple[str, bytes, str | None]], boundary: str) -> bytes:
    """A multipart/form-data body built by hand, so any name or file name can go in (quotes and
    line breaks are the only characters a browser would escape)."""
    out = bytearray()
    for name, value, filename in parts:
        quoted = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        disposition = f'form-data; name="{quoted}"'
        if filename is not None:
            disposition += f'; filename="{filename.replace(chr(34), "%22")}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode("utf-8", "surrogatepass")
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _report(*all_verdicts: Verdicts) -> None:
    for verdicts in all_verdicts:
        record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, server_errors=verdicts.server_errors,
               accepted=sum(n for s, n in verdicts.statuses.items() if 200 <= s < 300),
               violations=len(verdicts.violations))
    problems = [v.report() for v in all_verdicts if v.violations]
    assert not problems, "\n".join(problems)


async def test_fuzz_admin_json_routes(hostile: Hostile) -> None:
    client = hostile.client
    for box_id in (0, 1):
        assert (await client.post("/api/cmd", json={"boxId": box_id, **SETUP})).status == 200
    officials, judges, restore, ranking, accounts = (
        Verdicts(n) for n in ("officials", "judge password", "restore JSON", "save_ranking", "account changes"))

    async def set_officials(body: Any) -> None:
        await send(officials, client, "POST /api/admin/competition_officials", "POST",
                   "/api/admin/competition_officials", body, data=dumps(body), headers=JSON_HEADERS)

    async def set_judge(case: tuple[int, Any]) -> None:
        box_id, body = case
        await send(judges, client, "POST /api/admin/auth/boxes/{id}/password", "POST",
                   f"/api/admin/auth/boxes/{box_id}/password", case, data=dumps(body), headers=JSON_HEADERS)

    async def change_account(case: tuple[str, Any]) -> None:
        action, body = case
        await send(accounts, client, "POST /api/admin/users/{action}", "POST", f"/api/admin/users/{action}", case,
                   data=dumps(body), headers=JSON_HEADERS)

    async def restore_json(body: Any) -> None:
        status, reply = await send(restore, client, "POST /api/admin/restore (JSON)", "POST", "/api/admin/restore",
                                   body, data=dumps(body), headers=JSON_HEADERS)
        if status == 200:
            hostile.touched.update(b["boxId"] for b in __import__("orjson").loads(reply)["boxes"])
            # What a restore accepted must still be servable: the snapshot route and the export.
            for box in __import__("orjson").loads(reply)["boxes"]:
                await send(restore, client, "GET /api/state/{restored}", "GET", f"/api/state/{box['boxId']}", body)

    async def save_ranking(body: Any) -> None:
        await send(ranking, client, "POST /api/save_ranking", "POST", "/api/save_ranking", body,
                   data=dumps(body), headers=JSON_HEADERS)

    await fuzz(OFFICIALS | BODIES, set_officials)
    # scrypt costs ~50 ms per accepted password: a quarter of the examples keeps the default run short.
    await fuzz(st.tuples(st.sampled_from([0, 1, 2, 9999]), JUDGE_PASSWORD), set_judge,
               examples=max(10, fuzz_examples() // 4))
    await fuzz(ACCOUNT_CHANGES, change_account)
    await fuzz(RESTORE, restore_json, examples=fuzz_examples() * 2)
    await fuzz(SAVE_RANKING, save_ranking)
    _report(officials, judges, accounts, restore, ranking)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_upload_queries_and_path_ids(hostile: Hostile) -> None:
    client = hostile.client
    assert (await client.post("/api/cmd", json={"boxId": 1, **SETUP})).status == 200
    upload, audit, paths = Verdicts("upload multipart"), Verdicts("audit query"), Verdicts("path ids")

    async def upload_parts(parts: list[tuple[str, bytes, str | None]]) -> None:
        body = multipart(parts, BOUNDARY)
        await send(upload, client, "POST /api/admin/upload", "POST", "/api/admin/upload", parts, data=body,
                   headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})

    async def upload_raw(case: tuple[bytes, str]) -> None:
        body, boundary = case
        await send(upload, client, "POST /api/admin/upload (raw)", "POST", "/api/admin/upload", (body[:200], boundary),
                   data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    async def audit_query(case: tuple[dict[str, str], str]) -> None:
        query, raw = case
        await send(audit, client, "GET /api/admin/audit/events", "GET", "/api/admin/audit/events", query,
                   params=query)
        url = URL(f"{client.make_url('/api/admin/audit/events')}?{raw}", encoded=True)
        await send(audit, client.session, "GET /api/admin/audit/events (raw query)", "GET", url, raw)

    async def path_id(case: tuple[str, str]) -> None:
        route, segment = case
        method, template = route.split(" ")
        url = URL(str(client.make_url("/")).rstrip("/") + template.format(segment), encoded=True)
        if template.startswith(("/api/ws", "/api/public/ws")):
            await path_ws(route, url, segment)
            return
        await send(paths, client.session, route, method, url, segment, data=b'{"password":"judge-pass-123"}',
                   headers=JSON_HEADERS)

    async def path_ws(route: str, url: URL, segment: str) -> None:
        # A bad box id in a socket path is refused before the upgrade, as plain HTTP 4xx JSON.
        status, body = await send(paths, client.session, route, "GET", url, segment)
        if status in (101, 200):
            paths.violate(route, f"upgrade or 200 accepted for a bad id: {body[:80]!r}", segment)

    multipart_raw = st.tuples(BODIES, st.sampled_from(["b", "", '"', "x" * 200, "\u00e9", "--"]))
    await fuzz(PARTS, upload_parts)
    await fuzz(multipart_raw, upload_raw, examples=max(10, fuzz_examples() // 2))
    await fuzz(st.tuples(QUERIES, RAW_QUERIES), audit_query)
    await fuzz(st.tuples(st.sampled_from(PATH_ROUTES), SEGMENTS), path_id, examples=fuzz_examples() * 2)
    _report(upload, audit, paths)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


async def test_fuzz_login_bodies(hostile: Hostile) -> None:
    client = hostile.client
    login = Verdicts("login")

    async def attempt(case: tuple[Any, bytes | None]) -> None:
        body, raw = case
        data = raw if raw is not None else dumps(body)
        await send(login, client.session, "POST /api/auth/login", "POST", client.make_url("/api/auth/login"),
                   (body, raw[:200] if raw else None), data=data, headers=JSON_HEADERS)

    await fuzz(st.tuples(LOGIN, st.none() | BODIES), attempt)
    _report(login)
    statuses = dict(login.statuses)
    assert set(statuses) <= {400, 401, 413, 429}, statuses
    hostile.assert_no_tracebacks()
