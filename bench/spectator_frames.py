"""`python -m bench.spectator_frames [--climbers N]`: the bytes a phone receives per spectator update,
plain and deflated as Belay sends them to a socket that negotiated permessage-deflate.

A core starts on a temp dir (bench/server.py) with one box of 30 climbers. Two spectators follow it,
as the public pages do: a box page on /api/public/ws/{id} and the hub on /api/public/ws. A judge plays
the round (start the clock, three holds, the score, for each climber), each command 0.3 s after the
last so that every one reaches spectators as its own frame (the throttle merges within 250 ms).
Every frame is kept as received and deflated afterwards by Belay's own function
(transport/ws/frames.py `deflated_text_frame`: level 1, each message alone, frames under 256 bytes
left plain), byte for byte what a deflating socket gets; and, for comparison, at zlib's default
level in the `_default` fields of the JSON lines. Sizes are exact; the microseconds per compression
are a rough figure on a shared machine. Prints JSON lines and a table.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import zlib
from typing import Any

import orjson
from aiohttp import ClientSession, WSMsgType

from bench.client_process import NAMES, init_route
from bench.credentials import admin_headers
from bench.server import BelayServer, plan_affinity
from transport.ws.frames import DEFLATE_LEVEL, deflated_text_frame, text_frame

BOX = 0
STEP_S = 0.3  # longer than the spectator throttle's window (transport/ws/hub.py)
HOLDS_PER_CLIMBER = 3
TIMING_ROUNDS = 200
# On the wire each frame also carries, under TLS 1.3 with AES-GCM, 22 bytes of record header, type
# and tag (one record: nginx's ssl_buffer_size is 16 KiB), and 52 bytes of IPv4 and TCP headers
# (with timestamps) per segment of at most 1448 bytes.
TLS_RECORD_OVERHEAD = 22
TCP_IP_OVERHEAD = 52
SEGMENT = 1448


def deflate_once(payload: bytes, level: int = zlib.Z_DEFAULT_COMPRESSION) -> bytes:
    """The payload of a permessage-deflate message without context takeover (RFC 7692 §7.2.1)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data.removesuffix(b"\x00\x00\xff\xff")


def inflate(data: bytes) -> bytes:
    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data + b"\x00\x00\xff\xff")


def frame_size(payload_size: int) -> int:
    """A server frame: unmasked, 2, 4 or 10 bytes of header (transport/ws/frames.py)."""
    return payload_size + (2 if payload_size < 126 else 4 if payload_size < 1 << 16 else 10)


def wire_size(frame_bytes: int) -> int:
    record = frame_bytes + TLS_RECORD_OVERHEAD
    return record + TCP_IP_OVERHEAD * -(-record // SEGMENT)


async def play_round(url: str, climbers: int) -> dict[str, list[tuple[str, bytes]]]:
    frames: dict[str, list[tuple[str, bytes]]] = {"box page": [], "hub": []}
    async with ClientSession(headers=admin_headers()) as judge, ClientSession() as phone:
        async def send(body: dict[str, Any]) -> None:
            async with judge.post(f"{url}/api/cmd", json=body) as response:
                if response.status != 200:
                    raise RuntimeError(f"{body['type']}: {response.status} {await response.text()}")
            await asyncio.sleep(STEP_S)

        await send(init_route(BOX))
        token = (await (await phone.post(f"{url}/api/public/token")).json())["access_token"]
        sockets = {"box page": await phone.ws_connect(f"{url}/api/public/ws/{BOX}?token={token}"),
                   "hub": await phone.ws_connect(f"{url}/api/public/ws?token={token}")}
        readers = [asyncio.create_task(_read(ws, frames[name])) for name, ws in sockets.items()]
        await asyncio.sleep(STEP_S)
        for climber in NAMES[:climbers]:
            session = (await (await judge.get(f"{url}/api/state/{BOX}")).json())["sessionId"]
            await send({"boxId": BOX, "type": "START_TIMER", "sessionId": session})
            for _ in range(HOLDS_PER_CLIMBER):
                await send({"boxId": BOX, "type": "PROGRESS_UPDATE", "delta": 1, "sessionId": session})
            await send({"boxId": BOX, "type": "SUBMIT_SCORE", "competitor": climber,
                        "score": HOLDS_PER_CLIMBER, "sessionId": session})
        await asyncio.sleep(1.0)
        for ws in sockets.values():
            await ws.close()
        await asyncio.gather(*readers)
    return frames


async def _read(ws: Any, sink: list[tuple[str, bytes]]) -> None:
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            payload = message.data.encode()
            sink.append((orjson.loads(payload).get("type", "?"), payload))


def summarise(page: str, kind: str, payloads: list[bytes]) -> dict[str, Any]:
    raw = [frame_size(len(p)) for p in payloads]
    line: dict[str, Any] = {"page": page, "frame": kind, "count": len(payloads),
                            "frame_bytes_mean": round(statistics.fmean(raw)), "frame_bytes_max": max(raw),
                            "wire_bytes_mean": round(statistics.fmean(map(wire_size, raw)))}
    variants = (("", DEFLATE_LEVEL, lambda p: len(deflated_text_frame(text_frame(p)))),
                ("_default", zlib.Z_DEFAULT_COMPRESSION, lambda p: frame_size(len(deflate_once(p)))))
    for suffix, level, deflated_size in variants:
        deflated = []
        for payload in payloads:
            assert inflate(deflate_once(payload, level)) == payload
            deflated.append(deflated_size(payload))
        line |= {f"deflated_bytes_mean{suffix}": round(statistics.fmean(deflated)),
                 f"deflated_bytes_max{suffix}": max(deflated),
                 f"saved_pct{suffix}": round(100 * (1 - sum(deflated) / sum(raw)), 1),
                 f"wire_deflated_bytes_mean{suffix}": round(statistics.fmean(map(wire_size, deflated))),
                 f"deflate_us_largest{suffix}": round(_micros_to_deflate(max(payloads, key=len), level), 1)}
    return line


def _micros_to_deflate(payload: bytes, level: int) -> float:
    t0 = time.perf_counter()
    for _ in range(TIMING_ROUNDS):
        deflate_once(payload, level)
    return (time.perf_counter() - t0) / TIMING_ROUNDS * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spectator_frames", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--climbers", type=int, default=len(NAMES), help="climbers scored in the round (default 30)")
    args = parser.parse_args(argv)
    with BelayServer(plan_affinity()) as server:
        frames = asyncio.run(play_round(server.url, min(max(args.climbers, 1), len(NAMES))))
    lines = []
    for page, received in frames.items():
        by_kind: dict[str, list[bytes]] = {}
        for kind, payload in received:
            by_kind.setdefault(kind, []).append(payload)
        lines += [summarise(page, kind, payloads) for kind, payloads in sorted(by_kind.items())]
    for line in lines:
        print(orjson.dumps(line).decode())
    print(f"\n{'page':9} {'frame':22} {'n':>4} {'bytes':>6} {'max':>6} {'deflated':>8} {'max':>6} {'saved':>6} "
          f"{'wire':>6} {'wire/d':>6} {'µs':>6}", file=sys.stderr)
    for line in lines:
        print(f"{line['page']:9} {line['frame']:22} {line['count']:>4} {line['frame_bytes_mean']:>6} "
              f"{line['frame_bytes_max']:>6} {line['deflated_bytes_mean']:>8} {line['deflated_bytes_max']:>6} "
              f"{line['saved_pct']:>5}% {line['wire_bytes_mean']:>6} {line['wire_deflated_bytes_mean']:>6} "
              f"{line['deflate_us_largest']:>6}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
