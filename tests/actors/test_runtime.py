"""The actor runtime: ordering, ask/tell, try_now, orderly stop and supervision."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.runtime import NOT_NOW, Actor, ActorFailed, ActorStopped, ActorSystem, BatchingActor, Failed


class Recorder(Actor):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.seen: list[Any] = []
        self.total = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()  # set once handle() has started on a message

    async def handle(self, message: object) -> Any:
        self.entered.set()
        await self.gate.wait()
        if message == "boom":
            raise RuntimeError("handler bug")
        self.seen.append(message)
        self.total += message if isinstance(message, int) else 0
        return self.total

    def handle_now(self, message: object) -> Any:
        """Strings other than "boom" need the gate (a wait); "now-boom" is a synchronous bug."""
        if message == "now-boom":
            raise RuntimeError("synchronous handler bug")
        if not isinstance(message, int):
            return NOT_NOW
        self.seen.append(message)
        self.total += message
        return self.total


@pytest.fixture
async def system():
    actors = ActorSystem()
    await actors.start()
    yield actors
    await actors.close()


async def test_messages_are_handled_one_at_a_time_in_order(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    for n in range(1, 6):
        actor.tell(n)
    assert await actor.ask(10) == 25
    assert actor.seen == [1, 2, 3, 4, 5, 10]
    actor.stop()
    await actor.finished.wait()


async def test_a_failing_handler_answers_an_error_and_the_actor_keeps_serving(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    assert await actor.ask(2) == 2
    with pytest.raises(ActorFailed):
        await actor.ask("boom")
    assert await actor.ask(3) == 5
    actor.stop()
    await actor.finished.wait()


async def test_stop_fails_every_pending_ask_at_once(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    actor.gate.clear()
    in_flight = asyncio.create_task(actor.ask(1))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(actor.ask(n)) for n in range(2, 5)]
    await asyncio.sleep(0)
    actor.stop()
    for task in queued:
        with pytest.raises(ActorStopped):
            await asyncio.wait_for(task, 1)
    actor.gate.set()
    assert await asyncio.wait_for(in_flight, 1) == 1  # the message being handled finishes
    await actor.finished.wait()
    with pytest.raises(ActorStopped):
        await actor.ask(9)
    with pytest.raises(ActorStopped):
        actor.tell(9)


async def test_try_now_handles_in_the_callers_task_when_the_actor_is_idle(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    actor.gate.clear()  # the actor's own task would block: only the caller can have handled it
    assert actor.try_now(4) == 4
    assert actor.seen == [4]
    assert actor.try_now("needs a wait") is NOT_NOW
    assert actor.seen == [4]
    actor.gate.set()
    assert await actor.ask("needs a wait") == 4
    actor.stop()
    await actor.finished.wait()


async def test_try_now_never_overtakes_a_message_being_handled_or_queued(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    actor.gate.clear()
    in_flight = asyncio.create_task(actor.ask(1))
    await asyncio.wait_for(actor.entered.wait(), 1)  # inside handle(1), at the gate; mailbox empty
    assert actor.try_now(2) is NOT_NOW
    queued = asyncio.create_task(actor.ask(3))
    await asyncio.sleep(0)
    assert actor.try_now(4) is NOT_NOW
    actor.gate.set()
    assert await asyncio.wait_for(in_flight, 1) == 1
    assert await asyncio.wait_for(queued, 1) == 4
    assert actor.try_now(5) == 9  # idle again
    assert actor.seen == [1, 3, 5]
    actor.tell(6)  # told, not yet handled: still in the mailbox
    assert actor.try_now(7) is NOT_NOW
    assert await actor.ask(0) == 15
    assert actor.seen == [1, 3, 5, 6, 0]
    actor.stop()
    await actor.finished.wait()


async def test_try_now_answers_a_bug_like_ask_and_refuses_once_stopping(system: ActorSystem) -> None:
    actor = system.spawn(Recorder())
    with pytest.raises(ActorFailed):
        actor.try_now("now-boom")
    assert actor.try_now(2) == 2  # still serving
    actor.stop()
    assert actor.try_now(3) is NOT_NOW
    await actor.finished.wait()
    assert actor.try_now(4) is NOT_NOW
    assert actor.seen == [2]


async def test_services_are_cancelled_when_the_system_closes() -> None:
    system = ActorSystem()
    await system.start()
    ticks = 0

    async def loop() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = system.spawn_service(loop(), "ticker")
    await asyncio.sleep(0.05)
    await asyncio.wait_for(system.close(), 2)
    assert task.cancelled() and ticks > 0


class Batcher(BatchingActor):
    """Sums each batch; a negative number fails alone, "boom" fails the whole batch."""

    def __init__(self) -> None:
        super().__init__("batcher")
        self.batches: list[list[object]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    async def handle_batch(self, messages: list[object]) -> list[Any]:
        self.entered.set()
        await self.gate.wait()
        self.batches.append(messages)
        if "boom" in messages:
            raise RuntimeError("batch bug")
        total = sum(m for m in messages if isinstance(m, int) and m >= 0)
        return [Failed(ValueError(m)) if isinstance(m, int) and m < 0 else total for m in messages]


async def test_spawn_returns_the_actor_it_was_given(system: ActorSystem) -> None:
    actor = Batcher()
    assert system.spawn(actor) is actor
    actor.stop()
    await actor.finished.wait()


async def test_a_batching_actor_takes_everything_waiting_as_one_batch(system: ActorSystem) -> None:
    actor = system.spawn(Batcher())
    actor.gate.clear()
    first = asyncio.create_task(actor.ask(1))
    await asyncio.wait_for(actor.entered.wait(), 1)  # busy with [1]; the next ones wait together
    actor.tell(2)
    waiting = [asyncio.create_task(actor.ask(n)) for n in (3, 4)]
    await asyncio.sleep(0)
    actor.gate.set()
    assert await first == 1
    assert await asyncio.gather(*waiting) == [9, 9]  # each ask answered from its own batch's answers
    assert actor.batches == [[1], [2, 3, 4]]
    actor.stop()
    await actor.finished.wait()


async def test_a_batch_answer_can_fail_one_ask_and_not_the_others(system: ActorSystem) -> None:
    actor = system.spawn(Batcher())
    actor.gate.clear()
    blocker = asyncio.create_task(actor.ask(0))
    await asyncio.wait_for(actor.entered.wait(), 1)
    good, bad = asyncio.create_task(actor.ask(5)), asyncio.create_task(actor.ask(-1))
    await asyncio.sleep(0)
    actor.gate.set()
    await blocker
    assert await good == 5
    with pytest.raises(ValueError):
        await bad
    actor.stop()
    await actor.finished.wait()


async def test_a_failing_batch_answers_each_ask_with_an_error_and_the_actor_keeps_serving(system: ActorSystem) -> None:
    actor = system.spawn(Batcher())
    actor.gate.clear()
    blocker = asyncio.create_task(actor.ask(0))
    await asyncio.wait_for(actor.entered.wait(), 1)
    doomed = [asyncio.create_task(actor.ask(m)) for m in (7, "boom")]
    await asyncio.sleep(0)
    actor.gate.set()
    await blocker
    for task in doomed:
        with pytest.raises(ActorFailed):
            await task
    assert await actor.ask(3) == 3
    actor.stop()
    await actor.finished.wait()


async def test_stopping_a_batching_actor_still_handles_what_was_queued(system: ActorSystem) -> None:
    actor = system.spawn(Batcher())
    actor.gate.clear()
    in_flight = asyncio.create_task(actor.ask(1))
    await asyncio.wait_for(actor.entered.wait(), 1)
    queued = [asyncio.create_task(actor.ask(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    actor.stop()
    with pytest.raises(ActorStopped):
        actor.tell(4)
    actor.gate.set()
    assert await in_flight == 1
    assert await asyncio.gather(*queued) == [5, 5]  # unlike a plain actor's queue, not failed
    await asyncio.wait_for(actor.finished.wait(), 1)
    assert actor.batches == [[1], [2, 3]]
