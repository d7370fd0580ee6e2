"""The ops page's files: GET /ops and its script and style, from static/ (no build step).

The page itself holds no data: it logs in through /api/auth/login (the UI's cookie) and gets
everything over the admin-only socket /api/ops/ws (transport/ws/endpoints.py). Its policy lets it
load and connect to nothing but this server: venues often have no internet.
"""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

routes = web.RouteTableDef()


@routes.get("/ops")
async def ops_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": POLICY,
                                                            "Cache-Control": "no-cache"})


routes.static("/ops/static", STATIC)
