"""The metric families the core and an edge both export (their sockets, frames, event loop and
collector, and an edge's staleness), and how a histogram family is built from our `Buckets`.

The core adds its own in families.py; labels stay bounded in both (see there).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.tallies import Buckets
from transport.metrics.keys import METRICS
from transport.ws.keys import HUB


class CommonCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        yield from self._sockets()
        yield from self._process()

    def _sockets(self) -> Iterator[Metric]:
        hub = self._app[HUB]
        clients = GaugeMetricFamily("belay_ws_clients", "Open WebSockets by channel (box, public-box, public) "
                                    "and role (admin, judge, viewer, spectator, anonymous).",
                                    labels=["channel", "role"])
        for (channel, role), count in sorted(hub.clients_by_kind().items()):
            clients.add_metric([channel, role], count)
        yield clients
        counts = hub.frame_counts
        frames = CounterMetricFamily("belay_ws_frames", "WebSocket frames: written to a socket, replaced by a "
                                     "newer snapshot while waiting, or thrown away with a socket that went.",
                                     labels=["outcome"])
        for outcome, count in (("sent", counts.sent), ("coalesced", counts.coalesced), ("dropped", counts.dropped)):
            frames.add_metric([outcome], count)
        yield frames
        dropped = CounterMetricFamily("belay_ws_clients_dropped", "Clients dropped: slow (their unsent frames "
                                      "stayed over the limit) or silent (no answer to two pings).", labels=["reason"])
        dropped.add_metric(["slow"], counts.slow_clients)
        dropped.add_metric(["silent"], counts.silent_clients)
        yield dropped

    def _process(self) -> Iterator[Metric]:
        metrics = self._app[METRICS]
        yield histogram("belay_event_loop_lag_seconds", "How late the event loop ran a timer (probed every "
                        "0.5 s): every request waits as long.", metrics.loop_lag)
        pauses = HistogramMetricFamily("belay_gc_pause_seconds", "Garbage collections run by the server's "
                                       "collector routine, and how long each held the loop.", labels=["generation"])
        add_buckets(pauses, ["young"], metrics.gc_pauses.young)
        add_buckets(pauses, ["full"], metrics.gc_pauses.full)
        yield pauses
        if metrics.edge_staleness is not None:
            yield GaugeMetricFamily("belay_edge_staleness_seconds", "On an edge: 0 while in step with Redis, "
                                    "else how long it has been out of step (serving the last state it has).",
                                    value=metrics.edge_staleness())


def histogram(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    add_buckets(family, [], buckets)
    return family


def add_buckets(family: HistogramMetricFamily, labels: Sequence[str], buckets: Buckets) -> None:
    cumulative, rows = 0, []
    for bound, count in zip((*buckets.bounds, float("inf")), buckets.counts):
        cumulative += count
        rows.append((_le(bound), cumulative))
    family.add_metric(list(labels), rows, buckets.total)


def _le(bound: float) -> str:
    """A bucket's `le` as prometheus-client writes it for our bounds ("0.0005", "1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))
