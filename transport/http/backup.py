"""Backup, restore and ops routes (admin only)."""
from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiofiles
import orjson
from aiohttp import BodyPartReader, web

from actors.codes import RESTORE_ABORTED
from actors.jobs.backups import BackupNow
from actors.messages import RestoreBox
from actors.recovery.restore import NotRebuildable, rebuild_backup
from actors.rules.backups import backup_snapshot, snapshot_time_ms, state_from_backup
from actors.rules.limits import BOX_ID_RANGE, is_box_id
from persistence.backup import BackupInvalid, backups, read_zip
from persistence.factory import backup_as_storage
from persistence.storage import StorageError
from transport.http.auth import Need, authorize, origin_of
from transport.http.bodies import json_object, require_box_id
from transport.http.errors import (
    BACKUP_FAILED,
    BACKUP_NOT_FOUND,
    BODY_TOO_LARGE,
    BOX_NOT_FOUND,
    INVALID_REQUEST,
    RESTORE_CONFLICT,
    STATUS,
    ClientError,
    reply_status,
)
from transport.http.health import storage_report
from transport.keys import BACKUPS, CONFIG, REGISTRY

routes = web.RouteTableDef()

MAX_RESTORE_JSON = 64 << 20
MAX_RESTORE_ZIP = 256 << 20
MAX_RESTORE_UNPACKED = 512 << 20
_TRUTHY = {"1", "true", "yes", "on", "y"}


@routes.get("/api/admin/backup/box/{box_id}")
async def backup_box(request: web.Request) -> web.Response:
    box_id = require_box_id(request.match_info["box_id"])
    authorize(request, Need.ADMIN, box_id)
    registry = request.app[REGISTRY]
    if box_id not in registry:
        raise ClientError(BOX_NOT_FOUND)
    return _json({"status": "ok", "snapshot": backup_snapshot(registry.state(box_id), box_id, registry.now_ms())})


@routes.get("/api/admin/backup/full")
async def backup_full(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    registry = request.app[REGISTRY]
    now_ms = registry.now_ms()
    return _json({"status": "ok",
                  "snapshots": [backup_snapshot(registry.state(b), b, now_ms) for b in registry.box_ids()]})


@routes.get("/api/admin/backup/last")
async def backup_last(request: web.Request) -> web.StreamResponse:
    authorize(request, Need.ADMIN)
    newest = _newest(request)
    if request.query.get("download", "").strip().lower() in _TRUTHY:
        return _download(newest)
    stamp = datetime.fromtimestamp(newest.stat().st_mtime, tz=UTC).isoformat()
    return _json({"status": "ok", "filename": newest.name, "timestamp": stamp, "size": newest.stat().st_size})


@routes.get("/api/admin/backup/download")
async def backup_download(request: web.Request) -> web.StreamResponse:
    authorize(request, Need.ADMIN)
    return _download(_newest(request))


@routes.post("/api/admin/ops/backup/now")
async def backup_now(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    try:
        done = await request.app[BACKUPS].ask(BackupNow("requested by an admin"))
    except Exception as exc:
        raise ClientError(BACKUP_FAILED, f"{BACKUP_FAILED}: {exc}") from None
    return _json({"status": "ok", "filename": done.path.name, "size": done.size,
                  "snapshots": len(request.app[REGISTRY].box_ids()), "seconds": round(done.seconds, 3)})


@routes.get("/api/admin/ops/status")
async def ops_status(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    app, now = request.app, datetime.now(UTC)
    status, report = app[BACKUPS].status, storage_report(app)
    return _json({
        "serverTimeUtc": now.isoformat(),
        "db": {"status": "disabled", "storage": report["mode"]},
        "counts": {"competitions": 0, "boxes": report["boxes"], "events": None,
                   "lastEventAt": report["last_durable_write"]},
        "storage": report,
        "unavailableBoxes": {str(box): reason for box, reason in app[REGISTRY].unavailable_boxes().items()},
        "backup": {
            "dir": str(app[BACKUPS].backup_dir.resolve()),
            "lastFile": status.last_file,
            "lastTimestampUtc": status.last_at.isoformat() if status.last_at else None,
            "ageSeconds": round((now - status.last_at).total_seconds(), 1) if status.last_at else None,
            "lastError": status.last_error,
            "lastErrorAtUtc": status.last_error_at.isoformat() if status.last_error_at else None,
            "taken": status.taken,
            "failed": status.failed,
            "intervalMin": app[CONFIG].backup_interval_min,
            "retentionFiles": app[CONFIG].backup_retention_files,
        },
    })


@routes.post("/api/admin/ops/drill/backup_restore")
async def backup_drill(request: web.Request) -> web.Response:
    """Verify that the newest backup would restore: every checksum, every box state."""
    authorize(request, Need.ADMIN)
    newest = _newest(request)
    saved = await _states_from_zip_file(newest)
    return _json({"status": "ok", "backupFile": newest.name, "snapshots": len(saved), "restored": 0})


@routes.post("/api/admin/restore")
async def restore(request: web.Request) -> web.Response:
    principal = authorize(request, Need.ADMIN)
    force = request.query.get("force", "").strip().lower() in _TRUTHY
    wanted: set[int] | None = _box_ids(request.query.get("box_ids"))
    if request.content_type == "application/json":
        body = json_object(await _read_limited(request, MAX_RESTORE_JSON))
        wanted = _box_ids_from(body.get("box_ids")) if body.get("box_ids") is not None else wanted
        force = force or body.get("force") is True
        saved, source = _states_from_snapshots(body.get("snapshots")), "snapshots"
    else:
        saved, source = await _states_from_upload(request), "backup zip"
    if wanted is not None:
        saved = {box: entry for box, entry in saved.items() if box in wanted}
    if not saved:
        raise ClientError(INVALID_REQUEST, "nothing to restore")
    registry = request.app[REGISTRY]
    unavailable = registry.unavailable_boxes()  # nothing to lose there: restoring brings them back
    conflicts = [{"boxId": box, "liveVersion": registry.state(box)["boxVersion"], "backupVersion": state["boxVersion"]}
                 for box, (state, _) in sorted(saved.items())
                 if box in registry and box not in unavailable
                 and registry.state(box)["boxVersion"] > state["boxVersion"]]
    if conflicts and not force:
        return _json({"detail": RESTORE_CONFLICT, "conflicts": conflicts}, status=STATUS[RESTORE_CONFLICT])
    origin = origin_of(request, principal)
    replies = await registry.restore_all({box: RestoreBox(state, source, origin, as_of_ms)
                                          for box, (state, as_of_ms) in sorted(saved.items())})
    failed = [(box, reply) for box, reply in replies.items() if reply.code is not None]
    if failed:  # all or nothing: the boxes' events shared one write, so none was restored
        box, reply = next(((b, r) for b, r in failed if r.code != RESTORE_ABORTED), failed[0])
        return _json({**reply.body, "boxId": box, "restored": []}, status=reply_status(reply))
    restored = [reply.body for reply in replies.values()]
    return _json({"status": "ok", "restored": [r["boxId"] for r in restored], "boxes": restored})


# -- helpers -------------------------------------------------------------------------------------

def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: orjson.dumps(v).decode())


def _newest(request: web.Request) -> Path:
    found = backups(request.app[BACKUPS].backup_dir)
    if not found:
        raise ClientError(BACKUP_NOT_FOUND)
    return found[-1]


def _download(path: Path) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": "application/zip",
                                           "Content-Disposition": f'attachment; filename="{path.name}"'})


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ClientError(BODY_TOO_LARGE)
    data = await request.content.read(limit + 1)
    while len(data) <= limit:
        more = await request.content.read(limit + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) > limit:
        raise ClientError(BODY_TOO_LARGE)
    return data


def _box_ids(text: str | None) -> set[int] | None:
    if not text:
        return None
    return {require_box_id(part.strip()) for part in text.split(",") if part.strip()}


def _box_ids_from(value: object) -> set[int]:
    if not isinstance(value, list) or not all(is_box_id(v) for v in value):
        raise ClientError(INVALID_REQUEST, f"box_ids must be a list of box ids (integers {BOX_ID_RANGE})")
    return set(value)


Saved = dict[int, tuple[dict[str, Any], int | None]]  # box -> (state, when the backup read its clock)


def _states_from_snapshots(snapshots: object) -> Saved:
    """All or nothing: one bad snapshot refuses the whole restore."""
    if not isinstance(snapshots, list) or not snapshots:
        raise ClientError(INVALID_REQUEST, "snapshots must be a non-empty list")
    saved: Saved = {}
    for index, snapshot in enumerate(snapshots):
        try:
            box_id, state = state_from_backup(snapshot)
        except ValueError as exc:
            raise ClientError(INVALID_REQUEST, f"snapshot {index}: {exc}") from None
        if box_id in saved:
            raise ClientError(INVALID_REQUEST, f"snapshot {index}: box {box_id} appears twice")
        saved[box_id] = (state, snapshot_time_ms(snapshot, state))
    return saved


async def _states_from_upload(request: web.Request) -> Saved:
    """A backup zip, raw or as the `file` field of a form, spooled to disk, then verified."""
    with tempfile.TemporaryDirectory(prefix="belay-restore-") as tmp:
        upload = Path(tmp) / "upload.zip"
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and not (isinstance(part, BodyPartReader) and part.name == "file"):
                part = await reader.next()
            if part is None:
                raise ClientError(INVALID_REQUEST, "missing form field: file")
            await _spool(part.read_chunk, upload)
        else:
            await _spool(request.content.read, upload)
        return await _states_from_zip_file(upload)


async def _spool(read: Any, target: Path) -> None:
    """The upload to a temp file, off the event loop (aiofiles writes on a thread)."""
    written = 0
    async with aiofiles.open(target, "wb") as out:
        while chunk := await read(1 << 16):
            written += len(chunk)
            if written > MAX_RESTORE_ZIP:
                raise ClientError(BODY_TOO_LARGE)
            await out.write(chunk)


async def _states_from_zip_file(path: Path) -> Saved:
    """Verify the zip, then rebuild every box of it as a start would: the same check as
    `run.py restore`, so a zip either restores whole or not at all."""
    try:
        contents = await asyncio.to_thread(read_zip, path, max_unpacked=MAX_RESTORE_UNPACKED)
        async with backup_as_storage(contents) as storage:
            boxes = await rebuild_backup(storage, contents.manifest.get("createdAt"))
    except (BackupInvalid, NotRebuildable, StorageError) as exc:
        raise ClientError(INVALID_REQUEST, f"invalid backup: {exc}") from None
    return {box.box_id: (box.state, box.as_of_ms) for box in boxes}
