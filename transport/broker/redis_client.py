"""How both sides open Redis: short timeouts and no hidden retries, since each side's own loop
reconnects with backoff and reports the outage (health) instead of stalling inside the client."""
from __future__ import annotations

import socket
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

CONNECT_TIMEOUT_S: Final = 2.0
# A publication or a read that takes longer than this is an outage (a live Redis answers in ms).
COMMAND_TIMEOUT_S: Final = 5.0
BACKOFF_FIRST_S: Final = 0.1
BACKOFF_MAX_S: Final = 5.0


def open_redis(url: str, *, for_pubsub: bool = False) -> Redis:
    """`for_pubsub`: no read timeout, a subscriber waits for messages as long as none come. A
    connection that died without a word (a NAT forgot it, a cable) is found by TCP keepalives."""
    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                          socket_timeout=None if for_pubsub else COMMAND_TIMEOUT_S,
                          health_check_interval=10 if for_pubsub else 0,
                          socket_keepalive=True, socket_keepalive_options=_keepalive(),
                          retry=Retry(NoBackoff(), 0))


def _keepalive() -> dict[int, int]:
    """Probe after 10 s of silence, every 5 s, give up after 3 (Linux names; elsewhere the system's)."""
    wanted = (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    return {getattr(socket, name): value for name, value in wanted if hasattr(socket, name)}


def next_backoff(current: float) -> float:
    return min(BACKOFF_MAX_S, max(BACKOFF_FIRST_S, current * 2))
