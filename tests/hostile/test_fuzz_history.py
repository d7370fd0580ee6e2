"""History and rollback under hostile input: query strings, bodies and box ids in paths.

Every reply is 2xx, or 4xx with {"detail": str}; no 5xx; no traceback logged; afterwards every
box (rolled back ones included) still builds a snapshot and a valid command still works.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from yarl import URL

from tests.hostile.conftest import Hostile
from tests.hostile.harness import Verdicts, fuzz, fuzz_examples, send
from tests.hostile.strategies import JSON, RAW_QUERIES, SEGMENTS, SETUP, SMALL_INTS, TEXT, dumps
from tests.hostile.test_fuzz_admin import JSON_HEADERS, _report

NUMBER_TEXT = st.sampled_from(["0", "1", "3", "500", "501", "-1", "1.5", "1e3", "１", "²", "٣", " 1", "1 ", "",
                               "9" * 5000, "4294967296", "2147483648", "0x10", "+1"])
HISTORY_QUERIES = st.dictionaries(
    st.sampled_from(["limit", "before", "action"]) | TEXT,
    NUMBER_TEXT | st.sampled_from(["SUBMIT_SCORE", "INIT_ROUTE,RESTORE", ",,,", "submit_score", "SUBMIT_SCORE," * 40,
                                   "RESTORE\x00", "A" * 3000]) | TEXT,
    max_size=3)
ROLLBACK_BODIES = st.fixed_dictionaries({}, optional={"boxVersion": st.integers(-2, 8) | SMALL_INTS | JSON}) | JSON
ROUTES = ("GET /api/admin/boxes/{}/history", "POST /api/admin/boxes/{}/rollback")


async def test_fuzz_history_queries_rollback_bodies_and_box_ids(hostile: Hostile) -> None:
    client = hostile.client
    for box_id in (0, 1):
        assert (await client.post("/api/cmd", json={"boxId": box_id, **SETUP})).status == 200
    state = await (await client.get("/api/state/0")).json()
    for _ in range(3):
        response = await client.post("/api/cmd", json={"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1,
                                                       "sessionId": state["sessionId"]})
        assert response.status == 200
    history, rollback, paths = Verdicts("history query"), Verdicts("rollback body"), Verdicts("history path ids")

    async def history_query(case: tuple[dict[str, str], str]) -> None:
        query, raw = case
        await send(history, client, "GET /api/admin/boxes/0/history", "GET", "/api/admin/boxes/0/history", query,
                   params=query)
        url = URL(f"{client.make_url('/api/admin/boxes/0/history')}?{raw}", encoded=True)
        await send(history, client.session, "GET /api/admin/boxes/0/history (raw query)", "GET", url, raw)

    async def rollback_body(body: Any) -> None:
        status, _ = await send(rollback, client, "POST /api/admin/boxes/0/rollback", "POST",
                               "/api/admin/boxes/0/rollback", body, data=dumps(body), headers=JSON_HEADERS)
        if status == 200:
            hostile.touched.add(0)

    async def path_id(case: tuple[str, str]) -> None:
        route, segment = case
        method, template = route.split(" ")
        url = URL(str(client.make_url("/")).rstrip("/") + template.format(segment), encoded=True)
        await send(paths, client.session, route, method, url, segment, data=b'{"boxVersion": 1}',
                   headers=JSON_HEADERS)

    await fuzz(st.tuples(HISTORY_QUERIES, RAW_QUERIES), history_query)
    await fuzz(ROLLBACK_BODIES, rollback_body)
    await fuzz(st.tuples(st.sampled_from(ROUTES), SEGMENTS), path_id, examples=max(10, fuzz_examples() // 2))
    _report(history, rollback, paths)
    assert rollback.statuses.get(200), "some rollbacks must have been accepted"
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()
