"""One actor per competition box: serializes the box's commands and owns its state.

Order for each command: actionId retry check, session/version check, pure rules, persister
verdict, then broadcast and reply. Only one durable command is in flight per box, so echoes
leave in version order and a storage failure never has to undo later work. A command that
needs no disk wait is handled in the caller's task when the box is idle (`Actor.try_now`).
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from actors.codes import BOX_UNAVAILABLE, INVALID_COMMAND, RESTORE_ABORTED, RESTORE_REFUSED, STORAGE_UNAVAILABLE
from actors.events import encode_event, encode_restore
from actors.messages import (
    Clock,
    DoubtSettled,
    Execute,
    Fanout,
    Reply,
    Republish,
    RestoreBox,
    RideAlongFailed,
    TimerFired,
)
from actors.persister import GroupAborted, Persister
from actors.rules import (
    NO_DISK_WAIT,
    CommandError,
    Outcome,
    apply_command,
    build_public_box,
    build_snapshot,
    check_freshness,
    default_state,
    is_duplicate_action,
    needs_new_session,
    running_deadline_ms,
)
from actors.rules.snapshot import score_count
from actors.rules.valid_state import InvalidState
from actors.runtime import NOT_NOW, Actor
from persistence.errors import CommitUnknown
from persistence.storage import StorageError

log = logging.getLogger("belay.box")

# What starts an unavailable box over, and who may: the control panel's own ways to begin anew.
STARTS_OVER = frozenset({"RESET_BOX", "INIT_ROUTE"})
STARTS_OVER_ROLE = "admin"
# Why a box answers box_unavailable while the outcome of its last write is unknown.
IN_DOUBT = "the database has not said yet whether its last write committed"


@dataclass(frozen=True, slots=True)
class _Change:
    """What a command does to the box, decided by the rules but not yet logged."""

    message: Execute
    outcome: Outcome
    now_ms: int


class BoxActor(Actor):
    def __init__(self, box_id: int, state: dict[str, Any], seq: int, *, persister: Persister,
                 fanout: Fanout, clock: Clock, officials: Callable[[], Mapping[str, str]],
                 unavailable: str | None = None) -> None:
        super().__init__(f"box-{box_id}")
        self.box_id = box_id
        self.state = state  # the latest state; never mutated, only replaced
        self.seq = seq  # number of the last event of this box handed to the persister
        # Why the box's history cannot rebuild it, until a restore or an admin starts it over.
        # Meanwhile `state` only holds the last logged boxVersion, and nothing is ever shown.
        self.unavailable = unavailable
        self._persister = persister
        self._fanout = fanout
        self._clock = clock
        self._officials = officials
        # Events answered before they were durable (TIMER_SYNC): (verdict, seq before, state before,
        # seq after, state after).
        self._riding: list[tuple[asyncio.Future[None], int, dict[str, Any], int, dict[str, Any]]] = []
        # While an event's COMMIT outcome is unknown: the box's `unavailable` before it (a 1-tuple).
        self._doubt: tuple[str | None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- reading ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return build_snapshot(self.state, self.box_id, self._clock.now_ms(), self._officials())

    # -- messages --------------------------------------------------------------------------------

    async def handle(self, message: object) -> Any:
        if isinstance(message, Execute):
            return await self._execute(message)
        if isinstance(message, TimerFired):
            return self._timer_fired(message.deadline_ms)
        if isinstance(message, RideAlongFailed):
            return await self._settle_riding()
        if isinstance(message, RestoreBox):
            return await self._restore(message)
        if isinstance(message, Republish):
            return self._publish(None, True, "BOX_STATUS_UPDATE")
        if isinstance(message, DoubtSettled):
            return self._leave_doubt(message)
        raise TypeError(f"unexpected message {message!r}")

    def handle_now(self, message: object) -> Any:
        """A command that needs no wait for the disk, run in the caller's task (see `try_now`)."""
        if (not isinstance(message, Execute) or message.command.type not in NO_DISK_WAIT
                or not self._riding_settled()):
            return NOT_NOW
        if self.unavailable is not None:
            return Reply.error(BOX_UNAVAILABLE)
        change = self._decide(message)
        if isinstance(change, Reply):
            return change
        if change.outcome.durable:  # not for these types; if the rules ever change, still safe
            return NOT_NOW
        return self._ride_along(change)

    async def _execute(self, message: Execute) -> Reply:
        await self._settle_riding()
        if self.unavailable is not None:
            return await self._start_over(message)
        change = self._decide(message)
        if isinstance(change, Reply):
            return change
        if not change.outcome.durable:
            return self._ride_along(change)
        seq, line = self._event(change)
        try:
            await self._persister.append(self.box_id, seq, line, change.outcome.state)
        except CommitUnknown as unknown:
            return self._enter_doubt(unknown, seq, change.outcome.state)
        except StorageError:
            return Reply.error(STORAGE_UNAVAILABLE)
        self._warn_if_scores_replaced(message, change.outcome.state)
        return self._advance(seq, change.outcome)

    async def _start_over(self, message: Execute) -> Reply:
        """An unavailable box answers nothing but an admin's RESET_BOX or INIT_ROUTE, which begins
        a new session above the last version its log holds. Its event carries the whole state,
        so it replays without the unusable history before it."""
        cmd = message.command
        if cmd.type not in STARTS_OVER or message.origin.role != STARTS_OVER_ROLE or self._doubt is not None:
            return Reply.error(BOX_UNAVAILABLE)
        base = {**default_state(str(uuid.uuid4())), "boxVersion": self.state["boxVersion"]}
        now_ms = self._clock.now_ms()
        try:
            outcome = apply_command(base, cmd, now_ms, str(uuid.uuid4()))
        except CommandError as exc:
            return Reply.error(INVALID_COMMAND, exc.detail)
        seq = self.seq + 1
        line = encode_event(box_id=self.box_id, seq=seq, command=cmd, before=base, after=outcome.state,
                            now_ms=now_ms, origin=message.origin, echo=outcome.echo, self_contained=True)
        try:
            await self._persister.append(self.box_id, seq, line, outcome.state)
        except CommitUnknown as unknown:
            return self._enter_doubt(unknown, seq, outcome.state)
        except StorageError:
            return Reply.error(STORAGE_UNAVAILABLE)
        log.warning("box %d started over by %s with %s at version %d (its earlier history could not rebuild it)",
                    self.box_id, message.origin.username, cmd.type, outcome.state["boxVersion"])
        self.unavailable = None
        return self._advance(seq, outcome)

    def _warn_if_scores_replaced(self, message: Execute, after: dict[str, Any]) -> None:
        """The control panel keeps its box list in the browser: a second one can initiate another
        category on a box full of scores. The log keeps them (see history and rollback)."""
        cmd, before = message.command, self.state
        if cmd.type != "INIT_ROUTE" or cmd.session_id is not None:
            return
        had, kept = score_count(before), score_count(after)
        if had and (kept < had or after["categorie"] != before["categorie"]):
            log.warning("box %d: INIT_ROUTE without a sessionId from %s (%s) replaced %r with %d score(s) "
                        "by %r; version %d still holds them (history and rollback: see the README)",
                        self.box_id, message.origin.username, message.origin.ip, before["categorie"], had,
                        after["categorie"], before["boxVersion"])

    def _decide(self, message: Execute) -> Reply | _Change:
        """The reply of a command that changes nothing, or the change it makes. No I/O, and
        nothing is sent unless the reply is final."""
        cmd = message.command
        state = self.state
        if cmd.action_id is not None and is_duplicate_action(state, cmd.action_id):
            return Reply.ok()
        stale = check_freshness(state, cmd)
        if stale is not None:
            return Reply.ignored(stale)
        if cmd.type == "REQUEST_STATE":
            return Reply({"status": "ok", "snapshot": self.snapshot()})
        now_ms = self._clock.now_ms()
        try:
            new_session = str(uuid.uuid4()) if needs_new_session(cmd) else ""
            outcome = apply_command(state, cmd, now_ms, new_session)
        except CommandError as exc:
            return Reply.error(INVALID_COMMAND, exc.detail)
        if not outcome.changed:
            if outcome.echo is not None:  # relays and a TIMER_SYNC of a running clock
                self._publish(outcome.echo, False, None)
            return Reply.ok()
        return _Change(message, outcome, now_ms)

    def _event(self, change: _Change) -> tuple[int, bytes]:
        seq = self.seq + 1
        return seq, encode_event(box_id=self.box_id, seq=seq, command=change.message.command,
                                 before=self.state, after=change.outcome.state, now_ms=change.now_ms,
                                 origin=change.message.origin, echo=change.outcome.echo)

    def _ride_along(self, change: _Change) -> Reply:
        """Answered before it is durable: it joins the next batch; a failure rolls the box back."""
        seq, line = self._event(change)
        verdict = self._persister.append(self.box_id, seq, line, change.outcome.state)
        self._riding.append((verdict, self.seq, self.state, seq, change.outcome.state))
        verdict.add_done_callback(self._on_riding_done)
        return self._advance(seq, change.outcome)

    def _advance(self, seq: int, outcome: Outcome) -> Reply:
        self.seq = seq
        self.state = outcome.state
        self._publish(outcome.echo, outcome.snapshot, outcome.public)
        self.arm_timer()
        return Reply.ok()

    async def _restore(self, message: RestoreBox) -> Reply:
        await self._settle_riding()
        if self._doubt is not None:
            return Reply.error(BOX_UNAVAILABLE)
        seq = self.seq + 1
        try:
            state, line = encode_restore(box_id=self.box_id, seq=seq, live_version=self.state["boxVersion"],
                                         message=message, now_ms=self._clock.now_ms(),
                                         new_session_id=str(uuid.uuid4()))
        except InvalidState as exc:  # e.g. a live version so high that one more leaves the range a client counts
            return Reply.error(RESTORE_REFUSED, f"box {self.box_id} cannot be restored: {exc}")
        commit = self._persister.append if message.group is None else message.group.join
        try:
            await commit(self.box_id, seq, line, state)
        except CommitUnknown as unknown:
            return self._enter_doubt(unknown, seq, state)
        except StorageError:
            return Reply.error(STORAGE_UNAVAILABLE)
        except GroupAborted:
            return Reply.error(RESTORE_ABORTED)
        self.seq, self.state, self.unavailable = seq, state, None
        self._publish(None, True, "BOX_STATUS_UPDATE")
        self.arm_timer()
        return Reply({"boxId": self.box_id, "boxVersion": state["boxVersion"], "sessionId": state["sessionId"]})

    def _enter_doubt(self, unknown: CommitUnknown, seq: int, state: dict[str, Any]) -> Reply:
        """The event's COMMIT got no answer: the box takes nothing until the database says whether
        it committed (then `_leave_doubt`); its seq may be taken, so nothing may follow it yet."""
        self._doubt = (self.unavailable,)
        self.unavailable = IN_DOUBT
        log.error("box %d: unavailable until the database says whether event %d committed", self.box_id, seq)

        def settled(outcome: asyncio.Future[bool]) -> None:
            committed = not outcome.cancelled() and outcome.exception() is None and outcome.result()
            if not self.stopping:
                self.tell(DoubtSettled(committed, seq, state))

        unknown.settled.add_done_callback(settled)
        return Reply.error(STORAGE_UNAVAILABLE)

    def _leave_doubt(self, message: DoubtSettled) -> None:
        """A committed event is applied and broadcast as it would have been; otherwise the box
        goes on from where it was."""
        before, self._doubt = self._doubt, None
        self.unavailable = before[0] if before is not None and not message.committed else None
        if message.committed:
            self.seq, self.state = message.seq, message.state
            self._persister.remember([(self.box_id, message.seq, message.state)])
        log.warning("box %d: event %d %s", self.box_id, message.seq,
                    "committed after all" if message.committed else "did not commit")
        self._publish(None, True, "BOX_STATUS_UPDATE")
        self.arm_timer()

    def _on_riding_done(self, verdict: asyncio.Future[None]) -> None:
        if verdict.exception() is not None and not self.stopping:
            self.tell(RideAlongFailed())

    def _riding_settled(self) -> bool:
        """True when every early-answered event is durable (then they are forgotten)."""
        if not self._riding:
            return True
        if any(not verdict.done() or verdict.exception() is not None for verdict, *_ in self._riding):
            return False
        self._riding.clear()
        return True

    async def _settle_riding(self) -> None:
        """Wait for early-answered events; if one failed, go back to the last durable state."""
        if not self._riding:
            return
        riding, self._riding = self._riding, []
        for verdict, seq_before, state_before, seq_after, state_after in riding:
            try:
                await verdict
            except StorageError as exc:
                # Later events of this box were in the same or a later batch: none committed.
                log.warning("box %d: early-answered event failed; back to version %s",
                            self.box_id, state_before.get("boxVersion"))
                self.seq, self.state = seq_before, state_before
                self._publish(None, True, "BOX_FLOW_UPDATE")
                self.arm_timer()
                if isinstance(exc, CommitUnknown):
                    self._enter_doubt(exc, seq_after, state_after)
                return

    # -- timer -----------------------------------------------------------------------------------

    def arm_timer(self) -> None:
        """At the deadline of a running clock, subscribers get a snapshot showing 0 s left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = running_deadline_ms(self.state)
        if deadline is None:
            return
        delay = max(0.0, (deadline - self._clock.now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._timer_due, deadline)

    def _timer_due(self, deadline: int) -> None:
        self._timer = None
        if not self.stopping:
            self.tell(TimerFired(deadline))

    def _timer_fired(self, deadline: int) -> None:
        if running_deadline_ms(self.state) != deadline:
            return  # the clock was stopped or re-anchored since
        if self._clock.now_ms() < deadline:  # the wall clock moved back; wait again
            self.arm_timer()
            return
        self._publish(None, True, "BOX_FLOW_UPDATE")

    # -- fan-out ---------------------------------------------------------------------------------

    def _publish(self, echo: dict[str, Any] | None, snapshot: bool, public_kind: str | None) -> None:
        """Views are built lazily: the hub builds only those some subscriber will receive."""
        if self.unavailable is not None:
            return  # there is no state to show
        state, box_id, now_ms = self.state, self.box_id, self._clock.now_ms()
        self._fanout.box_changed(
            box_id,
            echo=echo,
            snapshot=partial(build_snapshot, state, box_id, now_ms, self._officials()),
            snapshot_to_box=snapshot,
            public_kind=public_kind,
            public_box=partial(build_public_box, state, box_id, now_ms) if public_kind else None,
        )

    async def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
