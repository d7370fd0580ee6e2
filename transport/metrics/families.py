"""The core's metric families, built at scrape time from the counters the running code keeps
(common_families.py has those an edge exports too).

Every label is bounded: a command type, an outcome, a channel kind, a role, a generation. Never a
box id, a user name or an address, so 10,000 boxes add no series.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from transport.http.keys import AUDIT_READS, COMMAND_TALLIES
from transport.keys import BACKUPS, PERSISTER, REGISTRY
from transport.metrics.common_families import add_buckets, histogram
from transport.metrics.keys import METRICS


class CoreCollector(Collector):
    """What only the core exports; CommonCollector adds what an edge exports too."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        yield from self._commands()
        yield from self._storage()
        yield from self._backups()
        yield from self._redis()

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
            add_buckets(latency, [kind], buckets)
        yield latency
        yield histogram("belay_audit_read_duration_seconds", "Time to read the audit log for "
                         "GET /api/admin/audit/events.", self._app[AUDIT_READS])

    def _storage(self) -> Iterator[Metric]:
        if PERSISTER not in self._app:  # still starting
            return
        status = self._app[PERSISTER].status
        yield histogram("belay_commit_duration_seconds", "Time the storage took to make a batch durable "
                         "(the write and fdatasync, or the database COMMIT).", status.commit_seconds)
        yield histogram("belay_commit_batch_events", "Events per committed batch (group commit).",
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

    def _redis(self) -> Iterator[Metric]:
        yield CounterMetricFamily("belay_redis_publish_failures", "Publications to Redis that failed (a batch of "
                                  "updates, or the full sync of a reconnection): it rises while Redis is down.",
                                  value=self._app[METRICS].redis_publish_failures.value)
