"""The fan-out queue's timing: slices, yielding to commands being served, and its bounds.

The targets stand in for sockets and advance a fake clock per write, so a slice's length is exact;
the event loop is the real one."""
from __future__ import annotations

import asyncio

from transport.ws.fanout_queue import FanoutQueue

WRITE_COST_S = 50e-6


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Target:
    def __init__(self, clock: Clock, log: list[tuple[int, bytes]], n: int) -> None:
        self.clock, self.log, self.n = clock, log, n

    def send(self, frame: bytes, *, key: object = None) -> None:
        self.clock.now += WRITE_COST_S
        self.log.append((self.n, frame))

    def send_pair(self, pair: bytes, first: bytes, second: bytes, second_key: object) -> None:
        self.send(pair)


class Broken(Target):
    def send(self, frame: bytes, *, key: object = None) -> None:
        raise RuntimeError("a bug in one socket's write")


def setup(count: int, **options: float) -> tuple[FanoutQueue, list[tuple[int, bytes]], tuple[Target, ...]]:
    clock, log = Clock(), []
    queue = FanoutQueue(clock=clock, **options)  # type: ignore[arg-type]
    return queue, log, tuple(Target(clock, log, n) for n in range(count))


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_writes_go_out_in_slices_with_loop_turns_between() -> None:
    queue, log, targets = setup(100, slice_s=0.0005)
    queue.deliver(targets, b"a")
    queue.deliver(targets[:3], b"b")
    await turns(2)
    first_slice = len(log)
    assert 0 < first_slice < 100  # 0.5 ms of 50 µs writes, the clock read every 8 writes: 16
    assert first_slice == 16
    await turns(40)
    assert log == [(n, b"a") for n in range(100)] + [(n, b"b") for n in range(3)]


async def test_writes_wait_for_the_command_being_served() -> None:
    queue, log, targets = setup(10, max_yield_s=5.0)
    with queue.serving_command():
        queue.deliver(targets, b"a")
        await turns(20)
        assert log == []  # the reply goes first
    await turns(2)
    assert log == [(n, b"a") for n in range(10)]


async def test_steps_run_in_order_when_the_command_is_done() -> None:
    queue, log, targets = setup(2, max_yield_s=5.0)
    with queue.serving_command():
        queue.step(lambda: queue.deliver(targets, b"first"))
        queue.deliver(targets[:1], b"direct")  # queued after the step, but written before what it decides
        queue.step(lambda: queue.deliver(targets, b"second"))
        await turns(10)
        assert log == []
    await turns(4)
    assert log == [(0, b"direct"), (0, b"first"), (1, b"first"), (0, b"second"), (1, b"second")]


async def test_waiting_for_commands_is_bounded() -> None:
    queue, log, targets = setup(10, max_yield_s=0.01)
    with queue.serving_command():
        queue.deliver(targets, b"a")
        await turns(10)
        assert log == []
        await asyncio.sleep(0.05)  # a command that takes long (a slow disk): the sockets go on
        assert log == [(n, b"a") for n in range(10)]
        queue.deliver(targets[:1], b"b")
        await turns(2)
        assert log[-1] == (0, b"b")  # the same slow command is not waited for twice
    with queue.serving_command():  # the next command gets its head start again
        queue.deliver(targets[:1], b"c")
        await turns(10)
        assert log[-1] == (0, b"b")
    await turns(2)
    assert log[-1] == (0, b"c")


async def test_a_flood_is_written_at_once_even_during_a_command() -> None:
    queue, log, targets = setup(100, slice_s=0.0005, max_yield_s=5.0, backlog_limit=150)
    with queue.serving_command():
        queue.deliver(targets, b"a")
        queue.deliver(targets, b"b")  # 200 writes queued, over the limit of 150
        await turns(2)
        assert len(log) == 200  # no slicing and no waiting: the commands now wait for the sockets


async def test_one_failing_socket_does_not_cost_the_others_their_frames() -> None:
    queue, log, targets = setup(3)
    broken = Broken(targets[0].clock, log, 99)
    queue.deliver((targets[0], broken, targets[2]), b"a")
    await turns(2)
    assert log == [(0, b"a"), (2, b"a")]


async def test_clear_drops_everything_queued() -> None:
    queue, log, targets = setup(5, max_yield_s=0.01)
    with queue.serving_command():
        queue.deliver(targets, b"a")
        await turns(4)
        queue.clear()
        await asyncio.sleep(0.03)
    await turns(4)
    assert log == []


async def test_every_command_served_is_counted_once_it_starts() -> None:
    queue = FanoutQueue()
    with queue.serving_command():
        assert (queue.commands_started, queue.commands_in_flight) == (1, 1)
        with queue.serving_command():
            assert (queue.commands_started, queue.commands_in_flight) == (2, 2)
    assert (queue.commands_started, queue.commands_in_flight) == (2, 0)  # started stays: the collector's clock
