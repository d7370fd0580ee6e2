"""`python -m bench.deflate_fit`: do browsers read a frame deflated once for every socket?

The check behind docs/performance.md ("Spectator frames"): an aiohttp server accepts
permessage-deflate from the client's own offer (`WebSocketResponse(compress=True)`), then writes
the same compressed bytes (RSV1 set, deflated without context by bench/spectator_frames.py's
`deflate_once`) three times past aiohttp's writer with `transport.write`, as Belay's subscribers
write frames, and one plain frame after them (RSV1 is per message). Chromium (headless) and
aiohttp's client must read all four, and the client's own compressed reply must be read too.
Prints what each side saw; exit status 1 if either failed.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import struct
import sys

import orjson
from aiohttp import ClientSession, web

from bench.spectator_frames import deflate_once

PAYLOAD = orjson.dumps({"type": "STATE_SNAPSHOT", "competitors": [{"nume": f"Climber {i:02d}"} for i in range(60)]})
FRAMES = 4
PAGE = """<!doctype html><pre id=out>waiting</pre><script>
const ws = new WebSocket("ws://" + location.host + "/ws"); let n = 0, ok = 0;
ws.onmessage = (e) => { n++; if (JSON.parse(e.data).competitors.length === 60) ok++;
  if (n === FRAMES) { document.getElementById("out").textContent = "read " + ok + " of " + n + ", " + ws.extensions;
                  ws.send("read " + ok); } };
</script>""".replace("FRAMES", str(FRAMES))


def frame(payload: bytes, deflated: bool) -> bytes:
    first = 0x80 | 0x1 | (0x40 if deflated else 0)  # FIN, text, RSV1 = compressed
    size = len(payload)
    return (bytes((first, size)) if size < 126 else struct.pack("!BBH", first, 126, size)) + payload


SHARED = frame(deflate_once(PAYLOAD), deflated=True)
PLAIN = frame(PAYLOAD, deflated=False)


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=True)
    await ws.prepare(request)
    negotiated = ws.compress == 15  # a smaller server window could not hold the shared frame
    request.app["log"].append(f"offer {request.headers.get('Sec-WebSocket-Extensions')!r}, window {ws.compress}")
    assert request.transport is not None
    for _ in range(FRAMES - 1):
        request.transport.write(SHARED if negotiated else PLAIN)
    request.transport.write(PLAIN)
    async for message in ws:
        request.app["log"].append(f"client replied {message.data!r}")
    return ws


async def page(_request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def check() -> bool:
    app = web.Application()
    app["log"] = []
    app.router.add_get("/ws", socket)
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with ClientSession() as session, session.ws_connect(f"http://127.0.0.1:{port}/ws", compress=15) as ws:
            read = [orjson.loads((await ws.receive(timeout=10)).data) for _ in range(FRAMES)]
            client_ok = all(len(message["competitors"]) == 60 for message in read)
            await ws.send_str(f"read {len(read)}")
        print(f"aiohttp client: {'read all' if client_ok else 'FAILED'}")
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        browser_ok = browser is not None
        if browser is None:
            print("chromium: not installed, not checked")
        else:
            proc = await asyncio.create_subprocess_exec(
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
                f"http://127.0.0.1:{port}/", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            found = re.search(r'<pre id="out">(.*?)</pre>', out.decode())
            seen = found.group(1) if found else "no page"
            browser_ok = seen.startswith(f"read {FRAMES} of {FRAMES}")
            print(f"chromium: {seen}")
        await asyncio.sleep(0.2)
        print("server: " + "; ".join(app["log"]))
        print(f"frame: {len(PLAIN)} bytes plain, {len(SHARED)} deflated once")
        return client_ok and browser_ok
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(check()) else 1)
