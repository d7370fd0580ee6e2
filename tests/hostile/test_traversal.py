"""Path traversal through every path and file name the API takes: box ids in paths, categories of
save_ranking and the podium, the backup download (takes no name), and the entries of a restore zip.

Every attempt is refused with 4xx JSON (or, where a name is legitimately turned into a safe folder,
succeeds inside the storage dir), and no file appears outside the storage and backup dirs.
"""
from __future__ import annotations

import hashlib
import io
import stat
import warnings
import zipfile
from pathlib import Path

import orjson
from yarl import URL

from tests.hostile.conftest import Hostile
from tests.hostile.figures import record
from tests.hostile.harness import Verdicts, send

BOX_SEGMENTS = ["../1", "..%2F1", "%2e%2e", "%2e%2e%2f1", "1/../2", "1%2F..%2F2", "-1", "%EF%BC%91", "10000",
                "0x1", "1.0", "%00", "0%00", "..", "."]
BOX_ROUTES = ["GET /api/state/{}", "GET /api/admin/export/box/{}", "GET /api/admin/export/official/box/{}",
              "GET /api/admin/backup/box/{}", "POST /api/admin/auth/boxes/{}/password", "GET /api/ws/{}",
              "GET /api/public/ws/{}"]
CATEGORIES = ["../x", "..\\x", "a/b", "", ".", "..", "\x00", "a\x00b", "x" * 5000, "%2e%2e%2f", "../../../../tmp/x",
              "/abs", "C:\\x", " .. ", "...", "con", "NUL", "\u202e..", "．．", "..\u2215x", "..\uff0fx"]
PODIUM_SEGMENTS = ["..%2Fx", "..%5Cx", "a%2Fb", "%2e", "%2e%2e", "%00", "x" * 300, "%252e%252e%252f",
                   "..%2F..%2F..%2Fetc%2Fpasswd", "%EF%BC%8E%EF%BC%8E", "con", ".", ".."]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def outside(hostile: Hostile, before: set[str]) -> list[str]:
    """New paths under tmp_path that are not inside data/ or backups/."""
    new = tree(hostile.tmp_path) - before
    return sorted(p for p in new if not (p == "data" or p.startswith(("data/", "backups/")) or p == "backups"))


def url(hostile: Hostile, path: str) -> URL:
    return URL(str(hostile.client.make_url("/")).rstrip("/") + path, encoded=True)


async def test_box_ids_and_categories_in_paths_and_bodies(hostile: Hostile) -> None:
    client = hostile.client
    assert (await client.post("/api/cmd", json={"boxId": 1, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 5,
                                                "competitors": [{"nume": "Ana"}]})).status == 200
    before = tree(hostile.tmp_path)
    verdicts = Verdicts("traversal")
    for route in BOX_ROUTES:
        method, template = route.split(" ")
        for segment in BOX_SEGMENTS:
            status, _ = await send(verdicts, client.session, route, method, url(hostile, template.format(segment)),
                                   segment, json={"password": "judge-pass-123"})
            if status < 400:
                verdicts.violate(route, f"accepted with {status}", segment)
    for segment in PODIUM_SEGMENTS:
        status, _ = await send(verdicts, client.session, "GET /api/podium/{}", "GET",
                               url(hostile, f"/api/podium/{segment}"), segment)
        if status < 400:
            verdicts.violate("GET /api/podium/{}", f"accepted with {status}", segment)
    results = hostile.tmp_path / "data" / "results"
    saved = 0
    for category in CATEGORIES:
        body = {"categorie": category, "route_count": 1, "scores": {"Ana": [10]}}
        status, _ = await send(verdicts, client, "POST /api/save_ranking", "POST", "/api/save_ranking", category,
                               json=body)
        if status == 200:
            saved += 1
            # Accepted names become one safe folder directly under results/.
            folders = [p for p in results.iterdir() if p.is_dir()]
            assert all(p.parent == results for p in folders)
        elif category in ("../x", "..\\x", "a/b", "", ".", "..", "\x00", "a\x00b", "x" * 5000, "/abs", "C:\\x",
                          "../../../../tmp/x"):
            assert 400 <= status < 500, (category, status)
    assert not verdicts.violations, verdicts.report()
    assert outside(hostile, before) == []
    for path in results.rglob("*"):
        assert path.resolve().is_relative_to(results.resolve()), path
    record("hostile.traversal", target="paths and categories", attempts=verdicts.cases, saved_safely=saved,
           server_errors=verdicts.server_errors, files_outside=0)
    hostile.assert_no_tracebacks()


async def test_backup_download_never_serves_a_file_outside_backup_dir(hostile: Hostile) -> None:
    client = hostile.client
    (hostile.tmp_path / "secret.txt").write_text("not for download")
    assert (await client.post("/api/admin/ops/backup/now")).status == 200
    backup_dir = hostile.tmp_path / "backups"
    served_ok = {hashlib.sha256(p.read_bytes()).hexdigest() for p in backup_dir.iterdir()}
    verdicts = Verdicts("backup download")
    attempts = ["/api/admin/backup/download", "/api/admin/backup/download?name=../secret.txt",
                "/api/admin/backup/download?filename=..%2Fsecret.txt", "/api/admin/backup/download?path=/etc/passwd",
                "/api/admin/backup/download/..%2F..%2Fsecret.txt", "/api/admin/backup/download/../../secret.txt",
                "/api/admin/backup/last?download=1&name=../secret.txt", "/api/admin/backup/..%2Fsecret.txt",
                "/api/admin/backup/last?download=1", "/api/admin/backup/%2e%2e/%2e%2e/secret.txt"]
    for attempt in attempts:
        status, body = await send(verdicts, client.session, "GET backup", "GET", url(hostile, attempt), attempt)
        if status == 200 and "download" in attempt and not attempt.startswith("/api/admin/backup/last?download=1&"):
            assert hashlib.sha256(body).hexdigest() in served_ok, attempt
        elif status == 200:
            assert hashlib.sha256(body).hexdigest() in served_ok or b"not for download" not in body, attempt
        assert b"not for download" not in body, attempt
    assert not verdicts.violations, verdicts.report()
    record("hostile.traversal", target="backup download", attempts=len(attempts))
    hostile.assert_no_tracebacks()


def _zip(entries: list[tuple[str, bytes, int | None]]) -> bytes:
    """A backup-shaped zip whose manifest lists every entry with its real size and checksum."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are one of the attacks
        files = []
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, data)
            files.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        manifest = {"format": "belay-backup", "storageFormatVersion": 1, "files": files}
        archive.writestr("manifest.json", orjson.dumps(manifest))
    return out.getvalue()


async def test_restore_zip_entries_cannot_escape(hostile: Hostile) -> None:
    client = hostile.client
    before = tree(hostile.tmp_path)
    box = orjson.dumps({"sessionId": "s", "boxVersion": 3})
    link = stat.S_IFLNK | 0o777
    hostile_entries = [
        [("../x", b"x", None)], [("/abs", b"x", None)], [("/tmp/belay-hostile-abs", b"x", None)],
        [("boxes/../../x", b"x", None)], [("C:\\x", b"x", None)], [("boxes\\..\\..\\x", b"x", None)],
        [("boxes/1.json/../../../x", box, None)], [("results/../../x/overall.xlsx", b"x", None)],
        [("results/../overall.xlsx", b"x", None)], [("results/..\\..\\x/overall.pdf", b"x", None)],
        [("boxes/1.json", b"../../../../etc/passwd", link)],  # a symlink entry under a legitimate name
        [("boxes/1.json", box, None), ("boxes/1.json", box, None)], [("./boxes/1.json", box, None)],
        [("boxes//1.json", box, None)], [("users.json/", b"", None)], [("boxes/1.json\x00.x", box, None)],
    ]
    verdicts = Verdicts("restore zip")
    for entries in hostile_entries:
        data = _zip(entries)
        for kind in ("raw", "form"):
            if kind == "raw":
                kwargs = {"data": data, "headers": {"Content-Type": "application/zip"}}
            else:
                kwargs = {"data": _form(data)}
            status, body = await send(verdicts, client, "POST /api/admin/restore", "POST", "/api/admin/restore?force=1",
                                      [e[0] for e in entries], **kwargs)
            if status < 400 and not (entries[0][0] == "boxes/1.json" and entries[0][2] == link):
                verdicts.violate("POST /api/admin/restore", f"accepted with {status}: {body[:100]!r}", entries)
    assert not verdicts.violations, verdicts.report()
    assert outside(hostile, before) == []
    assert not Path("/tmp/belay-hostile-abs").exists()
    record("hostile.traversal", target="restore zip entries", attempts=verdicts.cases, files_outside=0)
    await hostile.assert_still_serving()
    hostile.assert_no_tracebacks()


def _form(data: bytes) -> object:
    from aiohttp import FormData
    form = FormData()
    form.add_field("file", io.BytesIO(data), filename="backup.zip", content_type="application/zip")
    return form
