"""Health and status endpoints (no auth): liveness, readiness and storage metadata.

Anyone on the LAN may ask, so without an admin login they show no paths: not the storage
directory, and not the text of the last storage error (it names files)."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from actors.codes import STORAGE_UNAVAILABLE
from transport.http.auth import Need, authorize
from transport.http.errors import STATUS, ClientError
from transport.keys import PERSISTER, REGISTRY, STORAGE

routes = web.RouteTableDef()
DATABASE_KEYS = ("database", "schema", "server_version", "schema_version", "settings", "writer", "pool")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat() if ts is not None else None


def storage_report(app: web.Application) -> dict[str, Any]:
    described = app[STORAGE].describe()
    status = app[PERSISTER].status
    return {
        "mode": described["mode"],
        "directory": described["directory"],
        "boxes": len(app[REGISTRY].box_ids()),
        "audit_file_mb": round(described["audit_bytes"] / 1048576, 2),
        "audit_archives": described["archives"],
        "last_durable_write": _iso(status.last_durable_write),
        "degraded": storage_degraded(app),
        "unavailable_boxes": list(app[REGISTRY].unavailable_boxes()),  # their history cannot rebuild them
        "committed_events": status.events,
        "commit_batches": status.batches,  # fdatasyncs of the log: events / batches = group-commit size
        "last_error": status.last_error,
        # A database backend's own figures (server version, schema version, writer, settings, pool).
        **{key: value for key, value in described.items() if key in DATABASE_KEYS},
    }


def _report_for(request: web.Request) -> dict[str, Any]:
    report = storage_report(request.app)
    try:
        authorize(request, Need.ADMIN)
    except ClientError:
        report.pop("directory")
        report.pop("database", None)  # where it is (its password is never in it)
        if report["last_error"] is not None:
            report["last_error"] = STORAGE_UNAVAILABLE
    return report


def storage_degraded(app: web.Application) -> bool:
    """Whether the storage can write now: a backend that knows says so itself (a database's writer
    reconnects with no write to prove it); otherwise, whether the last write failed."""
    described = app[STORAGE].describe()
    if "degraded" in described:
        return bool(described["degraded"])
    return app[PERSISTER].status.degraded


def _status_word(app: web.Application) -> str:
    return "degraded" if storage_degraded(app) or app[REGISTRY].unavailable_boxes() else "ok"


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    report = _report_for(request)
    return web.json_response({"status": _status_word(request.app), "storage": report["mode"],
                              "details": report})


@routes.get("/status/summary")
async def status_summary(request: web.Request) -> web.Response:
    report = storage_report(request.app)
    return web.json_response({
        "competitions": 0,
        "boxes": report["boxes"],
        "events": request.app[PERSISTER].status.events,
        "last_event_at": report["last_durable_write"],
        "storage": report["mode"],
        "unavailable_boxes": report["unavailable_boxes"],
    })


@routes.get("/api/health")
async def api_health(request: web.Request) -> web.Response:
    report = _report_for(request)
    return web.json_response({
        "status": _status_word(request.app),
        "boxes_loaded": report["boxes"],
        "audit_file_mb": report["audit_file_mb"],
        "storage": report,
        "timestamp": datetime.now(UTC).isoformat(),
    })


@routes.get("/api/health/ready")
async def ready(request: web.Request) -> web.Response:
    if storage_degraded(request.app):
        return web.json_response({"status": "not_ready", "error": STORAGE_UNAVAILABLE},
                                 status=STATUS[STORAGE_UNAVAILABLE])
    # Ready: every other box takes commands. Boxes whose history cannot rebuild them are named.
    return web.json_response({"status": "ready", "boxes_count": len(request.app[REGISTRY].box_ids()),
                              "unavailable_boxes": list(request.app[REGISTRY].unavailable_boxes())})


@routes.get("/api/health/live")
async def live(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "time": time.time()})
