"""The one place that decides who may do what.

Until accounts exist (next issue) every request is allowed; routes already say what they need,
so turning authentication on changes this module only.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiohttp import web

from actors.messages import Origin

MAX_USER_AGENT = 512


class Need(Enum):
    BOX_COMMAND = "box-cmd"
    VIEW_BOX = "view-box"
    ADMIN = "admin"
    PUBLIC = "public"


@dataclass(frozen=True, slots=True)
class Principal:
    username: str | None
    role: str | None
    boxes: tuple[int, ...] = ()


ANONYMOUS = Principal(None, None)


def authorize(request: web.Request, need: Need, box_id: int | None = None) -> Principal:
    """Return who is asking, or raise a 401/403 ClientError. Open until accounts exist."""
    return ANONYMOUS


def origin_of(request: web.Request, principal: Principal) -> Origin:
    return Origin(
        username=principal.username,
        role=principal.role,
        ip=request.remote,
        user_agent=(request.headers.get("User-Agent") or "")[:MAX_USER_AGENT] or None,
    )
