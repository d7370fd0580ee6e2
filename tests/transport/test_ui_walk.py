"""A scripted walk that does what the escalada UI does (ui-contract §4-5), over real sockets."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import orjson
from aiohttp import ClientSession, CookieJar, FormData, WSMsgType
from openpyxl import Workbook

from tests.conftest import make_config, serving
from transport.app import create_app

ORIGIN = "http://127.0.0.1:4173"
STEP_PAUSE_S = 0.35  # longer than the spectator throttle window, so each step shows on its own


def start_list() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["Nume", "Club"])
    for name, club in [("Ana Pop", "CS Brașov"), ("Dan O'Connor", "Dublin CC"), ("Ștefan Dropu", None)]:
        sheet.append([name, club])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


async def collect(ws, sink: list[dict], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            message = await ws.receive(timeout=0.2)
        except TimeoutError:
            continue
        if message.type != WSMsgType.TEXT:
            sink.append({"type": f"socket {message.type.name}", "data": message.data})
            return
        sink.append(orjson.loads(message.data))


async def test_admin_judge_and_spectator_walk_through_a_climb(tmp_path: Path) -> None:
    async with serving(create_app(make_config(tmp_path / "data")), as_admin=False) as admin:
        base = f"http://127.0.0.1:{admin.port}"
        headers = {"Origin": ORIGIN}
        # Admin: log in, upload the start list, initiate box 0, set the judge's password.
        login = await admin.post("/api/auth/login", json={"username": "admin", "password": "admin-password-for-tests"},
                                 headers=headers)
        assert login.status == 200 and login.headers["Access-Control-Allow-Origin"] == ORIGIN
        form = FormData()
        form.add_field("category", "U16 Fete")
        form.add_field("routesCount", "2")
        form.add_field("holdsCounts", "[12, 15]")
        form.add_field("include_clubs", "true")
        form.add_field("file", start_list(), filename="lista.xlsx",
                       content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        upload = await (await admin.post("/api/admin/upload", data=form, headers=headers)).json()
        listbox = upload["listbox"]
        assert [c["nume"] for c in listbox["concurenti"]] == ["Ana Pop", "Dan O'Connor", "Ștefan Dropu"]
        init = {"boxId": 0, "type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": listbox["holdsCount"],
                "routesCount": listbox["routesCount"], "holdsCounts": listbox["holdsCounts"],
                "competitors": listbox["concurenti"], "timerPreset": "05:00", "categorie": listbox["categorie"]}
        assert (await (await admin.post("/api/cmd", json=init, headers=headers)).json()) == {"status": "ok"}
        judge_setup = await admin.post("/api/admin/auth/boxes/0/password",
                                       json={"password": "judge-secret-0", "username": "U16 Fete"}, headers=headers)
        assert (await judge_setup.json())["alias"] == "Box 0"

        # Spectator: a free token, then both public sockets.
        async with ClientSession() as phone:
            async with phone.post(f"{base}/api/public/token") as response:
                token = (await response.json())["access_token"]
            per_box = await phone.ws_connect(f"{base}/api/public/ws/0?token={token}")
            aggregate = await phone.ws_connect(f"{base}/api/public/ws")
            box_frames: list[dict] = []
            hub_frames: list[dict] = []
            stop = asyncio.Event()
            readers = [asyncio.create_task(collect(per_box, box_frames, stop)),
                       asyncio.create_task(collect(aggregate, hub_frames, stop))]

            # Judge: logs in as "Box 0" on a tablet and runs Ana through her climb.
            # unsafe=True: keep cookies for an IP host, as a browser does.
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as tablet:
                async with tablet.post(f"{base}/api/auth/login",
                                       json={"username": "Box 0", "password": "judge-secret-0"}) as response:
                    assert (await response.json())["boxes"] == [0]
                judge_ws = await tablet.ws_connect(f"{base}/api/ws/0")
                snapshot = orjson.loads((await judge_ws.receive(timeout=5)).data)
                assert snapshot["currentClimber"] == "Ana Pop"
                for step in ({"type": "START_TIMER"}, {"type": "PROGRESS_UPDATE", "delta": 1},
                             {"type": "PROGRESS_UPDATE", "delta": 1}, {"type": "PROGRESS_UPDATE", "delta": 0.1},
                             {"type": "SUBMIT_SCORE", "competitor": "Ana Pop", "score": 2.1}):
                    async with tablet.get(f"{base}/api/state/0") as response:
                        current = await response.json()
                    body = {"boxId": 0, "sessionId": current["sessionId"], "boxVersion": current["boxVersion"], **step}
                    async with tablet.post(f"{base}/api/cmd", json=body) as response:
                        assert await response.json() == {"status": "ok"}, step
                    await asyncio.sleep(STEP_PAUSE_S)
                await judge_ws.close()
            stop.set()
            await asyncio.gather(*readers)
            await per_box.close()
            await aggregate.close()

        snapshots = [f for f in box_frames if f["type"] == "STATE_SNAPSHOT"]
        holds = [f["holdCount"] for f in snapshots]
        assert holds[:1] == [0] and 1 in holds and 2 in holds and 2.1 in holds, holds
        assert any(f["timerState"] == "running" for f in snapshots)
        final = snapshots[-1]
        assert final["currentClimber"] == "Dan O'Connor" and final["scoresByName"]["Ana Pop"] == [2.1]
        assert final["leadRankingRows"][0]["name"] == "Ana Pop" and final["leadRankingRows"][0]["rank"] == 1
        kinds = {f["type"] for f in hub_frames}
        assert {"PUBLIC_STATE_SNAPSHOT", "BOX_FLOW_UPDATE", "BOX_RANKING_UPDATE"} <= kinds
        last_box = [f["box"] for f in hub_frames if f["type"].startswith("BOX_")][-1]
        assert last_box["currentClimber"] == "Dan O'Connor"

        audit = await (await admin.get("/api/admin/audit/events?limit=10")).json()
        assert [e["actorUsername"] for e in audit[:5]] == ["Box 0"] * 5
        assert audit[0]["action"] == "SUBMIT_SCORE" and audit[-1]["actorUsername"] == "admin"
