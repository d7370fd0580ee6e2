"""The machine's ceilings, measured with the same clients as Belay.

(a) a bare aiohttp+uvloop server answering {"status":"ok"} to the same POSTs (and a fixed
    snapshot to GET /api/state/{id}, so the clients' set-up works unchanged);
(b) a bare aiohttp broadcaster: WS /api/ws/{id} subscribers, and POST /blast?seconds=&size=
    sends one pre-encoded TEXT frame of `size` bytes to every socket, round after round;
(c) disk: append+fdatasync and write+fsync+rename+dir-fsync rates in a given directory.

(a) and (b) run as `python -m bench.ceilings --port 0` (prints "listening on ...", like run.py).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

OK = b'{"status":"ok"}'
STATE = b'{"type":"STATE_SNAPSHOT","boxId":0,"boxVersion":0,"sessionId":"bare-session"}'


def make_app() -> web.Application:
    sockets: dict[web.WebSocketResponse, Any] = {}  # socket -> its transport

    async def command(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=OK, content_type="application/json")

    async def state(_request: web.Request) -> web.Response:
        return web.Response(body=STATE, content_type="application/json")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ready"}', content_type="application/json")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        sockets[ws] = request.transport
        try:
            async for _msg in ws:
                pass
        finally:
            sockets.pop(ws, None)
        return ws

    async def blast(request: web.Request) -> web.Response:
        seconds, size = float(request.query["seconds"]), int(request.query["size"])
        head = b'{"type":"BLAST","pad":"'
        payload = head + b"x" * max(0, size - len(head) - 2) + b'"}'
        # The whole TEXT frame encoded once; each round writes it to every socket whose buffer has
        # room (the same bounded-buffer rule a real broadcaster needs), then lets the loop flush.
        n = len(payload)
        header = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big") if n < 65536 \
            else bytes([0x81, 127]) + n.to_bytes(8, "big")
        wire = header + payload
        end = time.monotonic() + seconds
        rounds = sent = skipped = 0
        while time.monotonic() < end:
            for transport in tuple(sockets.values()):
                if transport is None or transport.is_closing():
                    continue
                if transport.get_write_buffer_size() < 65536:
                    transport.write(wire)
                    sent += 1
                else:
                    skipped += 1
            rounds += 1
            await asyncio.sleep(0)
        return web.json_response({"rounds": rounds, "frames_sent": sent, "skipped_full": skipped,
                                  "sockets": len(sockets)})

    app = web.Application()
    app.router.add_post("/api/cmd", command)
    app.router.add_get("/api/state/{box}", state)
    app.router.add_get("/api/health/ready", ready)
    app.router.add_get("/api/ws/{box}", socket)
    app.router.add_post("/blast", blast)
    return app


def serve(port: int) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        runner = web.AppRunner(make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"listening on http://127.0.0.1:{bound}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def disk_rates(directory: Path, seconds: float, line_bytes: int = 600) -> dict[str, Any]:
    """Raw rates on the storage filesystem: one ~event-sized append + fdatasync per op, and one
    checkpoint-style atomic replace (write, fsync, rename, directory fsync) per op."""
    directory.mkdir(parents=True, exist_ok=True)
    line = b"x" * (line_bytes - 1) + b"\n"
    path = directory / "ceiling.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sync = getattr(os, "fdatasync", os.fsync)
    n, t0 = 0, time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            os.write(fd, line)
            sync(fd)
            n += 1
    finally:
        os.close(fd)
    append_s = time.perf_counter() - t0
    doc = b"{" + b'"k":"' + b"y" * 4000 + b'"}\n'
    dir_fd = os.open(directory, os.O_RDONLY)
    m, t0 = 0, time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            tmp, final = directory / f"cp{m % 16}.json.tmp", directory / f"cp{m % 16}.json"
            f = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(f, doc)
            os.fsync(f)
            os.close(f)
            os.replace(tmp, final)
            os.fsync(dir_fd)
            m += 1
    finally:
        os.close(dir_fd)
    replace_s = time.perf_counter() - t0
    return {"append_fdatasync_per_s": round(n / append_s, 1),
            "append_fdatasync_ms": round(1000 * append_s / max(1, n), 3),
            "atomic_replace_per_s": round(m / replace_s, 1),
            "atomic_replace_ms": round(1000 * replace_s / max(1, m), 3),
            "line_bytes": line_bytes, "checkpoint_bytes": len(doc)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--storage-dir")  # accepted and ignored: the launcher passes it to every server
    parser.add_argument("--log-level")
    sys.exit(serve(parser.parse_known_args()[0].port))
