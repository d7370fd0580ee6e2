"""A small actor runtime: each actor owns a mailbox and handles one message at a time.

Actors need no locks: all changes to an actor's state happen inside `handle`, one message after
another. `ask` waits for the reply; `tell` does not. `try_now` lets the caller's task handle a
message that needs no wait while the actor is idle, which is what the actor would do next. When
an actor stops, every request still in its mailbox is failed at once instead of hanging. A
`BatchingActor` takes everything waiting in its mailbox at once instead (group commit), and on
stop still handles what was queued. Every actor task belongs to one TaskGroup owned by
`ActorSystem`, so a task never dies silently.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

log = logging.getLogger("belay.actors")


class ActorStopped(RuntimeError):
    """The actor is stopping or stopped; the message was not handled."""


class ActorFailed(RuntimeError):
    """The handler raised; the actor kept its last good state and goes on serving."""


@dataclass(frozen=True, slots=True)
class _Envelope:
    message: object
    reply: asyncio.Future[Any] | None


_STOP = _Envelope(None, None)
NOT_NOW = object()  # `handle_now` could not complete the message without waiting


class Mailbox:
    """A FIFO with one reader: lighter than asyncio.Queue on the path every command takes."""

    def __init__(self) -> None:
        self._items: deque[_Envelope] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, envelope: _Envelope) -> None:
        self._items.append(envelope)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> _Envelope:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def get_nowait(self) -> _Envelope:
        return self._items.popleft()

    async def get_all(self) -> list[_Envelope]:
        """Everything waiting, oldest first, once there is something."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = list(self._items)
        self._items.clear()
        return items

    def empty(self) -> bool:
        return not self._items


class Actor:
    """Subclasses implement `handle`; its return value is the reply to `ask`. Exceptions listed in
    `answered_errors` are part of the actor's answers (a storage failure, a refused name) and reach
    the caller as they are; any other exception is a bug: logged, and answered with ActorFailed."""

    answered_errors: tuple[type[Exception], ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self._mailbox = Mailbox()
        self._stopping = False
        self._busy = False  # a message is being handled in the actor's task
        self.finished = asyncio.Event()

    def tell(self, message: object) -> None:
        if self._stopping:
            raise ActorStopped(self.name)
        self._mailbox.put_nowait(_Envelope(message, None))

    async def ask(self, message: object) -> Any:
        if self._stopping:
            raise ActorStopped(self.name)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._mailbox.put_nowait(_Envelope(message, reply))
        return await reply

    def try_now(self, message: object) -> Any:
        """Handle `message` in the caller's task, or return NOT_NOW (then `ask`).

        Only when the actor is idle (nothing being handled, nothing queued) and `handle_now`
        completes the message without awaiting: that is exactly what the actor's task would do
        next, so order and one-at-a-time hold, and the two task switches of a round trip through
        the mailbox are saved on the hottest path. Errors are answered as `ask` answers them.
        """
        if self._busy or self._stopping or not self._mailbox.empty():
            return NOT_NOW
        try:
            return self.handle_now(message)
        except self.answered_errors:
            raise
        except Exception as exc:
            log.exception("actor %s failed on %s", self.name, type(message).__name__)
            raise ActorFailed(f"{self.name}: {type(exc).__name__}") from None

    def handle_now(self, message: object) -> Any:
        """The synchronous path of `handle`, for messages that need no wait; NOT_NOW otherwise."""
        return NOT_NOW

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def handle(self, message: object) -> Any:
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Called once after the last message, inside the actor's task."""

    def stop(self) -> None:
        """Refuse new messages, fail the queued ones, and end the task after the current one."""
        if self._stopping:
            return
        self._stopping = True
        while not self._mailbox.empty():
            envelope = self._mailbox.get_nowait()
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(ActorStopped(self.name))
        self._mailbox.put_nowait(_STOP)

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            try:
                await self.on_stop()
            finally:
                self.finished.set()

    async def _serve(self) -> None:
        while True:
            envelope = await self._mailbox.get()
            if envelope is _STOP:
                return
            await self._deliver(envelope)

    async def _deliver(self, envelope: _Envelope) -> None:
        self._busy = True
        try:
            result = await self.handle(envelope.message)
        except asyncio.CancelledError:
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(ActorStopped(self.name))
            raise
        except self.answered_errors as exc:
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(exc)
            return
        except Exception as exc:
            # Supervision: log with the actor's name, answer with an error, keep serving.
            log.exception("actor %s failed on %s", self.name, type(envelope.message).__name__)
            if envelope.reply is not None and not envelope.reply.done():
                envelope.reply.set_exception(ActorFailed(f"{self.name}: {type(exc).__name__}"))
            return
        finally:
            self._busy = False
        if envelope.reply is not None and not envelope.reply.done():
            envelope.reply.set_result(result)


@dataclass(frozen=True, slots=True)
class Failed:
    """A batch's answer to one message that failed: its `ask` raises `error`."""

    error: Exception


class BatchingActor(Actor):
    """Handles everything waiting in its mailbox as one batch (`handle_batch`), so the work of many
    messages can share one costly step (one write and one fdatasync for many events). Stopping
    refuses new messages but does not fail the queued ones: they are handled in the last batch."""

    async def handle_batch(self, messages: list[object]) -> list[Any]:
        """One answer per message, in order: the reply to its `ask`, or `Failed(error)`. If this
        raises, every `ask` of the batch is answered with ActorFailed (or the error, when it is one
        of `answered_errors`): settle first whatever the messages carry themselves (their futures)."""
        raise NotImplementedError

    def stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._mailbox.put_nowait(_STOP)

    async def _serve(self) -> None:
        # No helper coroutine: with one client each batch is one command, so every frame added
        # here is paid by every durable command (a coroutine per batch cost ~2k instructions).
        while True:
            batch = await self._mailbox.get_all()
            stop = batch[-1] is _STOP  # nothing can be queued after it
            if stop:
                batch.pop()
            if batch:
                self._busy = True
                try:
                    _answer(batch, await self.handle_batch(list(map(_message_of, batch))))
                except asyncio.CancelledError:
                    _fail(batch, ActorStopped(self.name))
                    raise
                except self.answered_errors as exc:
                    _fail(batch, exc)
                except Exception as exc:
                    log.exception("actor %s failed on a batch of %d message(s)", self.name, len(batch))
                    _fail(batch, ActorFailed(f"{self.name}: {type(exc).__name__}"))
                finally:
                    self._busy = False
            if stop:
                return


_message_of = attrgetter("message")


def _answer(batch: list[_Envelope], answers: list[Any]) -> None:
    for envelope, answer in zip(batch, answers):  # not strict=True: it costs ~1.5k instructions a batch
        reply = envelope.reply
        if reply is not None and not reply.done():
            if isinstance(answer, Failed):
                reply.set_exception(answer.error)
            else:
                reply.set_result(answer)


def _fail(batch: list[_Envelope], error: Exception) -> None:
    for envelope in batch:
        if envelope.reply is not None and not envelope.reply.done():
            envelope.reply.set_exception(error)


A = TypeVar("A", bound=Actor)


class ActorSystem:
    """Owns the TaskGroup of every long-lived task (actors, hubs' loops)."""

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._services: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._main = asyncio.create_task(self._own_tasks(), name="belay-task-group")
        await self._ready.wait()

    async def _own_tasks(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                self._ready.set()
                await self._closing.wait()
        except BaseException:
            log.exception("a long-lived task failed; the task group stopped")
            self._ready.set()
            raise
        finally:
            self._group = None

    def spawn(self, actor: A) -> A:
        self.create_task(actor.run(), name=actor.name)
        return actor

    def spawn_service(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """A loop that runs until the system closes (it is cancelled then)."""
        task = self.create_task(coro, name)
        self._services.add(task)
        task.add_done_callback(self._services.discard)
        return task

    def create_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
        if self._group is None:
            coro.close()
            raise ActorStopped("actor system is not running")
        return self._group.create_task(coro, name=name)

    async def close(self) -> None:
        """Cancel the service loops and wait for every owned task (stop the actors first)."""
        for task in list(self._services):
            task.cancel()
        self._closing.set()
        if self._main is not None:
            try:
                await self._main
            except BaseException:  # already logged in _own_tasks
                pass
