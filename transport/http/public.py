"""Spectator HTTP routes: a free token, the list of live boxes, officials and rankings (served by the
core and by the edges alike: they read only PUBLIC_STATE)."""
from __future__ import annotations

from aiohttp import web

from transport.http.auth import Need, authorize
from transport.keys import PUBLIC_STATE, SPECTATOR_TOKENS

routes = web.RouteTableDef()


@routes.post("/api/public/token")
async def spectator_token(request: web.Request) -> web.Response:
    token, expires_in = request.app[SPECTATOR_TOKENS].issue_spectator()
    return web.json_response({"access_token": token, "token_type": "bearer", "expires_in": expires_in})


@routes.get("/api/public/boxes")
async def public_boxes(request: web.Request) -> web.Response:
    authorize(request, Need.SPECTATOR)
    boxes = []
    for box in request.app[PUBLIC_STATE].public_boxes():
        if not box.get("initiated"):
            continue
        boxes.append({
            "boxId": box["boxId"],
            "label": box.get("categorie") or f"Box {box['boxId']}",
            "initiated": True,
            "timerState": box.get("timerState"),
            "currentClimber": box.get("currentClimber") or None,
            "categorie": box.get("categorie") or None,
        })
    return web.json_response({"boxes": boxes})


@routes.get("/api/public/officials")
async def public_officials(request: web.Request) -> web.Response:
    authorize(request, Need.SPECTATOR)
    return web.json_response(dict(request.app[PUBLIC_STATE].officials()))


@routes.get("/api/public/rankings")
async def public_rankings(request: web.Request) -> web.Response:
    return web.json_response({"type": "PUBLIC_STATE_SNAPSHOT", "boxes": request.app[PUBLIC_STATE].public_boxes()})
