"""lead_ranking over generated boxes and decisions: it never raises and always ranks validly."""

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.rules import default_state, lead_ranking
from actors.rules.ranking import performance

NAMES = ["Ana", "ana", "Bob", "Cris", "Dan", "Eve", "Ștefan"]
REQUIRED_EVENT_KEYS = {"context", "rank", "value", "members", "fingerprint", "stage", "affects_podium", "status",
                       "known_prev_ranks_by_name", "missing_prev_rounds_members", "requires_prev_rounds_input",
                       "resolution_kind", "is_resolved"}

# Few distinct values, so that ties (and ties of ties) are common.
route_values = st.lists(st.sampled_from([None, 0.0, 5.0, 5.1, 5.5, 10.0, 12.0]), min_size=1, max_size=2)
time_values = st.lists(st.sampled_from([None, 0.0, 0, 10.0, 10, 12.5]), min_size=1, max_size=2)


@st.composite
def boxes(draw: st.DrawFn) -> dict[str, Any]:
    return {
        **default_state("s"),
        "initiated": True,
        "routeIndex": draw(st.integers(1, 2)),
        "routesCount": 3,
        "holdsCount": draw(st.sampled_from([0, 5, 10])),
        "competitors": [{"nume": n, "marked": False} for n in draw(st.lists(st.sampled_from(NAMES), unique=True))],
        "scores": draw(st.dictionaries(st.sampled_from(NAMES), route_values)),
        "times": draw(st.dictionaries(st.sampled_from(NAMES), time_values)),
        "timeCriterionEnabled": draw(st.sampled_from([True, True, True, False])),
        "leadTiebreakBadgesByName": draw(st.dictionaries(
            st.sampled_from(NAMES), st.fixed_dictionaries({"tb_prev": st.booleans(), "tb_time": st.booleans()}))),
    }


def decide(draw: st.DrawFn, state: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Answer some of the open ties the way the commands would store the answers."""
    new = {key: (dict(value) if isinstance(value, dict) else value) for key, value in state.items()}
    for event in events:
        if draw(st.integers(0, 3)) == 0:
            continue
        fp, decision = event["fingerprint"], draw(st.sampled_from(["yes", "yes", "no"]))
        names = [m["name"] for m in event["members"]] + draw(st.lists(st.just("Zed"), max_size=1))
        if event["stage"] == "time":
            new["timeTiebreakDecisions"][fp] = decision
            continue
        new["prevRoundsTiebreakDecisions"][fp] = decision
        ranks = draw(st.dictionaries(st.sampled_from(names), st.integers(1, 4)))
        if decision == "yes" and ranks:
            new["prevRoundsTiebreakRanks"][fp] = ranks
            if draw(st.booleans()):
                key = event["lineage_key"]
                new["prevRoundsTiebreakLineageRanks"][key] = {**new["prevRoundsTiebreakLineageRanks"].get(key, {}),
                                                              **ranks}
        if draw(st.booleans()):
            new["prevRoundsTiebreakOrders"][fp] = draw(st.lists(st.sampled_from(names), max_size=3))
    return new


def check(state: dict[str, Any]) -> list[dict[str, Any]]:
    ranking = lead_ranking(state)
    rows = ranking.rows
    ranks = [row["rank"] for row in rows]
    # Listed best first, and a competition ranking: a rank is 1 + the number of athletes ranked above.
    assert ranks == sorted(ranks)
    assert all(rank == 1 + sum(other < rank for other in ranks) for rank in ranks)
    # A tie-break reorders only equal performances; unscored athletes come after everyone scored.
    route = state["routeIndex"] - 1
    keys = []
    for row in rows:
        values = state["scores"].get(row["name"]) or []
        value = values[route] if route < len(values) else None
        keys.append(None if value is None else performance(value, state["holdsCount"]))
    scored = [key for key in keys if key is not None]
    assert keys[: len(scored)] == scored and scored == sorted(scored, reverse=True)
    for (rank_a, key_a), (rank_b, key_b) in zip(zip(ranks, keys), zip(ranks[1:], keys[1:])):
        if key_a is not None and key_a != key_b:
            assert rank_a < rank_b
    assert len({row["name"] for row in rows}) == len(rows)
    assert ranking.resolved == ranking.is_resolved
    if not state["timeCriterionEnabled"]:
        assert ranking.tie_events == [] and ranking.resolved and ranking.errors == []
    for event in ranking.tie_events:
        assert set(event) >= REQUIRED_EVENT_KEYS and None not in event.values()
        assert event["affects_podium"] and event["rank"] <= 3 and len(event["members"]) > 1
    if ranking.tie_events:
        assert not ranking.resolved
    orjson.dumps(rows)
    orjson.dumps(ranking.tie_events)
    return ranking.tie_events


@settings(deadline=None, derandomize=True, max_examples=300)
@given(boxes(), st.data())
def test_lead_ranking_never_raises_and_ranks_validly(state: dict[str, Any], data: st.DataObject) -> None:
    for _ in range(3):
        events = check(state)
        state = decide(data.draw, state, events)
    check(state)
