"""GET /metrics: Belay's metric families, read with the client library's own parser, after known
commands; who may read them; and that many boxes add no series."""
from __future__ import annotations

import errno
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from actors.tallies import quantile
from persistence.fs import FaultyFileSystem
from tests.conftest import ROOT, FakeClock, login, make_config, serving
from tests.transport.test_live_protocol import command, init_route, next_of, post, state
from transport.app import create_app
from transport.http.keys import COMMAND_TALLIES, RATE_LIMITER
from transport.http.rate_limit import RateLimiter
from transport.http.tallies import COMMAND_SECONDS
from transport.keys import PERSISTER
from transport.metrics.keys import METRICS

# Every label name Belay's own families may use: none of them can hold a box, a user or an address.
BOUNDED_LABELS = {"type", "outcome", "channel", "role", "reason", "result", "generation", "le"}


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[TestClient]:
    async with serving(create_app(make_config(tmp_path / "data"))) as client:
        yield client


async def scrape(client: TestClient, path: str = "/metrics") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    response = await client.get(path)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_commands_are_counted_by_type_and_outcome_with_their_latency(tmp_path: Path) -> None:
    fs = FaultyFileSystem()
    app = create_app(make_config(tmp_path / "data"), fs=fs)
    app[RATE_LIMITER] = RateLimiter(clock=FakeClock(0.0))  # no refill: the burst is all there is
    async with serving(app) as client:
        assert (await post(client, init_route()))[0] == 200
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1)) == (200, {"status": "ok"})
        stale = {"boxId": 0, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": "not-this-box's-session"}
        assert (await post(client, stale))[1]["status"] == "ignored"
        assert (await post(client, {"boxId": 0, "type": "PROGRESS_UPDATE"}))[0] == 400  # no delta
        assert (await post(client, {"boxId": 0, "type": "FLY_AWAY"}))[0] == 400
        session_id = (await state(client))["sessionId"]
        sync = {"boxId": 0, "type": "TIMER_SYNC", "remaining": 100, "sessionId": session_id}
        statuses = [(await post(client, sync))[0] for _ in range(31)]  # the sync class's burst is 30
        assert statuses == [200] * 30 + [429]
        fs.inject("write_all", errno.ENOSPC, path_contains="events.ndjson")
        assert (await command(client, 0, "PROGRESS_UPDATE", delta=1))[0] == 503
        client.session.cookie_jar.clear()
        assert (await post(client, init_route()))[0] == 401
        await login(client)

        samples = await scrape(client)
        latency_counts = client.app[COMMAND_TALLIES].latency_counts()  # what the ops page charts
    expected = {("INIT_ROUTE", "ok"): 1, ("PROGRESS_UPDATE", "ok"): 1, ("PROGRESS_UPDATE", "ignored"): 1,
                ("PROGRESS_UPDATE", "4xx"): 1, ("unknown", "4xx"): 1, ("TIMER_SYNC", "ok"): 30,
                ("TIMER_SYNC", "429"): 1, ("PROGRESS_UPDATE", "503"): 1, ("INIT_ROUTE", "4xx"): 1}
    counted = {(dict(labels)["type"], dict(labels)["outcome"]): count
               for (name, labels), count in samples.items() if name == "belay_commands_total"}
    assert counted == expected
    # Every answer is timed, under its type, whatever its outcome.
    for kind in ("INIT_ROUTE", "PROGRESS_UPDATE", "TIMER_SYNC", "unknown"):
        answered = sum(count for (k, _outcome), count in expected.items() if k == kind)
        assert value(samples, "belay_command_duration_seconds_count", type=kind) == answered
        assert value(samples, "belay_command_duration_seconds_bucket", type=kind, le="+Inf") == answered
        assert value(samples, "belay_command_duration_seconds_sum", type=kind) > 0
    assert sum(latency_counts) == sum(expected.values())
    assert quantile(COMMAND_SECONDS, latency_counts, 0.99) is not None
    # The failed write shows as a failed batch and a degraded storage.
    assert value(samples, "belay_storage_degraded") == 1
    assert value(samples, "belay_commit_failures_total") == 1


async def test_commit_batches_and_checkpoint_lag(admin: TestClient) -> None:
    for box_id in range(3):
        assert (await post(admin, init_route(box_id)))[0] == 200
    samples = await scrape(admin)
    assert value(samples, "belay_committed_events_total") == 3
    batches = value(samples, "belay_commit_batch_events_count")
    assert 1 <= batches <= 3
    assert value(samples, "belay_commit_batch_events_sum") == 3
    assert value(samples, "belay_commit_duration_seconds_count") == batches
    assert value(samples, "belay_commit_duration_seconds_sum") > 0
    assert value(samples, "belay_storage_degraded") == 0
    assert value(samples, "belay_boxes") == 3
    assert value(samples, "belay_last_durable_write_timestamp_seconds") > 1.7e9
    # The checkpoints come within a second (checkpoint_interval_s): the lag goes back to nothing.
    dirty = value(samples, "belay_checkpoint_dirty_boxes")
    assert dirty in (0, 1, 2, 3) and value(samples, "belay_checkpoint_lag_seconds") >= 0
    await admin.app[PERSISTER].checkpoint_all()
    samples = await scrape(admin)
    assert value(samples, "belay_checkpoint_dirty_boxes") == 0
    assert value(samples, "belay_checkpoint_lag_seconds") == 0


async def test_sockets_by_channel_and_role_and_their_frames(admin: TestClient) -> None:
    assert (await post(admin, init_route()))[0] == 200
    spectator_token = (await (await admin.post("/api/public/token")).json())["access_token"]
    box = await admin.ws_connect("/api/ws/0")
    public_box = await admin.ws_connect(f"/api/public/ws/0?token={spectator_token}")
    public = await admin.ws_connect("/api/public/ws")
    for ws in (box, public_box, public):
        await next_of(ws, {"STATE_SNAPSHOT", "PUBLIC_STATE_SNAPSHOT"})
    assert (await command(admin, 0, "PROGRESS_UPDATE", delta=1))[0] == 200
    await next_of(box, {"STATE_SNAPSHOT"})
    samples = await scrape(admin)
    assert value(samples, "belay_ws_clients", channel="box", role="admin") == 1
    assert value(samples, "belay_ws_clients", channel="public-box", role="spectator") == 1
    assert value(samples, "belay_ws_clients", channel="public", role="anonymous") == 1
    # Three first snapshots, then the echo and snapshot pair to the box's socket at least.
    assert value(samples, "belay_ws_frames_total", outcome="sent") >= 5
    assert value(samples, "belay_ws_frames_total", outcome="coalesced") == 0
    assert value(samples, "belay_ws_clients_dropped_total", reason="slow") == 0
    for ws in (box, public_box, public):
        await ws.close()


async def test_audit_reads_backups_and_the_event_loop(admin: TestClient) -> None:
    assert (await post(admin, init_route()))[0] == 200
    samples = await scrape(admin)
    assert value(samples, "belay_backups_total", result="ok") == 0
    assert value(samples, "belay_backup_newest_age_seconds") is None  # no backup yet: no age to show
    assert (await admin.get("/api/admin/audit/events")).status == 200
    response = await admin.post("/api/admin/ops/backup/now")
    assert response.status == 200, await response.text()
    size = (await response.json())["size"]
    samples = await scrape(admin)
    assert value(samples, "belay_audit_read_duration_seconds_count") == 1
    assert value(samples, "belay_backups_total", result="ok") == 1
    assert value(samples, "belay_backups_total", result="failed") == 0
    assert value(samples, "belay_backup_newest_bytes") == size
    assert 0 <= value(samples, "belay_backup_newest_age_seconds") < 60
    assert value(samples, "belay_backup_last_success") == 1
    assert value(samples, "belay_event_loop_lag_seconds_count") is not None
    assert value(samples, "belay_gc_pause_seconds_count", generation="young") is not None
    assert value(samples, "process_resident_memory_bytes") > 0


async def test_a_restarted_server_knows_its_newest_backup(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data"))) as first:
        assert (await first.post("/api/admin/ops/backup/now")).status == 200
    async with serving(create_app(make_config(tmp_path / "data"))) as second:
        samples = await scrape(second)
    assert value(samples, "belay_backup_newest_bytes") > 0
    assert value(samples, "belay_backup_newest_age_seconds") >= 0
    assert value(samples, "belay_backups_total", result="ok") == 0  # since this start


async def test_the_hooks_for_redis_publishing_and_edge_staleness(admin: TestClient) -> None:
    samples = await scrape(admin)
    assert value(samples, "belay_redis_publish_failures_total") == 0
    assert value(samples, "belay_edge_staleness_seconds") is None  # not an edge: not exported
    metrics = admin.app[METRICS]
    metrics.redis_publish_failures.inc()
    metrics.edge_staleness = lambda: 2.5  # an edge hands in its mirror's staleness_s
    samples = await scrape(admin)
    assert value(samples, "belay_redis_publish_failures_total") == 1
    assert value(samples, "belay_edge_staleness_seconds") == 2.5


async def test_metrics_need_an_admin(admin: TestClient) -> None:
    admin.session.cookie_jar.clear()
    response = await admin.get("/metrics")
    assert response.status == 401
    assert (await response.json())["detail"] == "not_authenticated"
    await login(admin)
    assert (await admin.post("/api/admin/auth/boxes/1/password", json={"password": "judge-pass-1"})).status == 200
    admin.session.cookie_jar.clear()
    await login(admin, "Box 1", "judge-pass-1")
    response = await admin.get("/metrics")
    assert response.status == 403
    assert (await response.json())["detail"] == "forbidden_role"


async def test_many_boxes_add_no_series(admin: TestClient) -> None:
    async def traffic(boxes: range) -> None:
        for box_id in boxes:
            assert (await post(admin, init_route(box_id)))[0] == 200
            assert (await command(admin, box_id, "PROGRESS_UPDATE", delta=1))[0] == 200
        await admin.get("/api/admin/audit/events")

    await traffic(range(2))
    before = await scrape(admin)
    await traffic(range(2, 60))
    after = await scrape(admin)
    belay = {key for key in after if key[0].startswith("belay_")}
    assert belay == {key for key in before if key[0].startswith("belay_")}
    for _name, labels in belay:
        assert {label for label, _value in labels} <= BOUNDED_LABELS
    assert value(after, "belay_boxes") == 60



async def test_the_grafana_dashboard_graphs_only_metrics_that_exist(admin: TestClient) -> None:
    assert (await post(admin, init_route()))[0] == 200
    assert (await admin.post("/api/admin/ops/backup/now")).status == 200
    admin.app[METRICS].edge_staleness = lambda: 1.0  # exported only on an edge
    screen = await admin.ws_connect("/api/public/ws")  # belay_ws_clients has a sample only with a socket
    await next_of(screen, {"PUBLIC_STATE_SNAPSHOT"})
    exposed = {name for name, _labels in await scrape(admin)}
    await screen.close()
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]
    graphed = {name for query in queries for name in re.findall(r"\b(?:belay|process)_[a-z_]+", query)}
    assert graphed and graphed <= exposed, graphed - exposed
