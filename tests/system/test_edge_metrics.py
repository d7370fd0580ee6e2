"""Metrics of the Redis fan-out, on real processes and a real redis-server: the core counts the
publications it could not make, an edge serves its own /metrics on --metrics-port (its staleness,
its sockets and frames, its loop and collector) and none on its main port."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.redis_server import RedisServer
from tests.system.edge_cluster import (
    Cluster,
    Spectator,
    admin_session,
    get_json,
    health,
    init_boxes,
    progress,
    spectator_token,
    until,
)
from tests.system.test_metrics_port import metrics_url

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path, spawn_server) -> Cluster:
    """A core and one edge, each with an open /metrics on a free loopback port."""
    cluster = Cluster(redis_server, tmp_path, spawn_server)
    cluster.start_core(METRICS_PORT="0")
    cluster.start_edge(METRICS_PORT="0")
    return cluster


def needs_restartable(redis: RedisServer) -> None:
    if not redis.restartable:
        pytest.skip("BELAY_TEST_REDIS_URL names a Redis this test cannot kill")


async def scrape(http: ClientSession, url: str) -> Samples:
    """Every sample, read with the client library's parser: (name, sorted labels) -> value."""
    async with http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_the_cores_failed_publications_are_counted_while_redis_is_down(cluster: Cluster,
                                                                             http: ClientSession) -> None:
    needs_restartable(cluster.redis)
    assert cluster.core is not None
    url = metrics_url(cluster.core)
    async with await admin_session(cluster.core_url) as judge:
        await init_boxes(judge, cluster.core_url, range(1))

        async def publishing() -> bool:
            return bool((await health(http, cluster.core_url))["details"]["redis"]["connected"])
        await until(publishing, "the core publishes")
        before = value(await scrape(http, url), "belay_redis_publish_failures_total")
        assert before == 0

        cluster.redis.kill()
        await progress(judge, cluster.core_url, 0, 3)  # still answered 200: scoring never waits for Redis

        async def failures() -> float | None:  # None or 0: not yet
            return value(await scrape(http, url), "belay_redis_publish_failures_total")
        await until(failures, "the failed publications are counted")
        assert (await health(http, cluster.core_url))["details"]["redis"]["connected"] is False

        cluster.redis.start()
        await until(publishing, "the core publishes again")
        # The count only goes up: a counter Prometheus can take a rate of.
        assert value(await scrape(http, url), "belay_redis_publish_failures_total") >= 1


async def test_an_edges_staleness_is_zero_in_step_and_grows_while_redis_is_down(cluster: Cluster,
                                                                                http: ClientSession) -> None:
    needs_restartable(cluster.redis)
    edge = cluster.edges[0]
    url = metrics_url(edge)
    assert url.startswith("http://127.0.0.1:")

    async def staleness() -> float:
        seconds = value(await scrape(http, url), "belay_edge_staleness_seconds")
        assert seconds is not None
        return seconds

    async def in_step() -> bool:
        return await staleness() == 0
    await until(in_step, "the edge is in step")

    cluster.redis.kill()

    async def stale() -> bool:
        return await staleness() > 0
    await until(stale, "the edge says how long it has been out of step")
    assert (await health(http, edge.url))["status"] == "stale"
    first = await staleness()

    async def grew() -> bool:
        return await staleness() > first
    await until(grew, "the staleness grows while Redis is down")

    cluster.redis.start()
    await until(in_step, "the edge is in step again")


async def test_an_edge_counts_its_spectators_and_the_frames_they_receive(cluster: Cluster,
                                                                         http: ClientSession) -> None:
    edge = cluster.edges[0]
    url = metrics_url(edge)
    async with await admin_session(cluster.core_url) as judge:
        await init_boxes(judge, cluster.core_url, range(1))
        async with Spectator(http, edge.url, 0, await spectator_token(http, edge.url)) as watcher:
            await watcher.until(lambda s: s["initiated"])
            samples = await scrape(http, url)
            assert value(samples, "belay_ws_clients", channel="public-box", role="spectator") == 1
            sent = value(samples, "belay_ws_frames_total", outcome="sent")
            assert sent is not None and sent >= 1
            await progress(judge, cluster.core_url, 0, 3)
            await watcher.until(lambda s: s["holdCount"] == 3)

            async def more_frames() -> bool:
                now = value(await scrape(http, url), "belay_ws_frames_total", outcome="sent")
                return now is not None and now > sent
            await until(more_frames, "the frames sent rise")
            exposed = {name for name, _labels in await scrape(http, url)}
    # The edge's own figures (all that the dashboard's Edges row graphs); the core's (commands,
    # storage, backups, Redis publishing) are not its.
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())
               if "$edge" in target["expr"]]
    graphed = {name for query in queries for name in re.findall(r"\b(?:belay|process)_[a-z_]+", query)}
    assert "belay_edge_staleness_seconds" in graphed and graphed <= exposed, graphed - exposed
    assert not any(name.startswith(("belay_commands", "belay_commit", "belay_backup", "belay_redis"))
                   for name in exposed)

    async def collector_ran() -> bool:  # the edge's collector routine reports into its metrics
        young = value(await scrape(http, url), "belay_gc_pause_seconds_count", generation="young")
        return young is not None and young > 0
    await until(collector_ran, "the edge's collector pauses are counted")


async def test_an_edges_main_port_serves_no_metrics(cluster: Cluster, http: ClientSession) -> None:
    """An edge has no admin login: /metrics is on --metrics-port only."""
    edge = cluster.edges[0]
    assert await get_json(http, f"{edge.url}/metrics") == (421, {"detail": "this is an edge; commands go to the core"})
    async with http.get(metrics_url(edge).replace("/metrics", "/health")) as response:  # only /metrics is open
        assert response.status == 404
