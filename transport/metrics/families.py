"""Belay's metric families, built at scrape time from the counters the running code keeps.

Every label is bounded: a command type, an outcome, a channel kind, a role, a generation. Never a
box id, a user name or an address, so 10,000 boxes add no series.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.tallies import Buckets
from transport.http.keys import AUDIT_READS, COMMAND_TALLIES
from transport.keys import BACKUPS, PERSISTER, REGISTRY
from transport.metrics.keys import METRICS
from transport.ws.keys import HUB


class BelayCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        yield from self._commands()
        yield from self._storage()
        yield from self._sockets()
        yield from self._backups()
        yield from self._process()

    def _commands(self) -> Iterator[Metric]:
        tallies = self._app[COMMAND_TALLIES]
        answered = CounterMetricFamily("belay_commands", "Commands answered by POST /api/cmd, by type and outcome "
                                       "(ok, ignored, 4xx, 429, 503, 5xx).", labels=["type", "outcome"])
        for (kind, outcome), count in sorted(tallies.outcomes().items()):
            answered.add_metric([kind, outcome], count)
        yield answered
        latency = HistogramMetricFamily("belay_command_duration_seconds",
                                        "Time from the command route's first line to its answer.", labels=["type"])
        for kind, buckets in sorted(tallies.latency().items()):
            _add(latency, [kind], buckets)
        yield latency
        yield _histogram("belay_audit_read_duration_seconds", "Time to read the audit log for "
                         "GET /api/admin/audit/events.", self._app[AUDIT_READS])

    def _storage(self) -> Iterator[Metric]:
        if PERSISTER not in self._app:  # still starting
            return
        status = self._app[PERSISTER].status
        yield _histogram("belay_commit_duration_seconds", "Time the storage took to make a batch durable "
                         "(the write and fdatasync, or the database COMMIT).", status.commit_seconds)
        yield _histogram("belay_commit_batch_events", "Events per committed batch (group commit).",
                         status.batch_events)
        yield CounterMetricFamily("belay_commit_failures", "Batches the storage failed to make durable "
                                  "(their commands were answered 503).", value=status.failed_batches)
        yield CounterMetricFamily("belay_committed_events", "Events made durable.", value=status.events)
        if status.last_durable_write is not None:
            yield GaugeMetricFamily("belay_last_durable_write_timestamp_seconds",
                                    "When the last batch became durable (Unix time).", value=status.last_durable_write)
        yield GaugeMetricFamily("belay_storage_degraded", "1 while the last write failed (commands answer 503).",
                                value=int(status.degraded))
        dirty, lag = self._app[PERSISTER].checkpoint_lag()
        yield GaugeMetricFamily("belay_checkpoint_dirty_boxes", "Boxes whose last event is in no checkpoint yet.",
                                value=dirty)
        yield GaugeMetricFamily("belay_checkpoint_lag_seconds", "How long the oldest of those has waited: what "
                                "a crash now would replay at start-up.", value=lag)
        registry = self._app[REGISTRY]
        yield GaugeMetricFamily("belay_boxes", "Boxes with a state.", value=len(registry.box_ids()))
        yield GaugeMetricFamily("belay_boxes_unavailable", "Boxes whose history cannot rebuild them (they answer "
                                "503 until an admin brings them back).", value=len(registry.unavailable_boxes()))

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

    def _backups(self) -> Iterator[Metric]:
        if BACKUPS not in self._app:
            return
        status = self._app[BACKUPS].status
        taken = CounterMetricFamily("belay_backups", "Backups taken since start-up, by result.", labels=["result"])
        taken.add_metric(["ok"], status.taken)
        taken.add_metric(["failed"], status.failed)
        yield taken
        if status.last_at is not None:
            yield GaugeMetricFamily("belay_backup_newest_age_seconds", "Age of the newest backup zip.",
                                    value=max(0.0, time.time() - status.last_at.timestamp()))
        if status.last_size is not None:
            yield GaugeMetricFamily("belay_backup_newest_bytes", "Size of the newest backup zip.",
                                    value=status.last_size)
        if status.last_at is not None or status.last_error_at is not None:
            failed_last = status.last_error_at is not None and (status.last_at is None
                                                                 or status.last_error_at > status.last_at)
            yield GaugeMetricFamily("belay_backup_last_success", "1 if the last backup attempt succeeded.",
                                    value=0 if failed_last else 1)

    def _process(self) -> Iterator[Metric]:
        metrics = self._app[METRICS]
        yield _histogram("belay_event_loop_lag_seconds", "How late the event loop ran a timer (probed every "
                         "0.5 s): every request waits as long.", metrics.loop_lag)
        pauses = HistogramMetricFamily("belay_gc_pause_seconds", "Garbage collections run by the server's "
                                       "collector routine, and how long each held the loop.", labels=["generation"])
        _add(pauses, ["young"], metrics.gc_pauses.young)
        _add(pauses, ["full"], metrics.gc_pauses.full)
        yield pauses
        yield CounterMetricFamily("belay_redis_publish_failures", "Updates the core failed to publish to Redis.",
                                  value=metrics.redis_publish_failures.value)
        if metrics.edge_staleness.value is not None:
            yield GaugeMetricFamily("belay_edge_staleness_seconds", "On an edge: how old its newest update "
                                    "from the core is.", value=metrics.edge_staleness.value)


def _histogram(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    _add(family, [], buckets)
    return family


def _add(family: HistogramMetricFamily, labels: Sequence[str], buckets: Buckets) -> None:
    cumulative, rows = 0, []
    for bound, count in zip((*buckets.bounds, float("inf")), buckets.counts):
        cumulative += count
        rows.append((_le(bound), cumulative))
    family.add_metric(list(labels), rows, buckets.total)


def _le(bound: float) -> str:
    """A bucket's `le` as prometheus-client writes it for our bounds ("0.0005", "1.0", "+Inf")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))
