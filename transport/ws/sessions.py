"""Who is behind each open box socket, so that a change of an account also closes its sockets.

When an account's sessions end (a new password, deactivation, removal, another role or boxes) its
open box sockets are closed with 4401, and the UI asks for a login. A logout does not close any:
it ends the session for new requests and new sockets only, because the UI logs out whenever a tab
holds a role that does not fit it (the judge page does so on mount) while the contest page on the
projector, in the same browser, must stay connected. Spectator sockets carry no account.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from actors.accounts.tokens import Claims
from transport.ws.subscriber import Subscriber

log = logging.getLogger("belay.ws")

CLOSE_CODE = 4401  # what the UI treats as "log in again"
CLOSE_TIMEOUT_S = 5.0  # a client that does not take the close frame by then is dropped


class SocketSessions:
    def __init__(self) -> None:
        self._claims: dict[Subscriber, Claims] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def add(self, subscriber: Subscriber, claims: Claims) -> None:
        self._claims[subscriber] = claims

    def discard(self, subscriber: Subscriber) -> None:
        self._claims.pop(subscriber, None)

    def count(self) -> int:
        return len(self._claims)

    def close_ended(self, stands: Callable[[Claims], bool], reason: str) -> int:
        """Close (4401, `reason`) every socket whose token no longer `stands`; returns how many."""
        ended = [subscriber for subscriber, claims in self._claims.items() if not stands(claims)]
        for subscriber in ended:
            del self._claims[subscriber]
            subscriber.close()  # no frame may follow the close frame
            task = asyncio.get_running_loop().create_task(self._close(subscriber, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if ended:
            log.info("closed %d WebSocket(s) of account(s) whose sessions ended", len(ended))
        return len(ended)

    async def close(self) -> None:
        """At shutdown: stop closing sockets one by one (the shutdown closes them all)."""
        for task in tuple(self._closing):
            task.cancel()
        await asyncio.gather(*self._closing, return_exceptions=True)

    @staticmethod
    async def _close(subscriber: Subscriber, reason: str) -> None:
        try:
            await asyncio.wait_for(subscriber.ws.close(code=CLOSE_CODE, message=reason.encode()), CLOSE_TIMEOUT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            subscriber.abort()
