"""Result routes over a real socket: save_ranking files, podium, box CSV, official ZIP, the worker's time cap."""
from __future__ import annotations

import csv
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import orjson
import pytest
from aiohttp.test_utils import TestClient
from pypdf import PdfReader

from actors.jobs.exports import ExportError, ExportRunner
from tests.conftest import make_config, serving
from transport.app import create_app
from transport.http.errors import STATUS
from transport.keys import EXPORT_RUNNER

ROMANIAN = "Ștefan Țărână"


def sleep_ignoring_deadline(seconds: float, deadline: float) -> None:
    """A job that never checks its deadline (runs in the worker process)."""
    time.sleep(seconds)


def ranking_body(**extra: Any) -> dict[str, Any]:
    return {
        "categorie": "U14 Băieți",
        "route_count": 2,
        "scores": {"Ana Pop": [30, 10], "Bogdan Ionescu": [20, 20], ROMANIAN: [10, 30], "Dan Matei": [None, 5]},
        "clubs": {"Ana Pop": "CS Arad", ROMANIAN: "CS Iași"},
        "holds_counts": [40, 40],
        "route_index": 2,
        **extra,
    }


def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "results"


def sheet_rows(path: Path) -> list[tuple[Any, ...]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(workbook.active.iter_rows(values_only=True))
    finally:
        workbook.close()


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def post_ranking(client: TestClient, body: Any) -> tuple[int, Any]:
    response = await client.post("/api/save_ranking", data=orjson.dumps(body),
                                 headers={"Content-Type": "application/json"})
    return response.status, await response.json()


async def command(client: TestClient, box_id: int, kind: str, **fields: Any) -> dict[str, Any]:
    snapshot = await (await client.get(f"/api/state/{box_id}")).json()
    body = {"boxId": box_id, "type": kind, "sessionId": snapshot["sessionId"],
            "boxVersion": snapshot["boxVersion"], **fields}
    response = await client.post("/api/cmd", json=body)
    assert response.status == 200, await response.text()
    return await (await client.get(f"/api/state/{box_id}")).json()


async def test_save_ranking_writes_overall_and_route_files_that_reopen(client: TestClient, tmp_path: Path) -> None:
    status, body = await post_ranking(client, ranking_body())
    assert status == 200, body
    folder = results_dir(tmp_path) / "U14 Băieți"
    names = ["overall.xlsx", "overall.pdf", "route_1.xlsx", "route_1.pdf", "route_2.xlsx", "route_2.pdf"]
    assert body["saved"] == [str((folder / name).resolve()) for name in names]
    assert body["status"] == "ok"
    assert {"time_tiebreak_fingerprint", "time_tiebreak_has_eligible_tie", "time_tiebreak_is_resolved"} <= body.keys()
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)  # no temp files left behind

    rows = sheet_rows(folder / "overall.xlsx")
    assert rows[0] == ("Rank", "Nume", "Club", "Score R1", "Score R2", "Total")
    # n = 4, so Dan's missing route 1 is 5 points. Ana √(1·3), Ștefan √(3·1), Bogdan √(2·2), Dan √(5·4).
    assert rows[1:] == [(1, "Ana Pop", "CS Arad", 30, 10, 1.732), (1, ROMANIAN, "CS Iași", 10, 30, 1.732),
                        (3, "Bogdan Ionescu", None, 20, 20, 2), (4, "Dan Matei", None, None, 5, 4.472)]
    route_2 = sheet_rows(folder / "route_2.xlsx")
    assert route_2[0] == ("Rank", "Name", "Club", "Score", "Points")
    assert [r[:2] for r in route_2[1:]] == [(1, ROMANIAN), (2, "Bogdan Ionescu"), (3, "Ana Pop"), (4, "Dan Matei")]


async def test_pdf_titles_and_romanian_names_round_trip(client: TestClient, tmp_path: Path) -> None:
    status, _ = await post_ranking(client, ranking_body())
    assert status == 200
    folder = results_dir(tmp_path) / "U14 Băieți"
    overall = pdf_text((folder / "overall.pdf").read_bytes())
    assert "U14 Băieți – Overall" in overall
    assert ROMANIAN in overall and "CS Iași" in overall
    assert "U14 Băieți – Route 1" in pdf_text((folder / "route_1.pdf").read_bytes())
    reader = PdfReader(folder / "overall.pdf")
    box = reader.pages[0].mediabox
    assert float(box.width) > float(box.height)  # landscape


async def test_save_ranking_accepts_nulls_times_and_tiebreak_fields(client: TestClient, tmp_path: Path) -> None:
    body = ranking_body(times={"Ana Pop": [61, "1:05"], ROMANIAN: [None, "75"]}, use_time_tiebreak=True,
                        time_tiebreak_decisions={"tb3:x": "YES"}, prev_rounds_tiebreak_decisions={},
                        prev_rounds_tiebreak_ranks_by_fingerprint={"tb3:y": {"Ana Pop": 1}},
                        box_id=None, active_holds_count=None, include_clubs=None)
    status, reply = await post_ranking(client, body)
    assert status == 200, reply
    rows = sheet_rows(results_dir(tmp_path) / "U14 Băieți" / "overall.xlsx")
    assert rows[0] == ("Rank", "Nume", "Club", "Score R1", "Score R2", "Time R1", "Time R2", "Total")
    assert rows[1][5:7] == ("01:01", "01:05")


@pytest.mark.parametrize("body, detail", [
    ({"route_count": 2, "scores": {}}, "invalid_categorie"),
    (ranking_body(route_count=None), "route_count is required"),
    (ranking_body(route_count="2"), "route_count must be an integer from 1 to 999"),
    (ranking_body(route_count=1000), "route_count must be an integer from 1 to 999"),
    (ranking_body(scores=[1, 2]), "scores must be an object keyed by athlete name"),
    (ranking_body(scores={"Ana": ["x"]}), "scores['Ana']: each entry must be a number from 0 to 100, or null"),
    (ranking_body(scores={"Ana": [True]}), "scores['Ana']: each entry must be a number from 0 to 100, or null"),
    (ranking_body(scores={"Ana": 5}), "scores['Ana'] must be a list of at most 999 numbers or nulls"),
    (ranking_body(scores={"\u0000": [1]}), "scores: athlete names must be 1 to 255 printable characters"),
    (ranking_body(holds_counts=[1, -1]), "holds_counts must be a list of integers from 0 to 100"),
    (ranking_body(route_index=3), "route_index must be an integer from 1 to 2"),
    (ranking_body(time_tiebreak_decisions={"fp": "maybe"}), 'time_tiebreak_decisions must be "yes" or "no"'),
    (ranking_body(prev_rounds_tiebreak_orders={"fp": "Ana"}), "prev_rounds_tiebreak_orders has the wrong shape"),
    (ranking_body(use_time_tiebreak="yes"), "use_time_tiebreak must be true or false"),
])
async def test_bad_save_ranking_bodies_are_400_with_a_detail(client: TestClient, body: Any, detail: str) -> None:
    status, reply = await post_ranking(client, body)
    assert (status, reply) == (400, {"detail": detail})


@pytest.mark.parametrize("category", ["../x", "a/b", "..\\x", "", ".", "..", "   ", "a\u0000b", "a\nb", "/etc",
                                      "x" * 101])
async def test_category_traversal_is_refused_and_nothing_is_written(client: TestClient, tmp_path: Path,
                                                                    category: str) -> None:
    status, reply = await post_ranking(client, ranking_body(categorie=category))
    assert (status, reply) == (400, {"detail": "invalid_categorie"})
    written = [p for p in tmp_path.rglob("*") if p.suffix in (".xlsx", ".pdf")]
    assert written == []


async def test_odd_but_valid_categories_stay_inside_results(client: TestClient, tmp_path: Path) -> None:
    for category in (".hidden", "a:b*c", "CON", "a..b"):
        status, reply = await post_ranking(client, ranking_body(categorie=category))
        assert status == 200, reply
        for path in reply["saved"]:
            assert Path(path).resolve().parent.parent == results_dir(tmp_path).resolve()
    folders = sorted(p.name for p in results_dir(tmp_path).iterdir())
    assert len(folders) == 4 and "a..b" in folders and not any(f.startswith(".") for f in folders)


async def test_save_ranking_needs_an_admin(anonymous: TestClient) -> None:
    status, reply = await post_ranking(anonymous, ranking_body())
    assert (status, reply) == (401, {"detail": "not_authenticated"})


async def test_podium_after_save_colours_ties_by_rank(client: TestClient) -> None:
    assert (await post_ranking(client, ranking_body()))[0] == 200
    client.session.cookie_jar.clear()  # the podium needs no login
    response = await client.get("/api/podium/U14 Băieți")
    assert response.status == 200
    assert await response.json() == [{"name": "Ana Pop", "color": "#ffd700"}, {"name": ROMANIAN, "color": "#ffd700"},
                                     {"name": "Bogdan Ionescu", "color": "#cd7f32"}]


async def test_podium_needs_no_login_and_says_404_or_400(anonymous: TestClient) -> None:
    response = await anonymous.get("/api/podium/Nobody")
    assert response.status == 404
    assert await response.json() == {"detail": "Clasament inexistent pentru categoria specificată."}
    response = await anonymous.get("/api/podium/..")
    assert response.status in (400, 404)  # aiohttp may normalise ".." away before routing
    response = await anonymous.get("/api/podium/a%5Cb")
    assert (response.status, await response.json()) == (400, {"detail": "invalid_categorie"})


async def scored_box(client: TestClient, box_id: int = 3) -> dict[str, Any]:
    competitors = [{"nume": "Ana Pop", "club": "CS Arad"}, {"nume": "Bogdan Ionescu"}, {"nume": ROMANIAN}]
    await command(client, box_id, "INIT_ROUTE", routeIndex=1, holdsCount=20, routesCount=1, holdsCounts=[20],
                  competitors=competitors, categorie="Seniori", timerPreset="05:00")
    await command(client, box_id, "SET_TIME_CRITERION", timeCriterionEnabled=True)
    await command(client, box_id, "SUBMIT_SCORE", competitor="Ana Pop", score=12, registeredTime=70)
    await command(client, box_id, "SUBMIT_SCORE", competitor="Bogdan Ionescu", score=12, registeredTime=50)
    return await command(client, box_id, "SUBMIT_SCORE", competitor=ROMANIAN, score=5, registeredTime=90)


async def resolve_ties(client: TestClient, box_id: int) -> dict[str, Any]:
    """Answer every pending podium prompt: previous rounds "no", then time "yes"."""
    snapshot = await (await client.get(f"/api/state/{box_id}")).json()
    for _ in range(4):
        pending = [e for e in snapshot["leadTieEvents"] if not e.get("is_resolved")]
        if not pending:
            break
        event = pending[0]
        if event["stage"] == "previous_rounds":
            snapshot = await command(client, box_id, "SET_PREV_ROUNDS_TIEBREAK_DECISION",
                                     prevRoundsTiebreakDecision="no",
                                     prevRoundsTiebreakFingerprint=event["fingerprint"])
        else:
            snapshot = await command(client, box_id, "SET_TIME_TIEBREAK_DECISION",
                                     timeTiebreakDecision="yes", timeTiebreakFingerprint=event["fingerprint"])
    return snapshot


async def test_box_csv_export_layout(client: TestClient) -> None:
    await scored_box(client)
    response = await client.get("/api/admin/export/box/3")
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=box_3_export.csv"
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[:5] == [["boxId", "3"], ["competitionId", ""], ["categorie", "Seniori"], ["boxVersion", rows[3][1]], []]
    assert rows[5] == ["Current state"] and rows[7] == ["started", "False"] and rows[8] == ["timerState", "idle"]
    at = rows.index(["Competitors (all)"])
    assert rows[at + 1:at + 5] == [["id", "name", "category", "bib", "boxId"], ["", "Ana Pop", "", "", "3"],
                                   ["", "Bogdan Ionescu", "", "", "3"], ["", ROMANIAN, "", "", "3"]]
    at = rows.index(["Scores (per competitor)"])
    assert rows[at + 1] == ["Name", "Route 1", "Time 1"]
    assert rows[at + 2] == ["Ana Pop", "12.0", "01:10"]
    at = rows.index(["Ranking (overall)"])
    assert rows[at + 1] == ["Rank", "Nume", "Club", "Score R1", "Total"]
    assert [r[:2] for r in rows[at + 2:]] == [["1", "Ana Pop"], ["1", "Bogdan Ionescu"], ["3", ROMANIAN]]


async def test_box_csv_export_quotes_text_a_spreadsheet_would_run_as_a_formula(client: TestClient) -> None:
    """CSV injection: text starting with =, +, -, @ (or a tab or CR) gets a leading "'"; numbers stay numbers."""
    competitors = [{"nume": "-Ana", "club": "-2+3"}, {"nume": "=HYPERLINK(1)"}, {"nume": "+Bob"}, {"nume": "@Carl"},
                   {"nume": "Dan"}]
    await command(client, 4, "INIT_ROUTE", routeIndex=1, holdsCount=20, routesCount=1, holdsCounts=[20],
                  competitors=competitors, categorie="-U16", timerPreset="05:00")
    await command(client, 4, "SUBMIT_SCORE", competitor="-Ana", score=12)
    await command(client, 4, "SUBMIT_SCORE", competitor="Dan", score=7.5)
    response = await client.get("/api/admin/export/box/4")
    assert response.status == 200
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[2] == ["categorie", "'-U16"]
    at = rows.index(["Competitors (all)"])
    assert [row[1] for row in rows[at + 2:at + 7]] == ["'-Ana", "'=HYPERLINK(1)", "'+Bob", "'@Carl", "Dan"]
    at = rows.index(["Scores (per competitor)"])
    scores = {row[0]: row[1:] for row in rows[at + 2:] if row and row[0] in ("'-Ana", "Dan")}
    assert scores == {"'-Ana": ["12.0"], "Dan": ["7.5"]}
    at = rows.index(["Ranking (overall)"])
    ana = next(row for row in rows[at + 2:] if row[1] == "'-Ana")
    assert ana[0] == "1" and ana[2] == "'-2+3" and ana[3] == "12.0"
    assert not any(cell[:1] in "=+-@\t\r" for row in rows for cell in row if cell), rows


async def test_exports_of_an_unknown_box_are_404(client: TestClient) -> None:
    for path in ("/api/admin/export/box/7", "/api/admin/export/official/box/7"):
        response = await client.get(path)
        assert (response.status, await response.json()) == (404, {"detail": "box_not_found"})
    response = await client.get("/api/admin/export/box/abc")
    assert response.status == 400


async def test_exports_need_an_admin(anonymous: TestClient) -> None:
    for path in ("/api/admin/export/box/0", "/api/admin/export/official/box/0"):
        response = await anonymous.get(path)
        assert (response.status, await response.json()) == (401, {"detail": "not_authenticated"})


async def test_official_zip_without_scores_is_400(client: TestClient) -> None:
    await command(client, 2, "INIT_ROUTE", routeIndex=1, holdsCount=20, routesCount=1,
                  competitors=[{"nume": "Ana Pop"}], categorie="Seniori")
    response = await client.get("/api/admin/export/official/box/2")
    assert (response.status, await response.json()) == (400, {"detail": "missing_scores"})


async def test_official_zip_contents_apply_the_box_tiebreak_decisions(client: TestClient) -> None:
    await scored_box(client)
    snapshot = await resolve_ties(client, 3)
    assert snapshot["leadRankingResolved"] is True
    response = await client.get("/api/admin/export/official/box/3")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/zip"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="official_Seniori_box3_') and disposition.endswith('Z.zip"')
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert sorted(archive.namelist()) == ["Seniori/metadata.json", "Seniori/overall.pdf", "Seniori/overall.xlsx",
                                          "Seniori/route_1.pdf", "Seniori/route_1.xlsx"]
    metadata = orjson.loads(archive.read("Seniori/metadata.json"))
    assert {"boxId", "competitionId", "categorie", "routesCount", "timeCriterionEnabled", "timeTiebreakDecisions",
            "prevRoundsTiebreakDecisions", "timeTiebreakCurrentFingerprint", "timeTiebreakHasEligibleTie",
            "timeTiebreakIsResolved", "timeTiebreakEligibleGroups", "clubs", "exportedAt"} <= metadata.keys()
    assert metadata["boxId"] == 3 and metadata["timeCriterionEnabled"] is True
    assert list(metadata["timeTiebreakDecisions"].values()) == ["yes"]
    assert metadata["timeTiebreakIsResolved"] is True and metadata["clubs"] == {"Ana Pop": "CS Arad"}
    # Bogdan climbed faster (50 s vs 70 s): the decision splits the tie the scores alone leave.
    assert [(r["Rank"], r["Nume"]) for r in metadata["ranking"]] == [(1, "Bogdan Ionescu"), (2, "Ana Pop"),
                                                                     (3, ROMANIAN)]
    workbook = openpyxl.load_workbook(io.BytesIO(archive.read("Seniori/overall.xlsx")), read_only=True)
    rows = list(workbook.active.iter_rows(values_only=True))
    workbook.close()
    assert rows[0] == ("Rank", "Nume", "Club", "Score R1", "Time R1", "Total", "TB Time")
    assert [r[:2] for r in rows[1:]] == [(1, "Bogdan Ionescu"), (2, "Ana Pop"), (3, ROMANIAN)]
    assert ROMANIAN in pdf_text(archive.read("Seniori/route_1.pdf"))


async def test_a_job_over_the_time_cap_is_a_503_json_and_the_server_keeps_serving(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path / "data"))
    app[EXPORT_RUNNER] = ExportRunner(timeout_s=0.0)  # even starting the worker takes longer than this
    async with serving(app) as client:
        started = time.monotonic()
        status, reply = await post_ranking(client, ranking_body())
        assert status == 503
        assert reply["detail"].startswith("export_timeout")
        assert time.monotonic() - started < 15
        response = await client.get("/api/health")
        assert response.status == 200
    assert not (results_dir(tmp_path) / "U14 Băieți" / "overall.xlsx").exists()


async def test_a_job_that_ignores_its_deadline_is_killed() -> None:
    runner = ExportRunner(timeout_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(ExportError) as caught:
            await runner.run(sleep_ignoring_deadline, 30)
        assert STATUS[caught.value.code] == 503 and caught.value.detail.startswith("export_timeout")
        assert time.monotonic() - started < 10
    finally:
        await runner.close()
