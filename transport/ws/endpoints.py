"""WebSocket endpoints: join a channel, send the first snapshot, answer REQUEST_STATE."""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from actors.accounts.tokens import Claims
from actors.registry import BoxRegistry, BoxUnavailable
from actors.rules.limits import is_box_id
from transport.http.auth import Need, authorize, may_view, session_stands
from transport.http.bodies import require_box_id
from transport.http.errors import TOKEN_REVOKED, ClientError, drop_tracebacks
from transport.keys import CONFIG, PUBLIC_STATE, REGISTRY
from transport.ws.frames import DEFLATE_WINDOW_BITS, pong_frame, text_frame
from transport.ws.hub import OPS, PUBLIC, SNAPSHOT, Hub, box_channel, deflating, public_box_channel
from transport.ws.keys import HUB, OPS_FEED, SOCKET_SESSIONS, TABLETS
from transport.ws.sessions import CLOSE_CODE
from transport.ws.subscriber import Subscriber

MAX_CLIENT_FRAME = 64 * 1024
MAX_CLOSE_REASON = 123

routes = web.RouteTableDef()
# The spectators' sockets, served by the core and the edges alike (they read only PUBLIC_STATE).
public_routes = web.RouteTableDef()


@routes.get("/api/ws/{box_id}")
async def box_socket(request: web.Request) -> web.StreamResponse:
    box_id = require_box_id(request.match_info["box_id"])
    try:
        principal = authorize(request, Need.VIEW_BOX, box_id)
    except ClientError as exc:
        return await _refuse(request, exc)
    registry = request.app[REGISTRY]

    def snapshot_for(message: dict[str, Any]) -> bytes | None:
        target = message.get("boxId", box_id)
        if not is_box_id(target):
            return None
        if target != box_id and not may_view(principal, target):
            return None
        return _snapshot_frame(registry, target)

    tablet = box_id if principal.role == "judge" else None  # a judge may only open its own boxes
    return await _serve(request, box_channel(box_id), lambda: _snapshot_frame(registry, box_id), snapshot_for,
                        principal.role, principal.claims, tablet)


@public_routes.get("/api/public/ws/{box_id}")
async def public_box_socket(request: web.Request) -> web.StreamResponse:
    box_id = require_box_id(request.match_info["box_id"])
    try:
        authorize(request, Need.SPECTATOR, box_id)
    except ClientError as exc:
        return await _refuse(request, exc, always_4401=True)
    public = request.app[PUBLIC_STATE]

    def first() -> bytes | None:
        snapshot = public.snapshot(box_id)  # None: the socket stays quiet until the box is back
        return None if snapshot is None else orjson.dumps(snapshot)

    return await _serve(request, public_box_channel(box_id), first, lambda _m: first(), "spectator", may_deflate=True)


def _snapshot_frame(registry: BoxRegistry, box_id: int) -> bytes | None:
    """None for a box whose history cannot rebuild it: the socket stays open and quiet, and gets
    the box's snapshot as soon as an admin brings it back."""
    try:
        return orjson.dumps(registry.snapshot(box_id))
    except BoxUnavailable:
        return None


@routes.get("/api/ops/ws")
async def ops_socket(request: web.Request) -> web.StreamResponse:
    """The ops page's live summary (transport/ops/): a fresh one at once, then one a second."""
    try:
        principal = authorize(request, Need.ADMIN)
    except ClientError as exc:
        return await _refuse(request, exc)
    feed = request.app[OPS_FEED]
    first = await feed.fresh()
    return await _serve(request, OPS, lambda: first, lambda _m: feed.latest(), principal.role, principal.claims)


@public_routes.get("/api/public/ws")
async def public_socket(request: web.Request) -> web.StreamResponse:
    public = request.app[PUBLIC_STATE]  # open to everyone: the rankings page connects without a token

    def first() -> bytes:
        return orjson.dumps({"type": "PUBLIC_STATE_SNAPSHOT", "boxes": public.public_boxes()})

    return await _serve(request, PUBLIC, first, lambda _m: first(), "anonymous", may_deflate=True)


async def _refuse(request: web.Request, error: ClientError, always_4401: bool = False) -> web.StreamResponse:
    """Accept, then close with 4401/4403: a browser sees these codes, never an HTTP 403 handshake."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    code = 4401 if always_4401 or error.status_code == 401 else 4403
    await ws.close(code=code, message=close_reason(error.detail))
    return ws


def close_reason(text: str) -> bytes:
    """A close frame's reason: at most 123 bytes of valid UTF-8, or browsers fail the socket."""
    return text.encode()[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode()


async def _serve(request: web.Request, channel: tuple[Hashable, ...], first_frame: Callable[[], bytes | None],
                 on_request_state: Callable[[dict[str, Any]], bytes | None], role: str,
                 claims: Claims | None = None, tablet: int | None = None,
                 may_deflate: bool = False) -> web.StreamResponse:
    """`role`: who is behind the socket, for /metrics. `claims`: the login behind the socket, which
    is closed (4401) once its account changes. `tablet`: the box whose judge tablet this socket is
    (transport/ws/tablets.py). `may_deflate`: a spectator socket, which may negotiate
    permessage-deflate (frames.py)."""
    config = request.app[CONFIG]
    hub = request.app[HUB]
    sessions = request.app[SOCKET_SESSIONS]
    # Judges' and scoreboards' sockets stay uncompressed: they are on the venue's LAN, where bytes
    # are cheap, and their fan-out is the hot path. No per-socket heartbeat timer and no automatic
    # pong: the hub pings (see hub.py), and a client's pings are answered below, so every frame the
    # client sends proves it is alive.
    ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_CLIENT_FRAME, compress=may_deflate)
    await ws.prepare(request)
    if ws.compress == DEFLATE_WINDOW_BITS:
        # Broadcasts come deflated; the first snapshot and REQUEST_STATE answers, built for this
        # socket alone, stay plain (a message is compressed or not, frame by frame: RSV1).
        channel = deflating(channel)
    subscriber = Subscriber(ws, request.transport, max_pending_bytes=config.ws_max_pending_bytes,
                            stall_timeout_s=config.ws_stall_timeout_s, counts=hub.frame_counts, role=role)
    if claims is not None:
        if not session_stands(request.app, claims):  # the account changed during the handshake
            await ws.close(code=CLOSE_CODE, message=TOKEN_REVOKED.encode())
            return ws
        sessions.add(subscriber, claims)
    first = first_frame()
    hub.join(channel, subscriber, None if first is None else text_frame(first), tablet=tablet is not None)
    if tablet is not None:
        request.app[TABLETS].connected(tablet, subscriber)  # only the core has tablets (not an edge)
    try:
        async for message in ws:
            subscriber.heard()
            if message.type == WSMsgType.TEXT:
                _answer(hub, subscriber, message.data, on_request_state)
            elif message.type == WSMsgType.PING:
                subscriber.send(pong_frame(message.data))
    finally:
        if tablet is not None:
            request.app[TABLETS].disconnected(tablet, subscriber)
        sessions.discard(subscriber)
        hub.leave(channel, subscriber)
        subscriber.close()
        drop_tracebacks(ws.exception())  # a socket that died keeps its error
    return ws


def _answer(hub: Hub, subscriber: Subscriber, data: str,
            on_request_state: Callable[[dict[str, Any]], bytes | None]) -> None:
    """Only REQUEST_STATE and PING get an answer; anything else (PONG, echoes, junk) is ignored."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(message, dict):
        return
    kind = message.get("type")
    if kind == "REQUEST_STATE":
        payload = on_request_state(message)
        if payload is not None:  # through the hub, so it cannot overtake an older queued frame
            hub.send_to(subscriber, text_frame(payload), key=SNAPSHOT)
    elif kind == "PING":
        stamp = message.get("timestamp")
        if not isinstance(stamp, (int, float, str)) or isinstance(stamp, bool):
            stamp = None  # only a plain value is echoed back
        subscriber.send(text_frame(orjson.dumps({"type": "PONG", "timestamp": stamp})))
