"""The parser and its worker pool directly: deadlines, killed and crashed workers, odd workbooks."""
from __future__ import annotations

import io
import operator
import os
import time
import zipfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from actors.jobs.pool import WorkerDied, WorkerPool, WorkerTimeout
from actors.jobs.start_list import NO_SHEET, PARSE_TIMEOUT_S, TOO_SLOW, SheetError, cell_text, read_start_list
from tests.transport.http.upload_helpers import form, upload, workbook_bytes, zip_bytes
from transport.keys import UPLOAD_POOL


def test_cell_text() -> None:
    values = (None, 5, 5.0, -3.0, 2.5, True, "  x ")
    assert [cell_text(v) for v in values] == ["", "5", "5", "-3", "2.5", "TRUE", "  x "]


def test_no_sheet(tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(workbook_bytes(tmp_path, [("Ana Pop", None)]))) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    workbook = entries["xl/workbook.xml"].decode()
    start, end = workbook.index("<sheets>"), workbook.index("</sheets>") + len("</sheets>")
    entries["xl/workbook.xml"] = (workbook[:start] + "<sheets/>" + workbook[end:]).encode()
    with pytest.raises(SheetError) as caught:
        read_start_list(zip_bytes(entries), True)
    assert caught.value.detail == NO_SHEET


def test_the_worker_gives_up_at_its_own_deadline(tmp_path: Path) -> None:
    with pytest.raises(SheetError) as caught:
        read_start_list(workbook_bytes(tmp_path, [("Ana Pop", None)]), True, time_limit_s=-1)
    assert caught.value.detail == TOO_SLOW


async def test_a_stuck_worker_is_killed_and_replaced() -> None:
    pool = WorkerPool(timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(WorkerTimeout):
            await pool.run(time.sleep, 60)
        assert time.monotonic() - started < 20
        assert await pool.run(operator.add, 2, 3) == 5
    finally:
        await pool.close()


async def test_a_crashed_worker_is_replaced() -> None:
    pool = WorkerPool(PARSE_TIMEOUT_S)
    try:
        with pytest.raises(WorkerDied):
            await pool.run(os._exit, 3)
        assert await pool.run(operator.mul, 6, 7) == 42
    finally:
        await pool.close()


async def test_slow_file_is_a_400(client: TestClient, tmp_path: Path) -> None:
    client.app[UPLOAD_POOL].timeout_s = 0.0
    status, body = await upload(client, form(workbook_bytes(tmp_path, [("Ana Pop", None)])))
    assert (status, body) == (400, {"detail": TOO_SLOW})


async def test_chunked_body_over_10_mib_is_413(client: TestClient) -> None:
    boundary = "belayboundary"

    async def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.xlsx\"\r\n"
               f"Content-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(11):
            yield b"\0" * (1024 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    status, reply = await upload(client, body(), **{"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert (status, reply) == (413, {"detail": "request body too large"})
