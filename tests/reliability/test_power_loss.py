"""Power cut after every single file-system call of a scripted session: nothing acknowledged is lost.

One run of the scenario through `PowerLossFileSystem` records, after every point (write, fsync,
fdatasync, truncate, rename, link, unlink, directory fsync), what would survive a cut right then.
For every point k the survivors are materialised ("drop": unsynced bytes gone; "torn": a random
part of them kept, maybe with garbage), a fresh app (plain FileSystem) starts on them, and the
check is: every command acknowledged before the cut is in the restored state, each box state is
exactly one the reference run went through, the log ends at a committed line and every line
parses, every checkpoint parses, no (box, seq) twice. Restarts are shared between points whose
survivors are byte-identical (the check itself runs for every point).

Teeth: the same sweep over deliberately broken durability (directory fsyncs or data syncs not
counted, or the log created without a directory fsync) must find a loss.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from actors.accounts import setup as accounts_setup
from actors.accounts.records import EPOCH
from persistence.fs import FileSystem
from persistence.json import wal as wal_module
from tests.conftest import make_config, serving
from tests.reliability.figures import record
from tests.reliability.power_fs import PowerLossFileSystem, tree_digest
from tests.transport.test_live_protocol import command, init_route, post, state
from transport.app import create_app
from transport.keys import ACCOUNTS, TOKENS

BOXES = (0, 1)
# Every point is cut in "drop" mode; "torn" mode (a random part of the unsynced tail kept) every
# TORN_STRIDE-th point by default, every point with BELAY_POWER_FULL=1.
FULL = os.environ.get("BELAY_POWER_FULL", "") not in ("", "0")
TORN_STRIDE = 1  # cheap enough now; raise it if the scenario grows
OFFICIALS = {"judgeChief": "Ion Pop", "competitionDirector": "Ana Dan", "chiefRoutesetter": "Dan Ilie"}
# Officials are part of every snapshot but are checked on their own (they are not box state).
OFFICIAL_KEYS = set(OFFICIALS)
IGNORED = {"remaining"}  # nothing in the scenario runs a clock, but keep the comparison robust


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items()
            if k not in OFFICIAL_KEYS and (k not in IGNORED or snapshot.get("timerState") != "running")}


@dataclass
class Ack:
    kind: str            # "box" (durable command), "officials", "judge"
    point: int           # the double's point count when the reply arrived: its sync came before
    box: int | None = None
    version: int | None = None
    value: Any = None


@dataclass
class Reference:
    acks: list[Ack] = field(default_factory=list)
    snapshots: dict[int, dict[int, list[dict[str, Any]]]] = field(default_factory=dict)  # box -> version -> states
    commands: int = 0

    def saw(self, box: int, snapshot: dict[str, Any]) -> None:
        self.snapshots.setdefault(box, {}).setdefault(snapshot["boxVersion"], []).append(comparable(snapshot))


async def run_scenario(data: Path, fs: PowerLossFileSystem, *, backup: bool = True) -> Reference:
    """INIT two boxes, progress, scores, a TIMER_SYNC on a paused clock, officials, a judge password,
    log rotations (tiny max_audit_file_mb), a backup; one command at a time."""
    ref = Reference()
    config = make_config(data, checkpoint_interval_s=0.02, max_audit_file_mb=0.006)
    async with serving(create_app(config, fs=fs)) as client:
        for box in BOXES:
            ref.saw(box, await state(client, box))

        async def box_cmd(box: int, kind: str, durable: bool = True, **fields: Any) -> None:
            if kind == "INIT_ROUTE":
                status, body = await post(client, init_route(box, **fields))
            else:
                status, body = await command(client, box, kind, **fields)
            point = fs.points
            assert (status, body) == (200, {"status": "ok"}), (kind, status, body)
            ref.commands += 1
            snap = await state(client, box)
            ref.saw(box, snap)
            if durable:
                ref.acks.append(Ack("box", point, box, snap["boxVersion"]))

        for box in BOXES:
            await box_cmd(box, "INIT_ROUTE")
        for n in range(3):
            await box_cmd(0, "PROGRESS_UPDATE", delta=1)
            await box_cmd(1, "PROGRESS_UPDATE", delta=1 if n else 0.1)
        await box_cmd(0, "SUBMIT_SCORE", competitor="Ana Pop", score=3.0, registeredTime=61.5)
        await box_cmd(1, "TIMER_SYNC", durable=False, remaining=200)  # paused clock: rides along
        await box_cmd(1, "PROGRESS_UPDATE", delta=1)
        response = await client.post("/api/admin/competition_officials", json=OFFICIALS)
        assert response.status == 200, await response.text()
        ref.acks.append(Ack("officials", fs.points, value=OFFICIALS))
        response = await client.post("/api/admin/auth/boxes/0/password", json={"password": "judge-0-pass",
                                                                               "username": "judge0"})
        assert response.status == 200, await response.text()
        ref.acks.append(Ack("judge", fs.points, box=0, value="judge0"))
        for n in range(8):  # several rotations at 6 KiB
            await box_cmd(n % 2, "PROGRESS_UPDATE", delta=1)
        await box_cmd(1, "SUBMIT_SCORE", competitor="Bogdan Ionescu", score=5.0, registeredTime=70.0)
        if backup:
            response = await client.post("/api/admin/ops/backup/now")
            assert response.status == 200, await response.text()
        for box in BOXES:
            await box_cmd(box, "PROGRESS_UPDATE", delta=1)
        await box_cmd(0, "INIT_ROUTE", routeIndex=2, holdsCount=25)
        await box_cmd(0, "PROGRESS_UPDATE", delta=1)
    assert not fs.mismatches, fs.mismatches[:3]
    return ref


@dataclass
class Restored:
    boxes: dict[int, dict[str, Any]]
    officials: dict[str, Any]
    users: dict[str, Any]
    problems: list[str]


def read_log_files(data: Path, problems: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in [*sorted(data.glob("events.*.ndjson")), data / "events.ndjson"]:
        if not path.exists():
            continue
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            problems.append(f"{path.name} does not end at a line")
        for n, line in enumerate(raw.splitlines()):
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                problems.append(f"{path.name} line {n + 1} does not parse")
    return events


async def restart(data: Path) -> Restored:
    """A fresh app (normal FileSystem) on the survivors; then the files it leaves are inspected."""
    problems: list[str] = []
    async with serving(create_app(make_config(data)), as_admin=False) as client:
        # Minted, not logged in: the survivors' admin has the fast fake hash of `sweep` (or a real one).
        app = client.server.app
        admin = app[ACCOUNTS].users["admin"]
        token = app[TOKENS].issue("admin", "admin", [], uid="admin", ep=admin.get(EPOCH) or "")
        headers = {"Authorization": f"Bearer {token}"}
        boxes = {}
        for box in BOXES:
            response = await client.get(f"/api/state/{box}", headers=headers)
            assert response.status == 200
            boxes[box] = await response.json()
        response = await client.get("/api/admin/competition_officials", headers=headers)
        officials = await response.json()
    events = read_log_files(data, problems)
    pairs = [(e.get("boxId"), e.get("seq")) for e in events if "seq" in e]
    if len(pairs) != len(set(pairs)):
        problems.append("a (box, seq) pair appears twice in the log")
    for checkpoint in (data / "boxes").glob("*.json"):
        try:
            orjson.loads(checkpoint.read_bytes())
        except orjson.JSONDecodeError:
            problems.append(f"checkpoint {checkpoint.name} does not parse")
    users_path = data / "users.json"
    users = orjson.loads(users_path.read_bytes()) if users_path.exists() else {}
    return Restored(boxes, officials, users, problems)


def losses(ref: Reference, k: int, restored: Restored) -> list[str]:
    """What the restored state lacks of what was acknowledged at or before point k."""
    found = list(restored.problems)
    for box in BOXES:
        live = restored.boxes[box]
        version = live["boxVersion"]
        acked = max((a.version for a in ref.acks if a.kind == "box" and a.box == box and a.point <= k), default=0)
        if version < acked:
            found.append(f"box {box}: restored version {version} < acknowledged {acked}")
        elif version == 0:
            if live.get("initiated"):
                found.append(f"box {box}: initiated at version 0")
        elif comparable(live) not in ref.snapshots.get(box, {}).get(version, []):
            found.append(f"box {box}: restored state at version {version} is none the server acknowledged")
    for ack in ref.acks:
        if ack.point > k:
            continue
        if ack.kind == "officials" and any(restored.officials.get(key) != v for key, v in ack.value.items()):
            found.append("acknowledged officials lost")
        if ack.kind == "judge" and ack.value not in restored.users:
            found.append("acknowledged judge password lost")
    return found


async def sweep(ref: Reference, fs: PowerLossFileSystem, work: Path, modes: tuple[str, ...], *,
                stop_at_first_loss: bool = False) -> dict[str, Any]:
    """Cut after every point, restart once per distinct survivor tree, check every point."""
    cache: dict[str, Restored] = {}
    failures: list[tuple[str, int, list[str]]] = []
    checked = restarts = 0
    # Restarts need no real password hashing (a survivor without users.json makes its admin: ~50 ms each).
    patch = pytest.MonkeyPatch()
    patch.setattr(accounts_setup, "hash_password", lambda password: "$fast$" + password)
    try:
        for mode in modes:
            for k in range(0, fs.points + 1, 1 if mode == "drop" or FULL else TORN_STRIDE):
                dest = fs.cut_power(mode, work / f"{mode}-{k}", at=k)
                digest = tree_digest(dest)
                if digest not in cache:
                    cache[digest] = await restart(dest)
                    restarts += 1
                lost = losses(ref, k, cache[digest])
                checked += 1
                if lost:
                    failures.append((mode, k, lost))
                    if stop_at_first_loss:
                        return {"checked": checked, "restarts": restarts, "failures": failures}
    finally:
        patch.undo()
    return {"checked": checked, "restarts": restarts, "failures": failures}


def acked_counts(ref: Reference) -> int:
    return len(ref.acks)


async def test_power_cut_after_every_point_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    fs = PowerLossFileSystem(data, seed=int(os.environ.get("BELAY_POWER_SEED", "7")))
    ref = await run_scenario(data, fs)
    assert len(list(data.glob("events.*.ndjson"))) >= 1, "the scenario must rotate the log"
    ops = {info.op for info in fs.history}
    assert {"fdatasync", "fsync", "replace", "fsync_dir", "write_all", "link"} <= ops, ops
    result = await sweep(ref, fs, tmp_path / "cuts", ("drop", "torn"))
    record("power_loss", points=fs.points + 1, cuts_checked=result["checked"], restarts=result["restarts"],
           acknowledged=acked_counts(ref), commands=ref.commands, lost=len(result["failures"]))
    assert not result["failures"], result["failures"][:5]


async def _broken_run(tmp_path: Path, **double: Any) -> dict[str, Any]:
    data = tmp_path / "data"
    data.mkdir()
    fs = PowerLossFileSystem(data, seed=1, **double)
    ref = await run_scenario(data, fs, backup=False)
    return await sweep(ref, fs, tmp_path / "cuts", ("drop",), stop_at_first_loss=True)


async def test_teeth_directory_fsync_not_counted_is_caught(tmp_path: Path) -> None:
    result = await _broken_run(tmp_path, sync_dirs=False)
    record("power_loss_teeth", variant="no_dir_fsync", detected=bool(result["failures"]),
           first=result["failures"][0][1] if result["failures"] else None)
    assert result["failures"], "a checker that cannot see a missing directory fsync has no teeth"


async def test_teeth_ack_before_fdatasync_is_caught(tmp_path: Path) -> None:
    result = await _broken_run(tmp_path, sync_data=False)
    record("power_loss_teeth", variant="no_fdatasync", detected=bool(result["failures"]),
           first=result["failures"][0][1] if result["failures"] else None)
    assert result["failures"], "a checker that cannot see an unsynced acknowledged line has no teeth"


async def test_teeth_log_created_without_directory_fsync_is_caught(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the WAL forgets the directory fsync of a new events.ndjson (e.g. right after rotation)."""
    def open_log_without_dir_fsync(self: wal_module.WriteAheadLog) -> int:
        return self._fs.open(self.path, wal_module._APPEND_FLAGS)

    monkeypatch.setattr(wal_module.WriteAheadLog, "_open_log", open_log_without_dir_fsync)
    result = await _broken_run(tmp_path)
    record("power_loss_teeth", variant="wal_no_dir_fsync_on_create", detected=bool(result["failures"]),
           first=result["failures"][0][1] if result["failures"] else None)
    assert result["failures"], "a log created without a directory fsync must be caught"


async def test_a_real_cut_mid_run_matches_the_recorded_survivors(tmp_path: Path) -> None:
    """The double really stops the disk at point k+1 (PowerCut): the server answers 503 from then
    on, and what it acknowledged before survives."""
    probe = tmp_path / "probe"
    probe.mkdir()
    fs = PowerLossFileSystem(probe)
    await run_scenario(probe, fs, backup=False)
    total = fs.points
    checked = 0
    for n, k in enumerate((total // 3, (2 * total) // 3)):
        data = tmp_path / f"data-{n}"
        data.mkdir()
        cut_fs = PowerLossFileSystem(data, seed=n, cut_after=k)
        acked: list[tuple[int, int]] = []
        async with serving(create_app(make_config(data, checkpoint_interval_s=0.02), fs=cut_fs)) as client:
            for box in BOXES:
                await post(client, init_route(box))
            for i in range(40):
                status, _ = await command(client, i % 2, "PROGRESS_UPDATE", delta=1)
                if status == 200:
                    acked.append((i % 2, (await state(client, i % 2))["boxVersion"]))
                else:
                    assert status == 503
            # Power back on only so the app can shut down; the survivors stay those of the cut.
            cut_fs.restore_power()
        assert cut_fs.cut
        restored = await restart(cut_fs.cut_power("torn", tmp_path / f"cut-{n}"))
        assert not restored.problems, restored.problems
        for box, version in acked:
            assert restored.boxes[box]["boxVersion"] >= version
        checked += len(acked)
    record("power_loss_real_cut", cuts=2, acknowledged_checked=checked, lost=0)


def test_torn_tail_with_garbage_spanning_two_lines_is_cut_completely(tmp_path: Path) -> None:
    from persistence.json.store import JsonStore
    from tests.persistence.helpers import line

    data = tmp_path / "data"
    data.mkdir()
    good = line(0, 1)
    (data / "events.ndjson").write_bytes(good + line(0, 2)[:100] + b"\x07junk\nmore junk\n")
    store = JsonStore(data, fs=FileSystem())
    store.open()
    store.close()
    assert (data / "events.ndjson").read_bytes() == good
