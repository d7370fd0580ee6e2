"""The live lead ranking of the active route with the manual tie-break workflow (reference-backend §7.2).

With the time criterion on, a tie that starts on the podium (ranks 1-3) must be broken: first by
the previous rounds (the judges type the athletes' earlier ranks), then by time. Every stored
decision is looked up by the tie's fingerprint, so a decision never outlives the tie it was made
for. Ties below the podium stay shared. Corrections to the reference (§10 items 12 and 22):
athletes without a score on the active route are ranked after everyone scored and never take part
in a tie, and a time of 0 is a real time.

Each tie that still needs a decision, or that a decision could not break, is reported as a
`TieGroup` event (§2.2); keys whose value would be null are left out.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from . import fingerprints
from .ranking import PODIUM_PLACES, Entry, name_key, ranking_row, route_results

PREVIOUS_ROUNDS = "previous_rounds"
TIME = "time"
DECISIONS = ("yes", "no")

# Sticky tie-break badges (§4): {name: {"tb_prev": bool, "tb_time": bool}}, only names with a badge.
BADGES_KEY = "leadTiebreakBadgesByName"

# The box state's tie-break settings and decisions, in wire order (a snapshot, the official export's metadata).
TIEBREAK_KEYS = (
    "timeCriterionEnabled",
    "timeTiebreakPreference",
    "timeTiebreakDecisions",
    "timeTiebreakResolvedFingerprint",
    "timeTiebreakResolvedDecision",
    "prevRoundsTiebreakPreference",
    "prevRoundsTiebreakDecisions",
    "prevRoundsTiebreakOrders",
    "prevRoundsTiebreakRanks",
    "prevRoundsTiebreakLineageRanks",
    "prevRoundsTiebreakResolvedFingerprint",
    "prevRoundsTiebreakResolvedDecision",
)
# A judge's habit, kept across routes; the ranking never reads them.
PREFERENCE_KEYS = ("timeTiebreakPreference", "prevRoundsTiebreakPreference")

# The state keys the ranking is computed from (besides names): a command touching none of them
# cannot change any badge.
RANKING_INPUT_KEYS = (
    "scores",
    "times",
    "holdsCount",
    "routeIndex",
    *(key for key in TIEBREAK_KEYS if key not in PREFERENCE_KEYS),
)

Chunk = Sequence[Entry]  # athletes who end up sharing one rank


@dataclass(frozen=True, slots=True)
class LeadRanking:
    rows: list[dict[str, Any]]  # leadRankingRows
    tie_events: list[dict[str, Any]]  # leadTieEvents == timeTiebreakEligibleGroups
    resolved: bool  # leadRankingResolved == timeTiebreakIsResolved
    errors: list[str]  # leadRankingErrors
    current_fingerprint: str | None  # timeTiebreakCurrentFingerprint: all ties of the route
    has_eligible_tie: bool  # timeTiebreakHasEligibleTie: some scored athletes are tied

    @property
    def is_resolved(self) -> bool:
        return self.resolved


def lead_ranking(state: Mapping[str, Any]) -> LeadRanking:
    results = route_results(state)
    groups = _performance_groups(results.entries)
    ties = [(start, members) for start, members in groups if len(members) > 1]
    current = fingerprints.ties_fingerprint(results.route_index, ties)
    criterion = state.get("timeCriterionEnabled") is True
    if ties and criterion:
        workflow = _Workflow(state, results.route_index, current)
        placed = [placement for start, members in groups for placement in workflow.place(start, members)]
        events, errors, resolved = workflow.events, workflow.errors, workflow.resolved
        tb_prev, tb_time = workflow.tb_prev, workflow.tb_time
    else:
        placed = [(entry, start) for start, members in groups for entry in members]
        events, errors, resolved, tb_prev, tb_time = [], [], True, set(), set()
    badges = _mapping(state.get(BADGES_KEY)) if criterion else {}

    rows = []
    for entry, rank in sorted(placed, key=lambda item: (item[1], *name_key(item[0].name))):
        badge = _mapping(badges.get(entry.name))
        rows.append(ranking_row(
            state, entry.name, rank, entry.performance.value, entry.time,
            tb_time=entry.name in tb_time or badge.get("tb_time") is True,
            tb_prev=entry.name in tb_prev or badge.get("tb_prev") is True,
        ))
    unscored_rank = len(results.entries) + 1
    rows.extend(ranking_row(state, name, unscored_rank, None, None) for name in results.unscored)
    return LeadRanking(rows, events, resolved, errors, current, bool(ties))


def lead_ranking_rows(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    return lead_ranking(state).rows


def remembered_badges(state: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """The badge memory after a change on the same route: a badge once shown stays.

    Returns the stored memory object itself when nothing new was earned.
    """
    memory = state.get(BADGES_KEY) or {}
    if state.get("timeCriterionEnabled") is not True:
        return memory
    earned = {
        row["name"]: {"tb_prev": row["tb_prev"], "tb_time": row["tb_time"]}
        for row in lead_ranking(state).rows
        if row["tb_prev"] or row["tb_time"]
    }  # the rows already carry the remembered badges, so this only adds
    merged = {**memory, **earned}
    return memory if merged == memory else merged


def _performance_groups(entries: list[Entry]) -> list[tuple[int, list[Entry]]]:
    """Runs of equal performance with their competition rank (1, 1, 3)."""
    groups: list[tuple[int, list[Entry]]] = []
    for position, entry in enumerate(entries, start=1):
        if groups and groups[-1][1][0].performance == entry.performance:
            groups[-1][1].append(entry)
        else:
            groups.append((position, [entry]))
    return groups


class _PrevRoundsReport(TypedDict):
    """What every event of the previous-rounds stage reports (keyword arguments of _Workflow._event)."""

    lineage_key: str
    prev_rounds_decision: str | None
    prev_rounds_order: list[str] | None


@dataclass
class _Workflow:
    state: Mapping[str, Any]
    route_index: int
    current_fingerprint: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tb_prev: set[str] = field(default_factory=set)
    tb_time: set[str] = field(default_factory=set)
    resolved: bool = True

    def place(self, start: int, members: list[Entry]) -> list[tuple[Entry, int]]:
        """Ranks for one performance group; only a tie starting on the podium is broken."""
        chunks: list[Chunk] = [members]
        if len(members) > 1 and start <= PODIUM_PLACES:
            chunks = self._previous_rounds_stage(start, members)
        placed: list[tuple[Entry, int]] = []
        position = start
        for chunk in chunks:
            if len(chunk) > 1 and position <= PODIUM_PLACES:
                self.resolved = False
            placed.extend((entry, position) for entry in chunk)
            position += len(chunk)
        # A tie-break decides the podium only: the part of the group below it shares one rank.
        tail = [rank for _, rank in placed if rank > PODIUM_PLACES]
        if tail:
            shared = min(tail)
            placed = [(entry, shared if rank > PODIUM_PLACES else rank) for entry, rank in placed]
        return placed

    # -- stages ---------------------------------------------------------------------------------

    def _previous_rounds_stage(self, start: int, members: list[Entry]) -> list[Chunk]:
        fingerprint = fingerprints.tie_fingerprint(self.route_index, PREVIOUS_ROUNDS, start, True, members)
        lineage = fingerprints.lineage_key(self.route_index, members[0].performance)
        names = {entry.name for entry in members}
        stored_lineage = _mapping(_mapping(self.state.get("prevRoundsTiebreakLineageRanks")).get(lineage))
        lineage_ranks = {name: rank for name, rank in stored_lineage.items() if name in names and _is_rank(rank)}
        decision, key = self._decision("prevRoundsTiebreak", fingerprint)
        if decision is None and lineage_ranks:  # ranks typed for this performance before the tie changed
            decision = "yes"
        order = _mapping(self.state.get("prevRoundsTiebreakOrders")).get(key)
        report: _PrevRoundsReport = {"lineage_key": lineage, "prev_rounds_decision": decision,
                                     "prev_rounds_order": order if isinstance(order, list) else None}
        all_missing = sorted(names, key=name_key)
        if decision is None:
            self._event(PREVIOUS_ROUNDS, start, members, fingerprint, "pending", "previous_rounds_pending",
                        missing=all_missing, **report)
            return [members]
        if decision == "no":
            return self._time_stage(start, members)

        ranks, problem = self._previous_ranks(key, members, lineage_ranks)
        if problem is not None:
            self.errors.append(f"invalid_previous_rounds_decision:{fingerprint}:{problem}")
            self._event(PREVIOUS_ROUNDS, start, members, fingerprint, "error", problem, missing=all_missing,
                        **report)
            return [members]
        chunks: list[Chunk] = []
        position = start
        for index, rank in enumerate(sorted(set(ranks.values()))):
            part = [entry for entry in members if ranks.get(entry.name) == rank]
            if len(part) == 1:
                if index == 0:  # the badge marks who won the tie, not everyone it ordered
                    self.tb_prev.add(part[0].name)
                chunks.append(part)
            elif position <= PODIUM_PLACES:
                chunks.extend(self._time_stage(position, part))
            else:  # below the podium a tie may stay shared
                chunks.append(part)
            position += len(part)
        missing = [entry for entry in members if entry.name not in ranks]
        if missing:  # known members keep their places; the others wait below them
            chunks.append(missing)
            self._event(PREVIOUS_ROUNDS, start, members, fingerprint, "pending", "previous_rounds_missing_members",
                        known=ranks, missing=[entry.name for entry in missing], **report)
        return chunks

    def _time_stage(self, start: int, members: Chunk) -> list[Chunk]:
        fingerprint = fingerprints.tie_fingerprint(self.route_index, TIME, start, True, members)
        decision, _ = self._decision("timeTiebreak", fingerprint)

        def report(status: str, detail: str) -> None:
            self._event(TIME, start, members, fingerprint, status, detail, time_decision=decision)

        if decision is None:
            report("pending", "time_tiebreak_pending")
            return [members]
        if decision == "no":
            self.errors.append(f"podium_time_tiebreak_keep_tied_not_allowed:{fingerprint}")
            report("error", "podium_keep_tied_not_allowed")
            return [members]
        if any(entry.time is None for entry in members):
            self.errors.append(f"time_tiebreak_missing_times:{fingerprint}")
            report("error", "missing_time_seconds")
            return [members]
        parts: list[list[Entry]] = []
        for entry in sorted(members, key=lambda e: (e.time, *name_key(e.name))):
            if parts and parts[-1][0].time == entry.time:
                parts[-1].append(entry)
            else:
                parts.append([entry])
        if len(parts) > 1:
            self.tb_time.update(entry.name for entry in members)
        starts = _starts(start, parts)
        if any(len(part) > 1 and first <= PODIUM_PLACES for part, first in zip(parts, starts)):
            self.errors.append(f"time_tiebreak_identical_times:{fingerprint}")
            report("error", "identical_time_keeps_podium_tie")
        return list(parts)

    # -- stored decisions -------------------------------------------------------------------------

    def _decision(self, prefix: str, fingerprint: str) -> tuple[str | None, str]:
        """(decision, the fingerprint it is stored under): by fingerprint, then the last decision made.

        The last decision also counts when it was sent for the route's current fingerprint (all ties).
        """
        decision = _mapping(self.state.get(prefix + "Decisions")).get(fingerprint)
        if decision in DECISIONS:
            return decision, fingerprint
        resolved_fp = self.state.get(prefix + "ResolvedFingerprint")
        resolved = self.state.get(prefix + "ResolvedDecision")
        if resolved in DECISIONS and resolved_fp is not None and resolved_fp in (fingerprint, self.current_fingerprint):
            return resolved, resolved_fp
        return None, fingerprint

    def _previous_ranks(self, key: str, members: Sequence[Entry],
                        lineage_ranks: dict[str, int]) -> tuple[dict[str, int], str | None]:
        """Earlier-round ranks of the members: lineage ranks, overridden by ranks for this tie, else the order."""
        names = [entry.name for entry in members]
        ranks = dict(lineage_ranks)
        stored = _mapping(self.state.get("prevRoundsTiebreakRanks")).get(key)
        if stored is not None:
            if not isinstance(stored, Mapping):
                return {}, "invalid_previous_rounds_ranks"
            for name, rank in stored.items():
                if name not in names:
                    return {}, f"invalid_previous_rounds_rank_member:{name}"
                if not _is_rank(rank):
                    return {}, f"invalid_previous_rounds_rank:{name}"
            ranks.update(stored)
        if not ranks:
            ranks = _order_ranks(_mapping(self.state.get("prevRoundsTiebreakOrders")).get(key), names)
        if not ranks:
            return {}, "missing_previous_rounds_ranks"
        return ranks, None

    def _event(self, stage: str, start: int, members: Chunk, fingerprint: str, status: str, detail: str, *,
               lineage_key: str | None = None, prev_rounds_decision: str | None = None,
               prev_rounds_order: list[str] | None = None, known: Mapping[str, int] | None = None,
               missing: Iterable[str] = (), time_decision: str | None = None) -> None:
        known_ranks = {entry.name: known[entry.name] for entry in members if entry.name in known} if known else {}
        event = {
            "context": "overall",
            "rank": start,
            "value": members[0].performance.value,
            "members": [_member(entry) for entry in members],
            "fingerprint": fingerprint,
            "stage": stage,
            "affects_podium": start <= PODIUM_PLACES,
            "status": status,
            "detail": detail,
            "prev_rounds_decision": prev_rounds_decision,
            "prev_rounds_order": prev_rounds_order,
            "prev_rounds_ranks_by_name": known_ranks or None,
            "lineage_key": lineage_key,
            "known_prev_ranks_by_name": known_ranks,
            "missing_prev_rounds_members": list(missing),
            "requires_prev_rounds_input": stage == PREVIOUS_ROUNDS and status != "resolved",
            "time_decision": time_decision,
            "resolved_decision": time_decision,
            "resolution_kind": stage,
            "is_resolved": status == "resolved",
        }
        self.events.append({key: value for key, value in event.items() if value is not None})
        if status != "resolved" and start <= PODIUM_PLACES:
            self.resolved = False


def _member(entry: Entry) -> dict[str, Any]:
    member: dict[str, Any] = {"name": entry.name}
    if entry.time is not None:
        member["time"] = entry.time
    member["value"] = entry.performance.value
    return member


def _starts(start: int, parts: Sequence[Chunk]) -> list[int]:
    starts = []
    for part in parts:
        starts.append(start)
        start += len(part)
    return starts


def _order_ranks(order: object, names: Sequence[str]) -> dict[str, int]:
    """The legacy order form: listed members in order; a single unlisted member is implicitly last."""
    if not isinstance(order, list):
        return {}
    members = set(names)
    listed = [name for name in dict.fromkeys(n for n in order if isinstance(n, str)) if name in members]
    if len(listed) == len(names) - 1:
        listed.extend(name for name in names if name not in listed)
    return {name: rank for rank, name in enumerate(listed, start=1)}


def _is_rank(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
