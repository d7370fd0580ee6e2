"""POST /api/cmd under hostile input: raw bodies (NaN, 10k-deep nesting, 1 MB strings, invalid UTF-8,
oversized), random JSON of every type, and plausible commands with random field values.

Every reply is 2xx, or 4xx with {"detail": str}; no 5xx; no ERROR logged; afterwards every touched
box still builds a snapshot and a valid command still works.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, fuzz, send
from tests.hostile.strategies import BODIES, COMMANDS, CONTENT_TYPES, LIVE, SETUP, TYPED_COMMANDS, dumps
from transport.keys import REGISTRY


def _live(hostile: Hostile, command: dict[str, Any]) -> dict[str, Any]:
    box_id = command.get("boxId")
    if not (isinstance(box_id, int) and not isinstance(box_id, bool) and 0 <= box_id <= 9999):
        return command
    state = hostile.app[REGISTRY].state(box_id)
    live = {"sessionId": state["sessionId"], "boxVersion": state["boxVersion"]}
    return {key: live[key] if value == LIVE and key in live else value for key, value in command.items()}


async def _post_command(hostile: Hostile, verdicts: Verdicts, what: str, command: dict[str, Any]) -> None:
    body = _live(hostile, command)
    status, _ = await send(verdicts, hostile.client, what, "POST", "/api/cmd", body, data=dumps(body),
                           headers={"Content-Type": "application/json"})
    if status == 200:
        hostile.touched.add(body["boxId"])


async def test_fuzz_command_bodies(hostile: Hostile) -> None:
    raw = Verdicts("cmd raw bodies")

    async def raw_body(case: tuple[bytes, str]) -> None:
        body, content_type = case
        headers = {"Content-Type": content_type} if content_type else {}
        await send(raw, hostile.client, "POST /api/cmd (raw)", "POST", "/api/cmd",
                   (body[:300], len(body), content_type), data=body, headers=headers)

    await fuzz(st.tuples(BODIES, CONTENT_TYPES), raw_body)

    mixed = Verdicts("cmd random fields")

    async def mixed_command(command: dict[str, Any]) -> None:
        await _post_command(hostile, mixed, "POST /api/cmd (random fields)", command)

    await fuzz(COMMANDS, mixed_command)

    typed = Verdicts("cmd plausible")
    for box_id in (0, 1, 2):
        assert (await hostile.client.post("/api/cmd", json={"boxId": box_id, **SETUP})).status == 200
        hostile.touched.add(box_id)

    async def typed_command(command: dict[str, Any]) -> None:
        await _post_command(hostile, typed, "POST /api/cmd (plausible)", command)

    await fuzz(TYPED_COMMANDS, typed_command)

    for verdicts in (raw, mixed, typed):
        record("hostile.fuzz", target=verdicts.target, cases=verdicts.cases, server_errors=verdicts.server_errors,
               accepted=sum(n for s, n in verdicts.statuses.items() if 200 <= s < 300),
               violations=len(verdicts.violations))
    assert typed.statuses[200] > 0, "the plausible commands never got through: the fuzzer is too weak"
    problems = [v.report() for v in (raw, mixed, typed) if v.violations]
    assert not problems, "\n".join(problems)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()
