"""Log rotation: every box is checkpointed first, archives never collide, audit reads span them."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import make_config, serving
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app


async def test_rotation_keeps_audit_and_restart_complete(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", max_audit_file_mb=0.004)  # about 4 KiB per file
    async with serving(create_app(config)) as client:
        for box in (0, 1):
            assert (await post(client, init_route(box)))[0] == 200
        for n in range(30):
            assert (await command(client, n % 2, "PROGRESS_UPDATE", delta=1))[0] == 200
        before = {box: await state(client, box) for box in (0, 1)}
        audit = await (await client.get("/api/admin/audit/events?limit=2000")).json()
    archives = sorted((tmp_path / "data").glob("events.*.ndjson"))
    assert len(archives) >= 2
    assert len({a.name for a in archives}) == len(archives)
    assert len(audit) == 32
    assert [e["boxVersion"] for e in audit if e["boxId"] == 0] == list(range(16, 0, -1))

    async with serving(create_app(config)) as client:
        for box in (0, 1):
            after = await state(client, box)
            assert after == before[box]
