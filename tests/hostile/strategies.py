"""Hypothesis strategies for hostile input: raw bodies, JSON of every type, plausible commands with
random field values, admin bodies, multipart parts, path segments, WebSocket frames."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from actors.officials import OFFICIAL_KEYS
from actors.rules import default_state
from actors.rules.commands import _TYPE_FIELDS, COMMAND_TYPES

LIVE = "<live>"  # replaced at send time by the box's current sessionId / boxVersion

HUGE_INTS = st.sampled_from([2**70, -(2**70), 2**63, 2**64, -(2**63) - 1, 2**31, 10**30, -1])
SPECIAL_FLOATS = st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1.5, 0.1, float("nan"), float("inf"),
                                  float("-inf")])
HOSTILE_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\u202eevil", "\ufeff", "１", "٣", "²", "../../etc/passwd", "..\\..\\x",
    "%2e%2e%2f", "Ștefan O'Connor", "DROP TABLE", "<script>", "\t\n\r", "\u200b", "🧗" * 10,
    "x" * 256, "y" * 4096, "null", "true", "NaN", "1e308", "0x1", "1_0",
])
TEXT = st.text(max_size=30) | HOSTILE_TEXT
SCALARS = st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | SPECIAL_FLOATS | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TEXT, inner, max_size=4), max_leaves=16)


@dataclass(frozen=True)
class RawNumber:
    """A JSON number written exactly as `text`: thousands of digits (Python's int() and json.dumps
    refuse more than 4,300), 1e400, -0, 1E+2."""

    text: str


def dumps(value: Any) -> bytes:
    """json (not orjson): integers beyond 64 bits and NaN/Infinity go out as raw text, and so does
    any RawNumber. Bytes are a raw body already and go as they are."""
    if isinstance(value, bytes):
        return value
    raw: list[str] = []

    def placeholder(item: object) -> str:
        if not isinstance(item, RawNumber):
            raise TypeError(f"cannot encode {type(item).__name__}")
        raw.append(item.text)
        return f"\x00raw{len(raw) - 1}\x00"

    text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=placeholder)
    for index, number in enumerate(raw):
        text = text.replace(f'"\\u0000raw{index}\\u0000"', number, 1)
    return text.encode("utf-8", "surrogatepass")


# Bodies nobody would build on purpose. The app caps bodies at 1 MiB.
RAW_BODIES = st.sampled_from([
    b"", b" ", b"NaN", b"Infinity", b"-Infinity", b"null", b"[]", b"0", b'"text"', b"{", b"}", b"{}",
    b'{"boxId":0,"type":"START_TIMER","sessionId":"s","remaining":NaN}',
    b'{"boxId":Infinity,"type":"INIT_ROUTE"}',
    b'{"boxId":1e999,"type":"INIT_ROUTE","routeIndex":1,"holdsCount":1}',
    b'{"boxId":0,"type":"INIT_ROUTE","routeIndex":2361183241434822606848,"holdsCount":1}',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b'{"boxId":0,"type":"INIT_ROUTE","routeIndex":1,"holdsCount":1,"categorie":"' + b"x" * 1_000_000 + b'"}',
    b'{"boxId":0,"type":"INIT_ROUTE","routeIndex":1,"holdsCount":1,"competitors":[' +
    b",".join([b'{"nume":"n"}'] * 60_000) + b"]}",
    b'{"x":"' + b"y" * (1 << 20) + b'"}',  # just over the cap
    b"\x00" * 2048,
    b'{"boxId":0,"type":"\xff\xfe"}', b'\xef\xbb\xbf{"boxId":0}', b'{"boxId":0,"boxId":"1"}',
    b'{"type":"INIT_ROUTE","boxId":0,"routeIndex":1,"holdsCount":1,"categorie":"\\ud800"}',
    b'{"a":"\x01\x02"}', b"\x80\x81\x82", b"{'boxId': 0}",
])
BODIES = RAW_BODIES | st.binary(max_size=300) | JSON.map(dumps) | st.integers(0, 1 << 21).map(
    lambda n: b'{"pad":"' + b"z" * n + b'"}')

CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data", ""])

# -- plausible commands ------------------------------------------------------------------------

BOX_IDS = st.sampled_from([0, 1, 2]) | st.sampled_from([-1, 10000, 9999, 2**70, "1", 1.5, 1.0, True, None, [0],
                                                         {"id": 0}, float("nan")])
NAMES = st.sampled_from(["Ana Pop", "Ana Pop ", "ANA POP", "Bogdan", "Ștefan", "O'Connor", "a" * 255,
                         "a" * 256, " ", "\x00x", "x\u0007y"]) | st.text(max_size=20)
COMPETITORS = st.lists(st.fixed_dictionaries({"nume": NAMES | JSON},
                                             optional={"club": NAMES | JSON, "marked": st.booleans() | JSON}),
                       max_size=6) | st.lists(JSON, max_size=3) | JSON
SMALL_INTS = st.integers(-3, 120) | HUGE_INTS
NUMBERS = SMALL_INTS | st.floats(-10, 4000) | SPECIAL_FLOATS
DECISIONS = st.sampled_from(["yes", "no", "YES", " no ", "maybe", ""])
FIELD_VALUES: dict[str, st.SearchStrategy] = {
    "routeIndex": SMALL_INTS, "holdsCount": SMALL_INTS, "routesCount": SMALL_INTS,
    "holdsCounts": st.lists(SMALL_INTS, max_size=5), "competitors": COMPETITORS, "categorie": NAMES,
    "timerPreset": st.sampled_from(["05:00", "00:00", "99:99", "5:0", "-1:00", "abc", "１０:００", "59:60"]) | TEXT,
    "remaining": NUMBERS, "delta": NUMBERS, "registeredTime": NUMBERS, "time": NUMBERS,
    "competitor": NAMES, "idx": SMALL_INTS, "competitorIdx": SMALL_INTS, "score": NUMBERS,
    "timeCriterionEnabled": st.booleans(), "timeTiebreakDecision": DECISIONS,
    "timeTiebreakFingerprint": TEXT, "prevRoundsTiebreakDecision": DECISIONS,
    "prevRoundsTiebreakFingerprint": TEXT, "prevRoundsTiebreakLineageKey": TEXT,
    "prevRoundsTiebreakOrder": st.lists(NAMES, max_size=4),
    "prevRoundsTiebreakRanksByName": st.dictionaries(NAMES, SMALL_INTS, max_size=4),
    "resetTimer": st.booleans(), "clearProgress": st.booleans(), "unmarkAll": st.booleans(),
    "actionId": TEXT,
}
COMMANDS = st.fixed_dictionaries(
    {"boxId": BOX_IDS, "type": st.sampled_from(COMMAND_TYPES) | TEXT},
    optional={**{name: values | JSON for name, values in FIELD_VALUES.items()},
              "sessionId": st.just(LIVE) | TEXT | JSON, "boxVersion": st.just(LIVE) | SMALL_INTS | JSON},
)


def _typed(kind: str) -> st.SearchStrategy:
    """A command of one type with only that type's fields, each drawn from plausible values."""
    names = _TYPE_FIELDS[kind] + (("idx", "competitorIdx", "time") if kind == "SUBMIT_SCORE" else ())
    return st.fixed_dictionaries(
        {"boxId": st.sampled_from([0, 1, 2]), "type": st.just(kind), "sessionId": st.just(LIVE) | TEXT},
        optional={**{name: FIELD_VALUES[name] for name in names if name in FIELD_VALUES},
                  "boxVersion": st.just(LIVE) | SMALL_INTS, "actionId": TEXT})


TYPED_COMMANDS = st.sampled_from(COMMAND_TYPES).flatmap(_typed)
# A well-formed route first, so scores, timers and tie-breaks meet an initiated box.
SETUP = {"type": "INIT_ROUTE", "routeIndex": 1, "holdsCount": 20, "routesCount": 2, "holdsCounts": [20, 25],
         "competitors": [{"nume": "Ana Pop"}, {"nume": "Bogdan"}, {"nume": "Ștefan"}], "categorie": "U16"}

# -- admin bodies ------------------------------------------------------------------------------

OFFICIALS = st.fixed_dictionaries({}, optional=dict.fromkeys(OFFICIAL_KEYS, NAMES | JSON)) | JSON
JUDGE_PASSWORD = st.fixed_dictionaries({}, optional={"password": TEXT | JSON, "username": NAMES | JSON}) | JSON
LOGIN = st.fixed_dictionaries({}, optional={"username": st.sampled_from(["admin", "Box 1", "1"]) | TEXT | JSON,
                                            "password": TEXT | JSON}) | JSON

_STATE_KEYS = sorted(default_state("s"))
_TYPED_STATE = {"initiated": st.booleans(), "started": st.booleans(), "timeCriterionEnabled": st.booleans(),
                "holdsCount": SMALL_INTS, "holdCount": NUMBERS, "routeIndex": SMALL_INTS, "routesCount": SMALL_INTS,
                "currentClimber": NAMES, "preparingClimber": NAMES, "categorie": NAMES,
                "timerEndsAtMs": st.none() | SMALL_INTS | st.integers(), "timerRemainingSec": st.none() | NUMBERS,
                "timerPresetSec": st.none() | SMALL_INTS, "recentActionIds": st.lists(TEXT | JSON, max_size=3)}
# Typed keys mostly get values of their type (so restores get through to the deeper code); the
# untyped ones (remaining, lastRegisteredTime, timerPreset, tie-break maps) get anything.
_STATE_VALUES: dict[str, st.SearchStrategy] = {
    **dict.fromkeys(_STATE_KEYS, JSON),
    **{key: values | values | values | JSON for key, values in _TYPED_STATE.items()},
    "sessionId": st.just("restored-session") | JSON, "boxVersion": SMALL_INTS | JSON,
    "competitors": COMPETITORS, "holdsCounts": st.lists(SMALL_INTS, max_size=4) | JSON,
    "scores": st.dictionaries(NAMES, st.lists(NUMBERS | st.none(), max_size=3), max_size=3) | JSON,
    "times": st.dictionaries(NAMES, st.lists(NUMBERS | st.none(), max_size=3), max_size=3) | JSON,
    "timerState": st.sampled_from(["idle", "running", "paused", "RUNNING"]) | JSON,
}
BOX_STATES = st.fixed_dictionaries({"sessionId": _STATE_VALUES["sessionId"], "boxVersion": _STATE_VALUES["boxVersion"]},
                                   optional={k: v for k, v in _STATE_VALUES.items()
                                             if k not in ("sessionId", "boxVersion")})
# Escalada-style snapshots (no "state") and Belay's (with "state"). Boxes 5..7 are the restore targets.
SNAPSHOTS = st.fixed_dictionaries({"boxId": st.sampled_from([5, 6, 7]) | BOX_IDS},
                                  optional={"state": BOX_STATES, **{k: _STATE_VALUES[k] for k in (
                                      "initiated", "holdsCount", "routeIndex", "competitors", "categorie",
                                      "scores", "times", "timerState", "boxVersion", "sessionId")},
                                      "remaining": NUMBERS | JSON, "registeredTime": NUMBERS | JSON,
                                      "routesCount": SMALL_INTS | JSON})
RESTORE = st.fixed_dictionaries({"snapshots": st.lists(SNAPSHOTS, max_size=3) | JSON},
                                optional={"box_ids": st.lists(BOX_IDS, max_size=3) | JSON,
                                          "force": st.just(True) | JSON}) | JSON

SCORE_LISTS = st.lists(NUMBERS | st.none() | TEXT, max_size=4)
SAVE_RANKING = st.fixed_dictionaries(
    {"categorie": NAMES | HOSTILE_TEXT | JSON, "route_count": st.integers(1, 3) | SMALL_INTS | JSON,
     "scores": st.dictionaries(NAMES, SCORE_LISTS | JSON, max_size=4) | JSON},
    optional={"times": st.dictionaries(NAMES, SCORE_LISTS, max_size=3) | JSON,
              "clubs": st.dictionaries(NAMES, NAMES | JSON, max_size=3) | JSON,
              "include_clubs": st.booleans() | JSON, "use_time_tiebreak": st.booleans() | JSON,
              "route_index": SMALL_INTS | JSON, "holds_counts": st.lists(SMALL_INTS, max_size=4) | JSON,
              "active_holds_count": SMALL_INTS | JSON, "box_id": BOX_IDS,
              "time_tiebreak_preference": DECISIONS | JSON, "prev_rounds_tiebreak_orders": JSON,
              "prev_rounds_tiebreak_ranks_by_fingerprint": JSON, "time_tiebreak_decisions": JSON,
              "prev_rounds_tiebreak_resolved_ranks_by_name": JSON}) | JSON

# Multipart parts: (name, payload, filename or None). Known fields most of the time.
_HEADER_SAFE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20)
PART_NAMES = st.sampled_from(["category", "routesCount", "holdsCounts", "include_clubs", "file"]) | _HEADER_SAFE
PART_VALUES = (st.sampled_from([b"U16", b"2", b"[20, 25]", b"[1,2,3]", b"0", b"1000", b"true", b"\xff\xfe",
                                b"Nume,Club\nAna Pop,CS Arad\n", b"PK\x03\x04garbage", b"", b"x" * 70_000])
               | st.binary(max_size=200) | TEXT.map(lambda t: t.encode()))
PARTS = st.lists(st.tuples(PART_NAMES, PART_VALUES,
                           st.none() | st.sampled_from(["a.csv", "../../x.xlsx", "", "c:\\x"]) | _HEADER_SAFE),
                 max_size=8)

# Path segments and query strings, sent already encoded (no client-side normalisation). Anything
# outside printable ASCII is percent-encoded the way a browser would; raw bytes in the request line
# are a protocol-level case of their own (test_protocol_garbage).
SEGMENTS = st.sampled_from(["0", "1", "9999", "10000", "-1", "01", "0001", "00000", "%EF%BC%91", "0x1", "1.0", "1e3",
                            "%201", "%091", "%31", "%2e%2e", "..", ".", "1%2F..%2F2", "%00", "%ff", "%", "%%", "abc",
                            "", "a" * 5000, "%E2%80%AE1", "%C2%B2", "%EF%BC%91%EF%BC%90"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), max_size=12)
QUERIES = st.dictionaries(st.sampled_from(["limit", "boxId", "includePayload", "force", "box_ids", "download",
                                           "token", "x"]) | TEXT,
                          st.sampled_from(["0", "1", "2000", "2001", "-5", "１", "true", "yes", "1e3", "", "0,1",
                                           "1,,2", "a" * 3000]) | TEXT, max_size=4)
RAW_QUERIES = st.sampled_from(["%", "%zz", "limit=%ff", "limit=1&limit=2", "boxId=%00", "&&&", "=", "limit",
                               "boxId=1%2C2", "includePayload=%E2%80%AE"]) | st.text(
    st.characters(min_codepoint=33, max_codepoint=126), max_size=20)

# -- WebSocket frames --------------------------------------------------------------------------

WS_FRAMES = st.one_of(
    st.tuples(st.just("text"), TEXT),
    st.tuples(st.just("text"), JSON.map(lambda v: dumps(v).decode("utf-8", "replace"))),
    st.tuples(st.just("text"), st.fixed_dictionaries(
        {"type": st.sampled_from(["REQUEST_STATE", "PING", "PONG", "INIT_ROUTE", "SUBMIT_SCORE"]) | TEXT},
        optional={"boxId": BOX_IDS | JSON, "timestamp": JSON, "sessionId": TEXT}).map(
        lambda v: dumps(v).decode("utf-8", "replace"))),
    st.tuples(st.just("text"), st.sampled_from([
        "NaN", "{", '{"type":"REQUEST_STATE","boxId":NaN}', '{"type":"PING","timestamp":1e999}',
        '{"type":"PING","timestamp":' + "[" * 200 + "]" * 200 + "}",
        '{"type":"PING","timestamp":' + "[" * 300 + "]" * 300 + "}",
        '{"type":"PING","timestamp":' + "[" * 2000 + "]" * 2000 + "}",
        '{"type":"REQUEST_STATE","boxId":2361183241434822606848}', "x" * 60_000, "y" * 70_000,
        '{"type":"PING","timestamp":"' + "z" * 60_000 + '"}'])),
    st.tuples(st.just("binary"), st.binary(max_size=200)),
    st.tuples(st.just("binary"), st.sampled_from([b"\xff" * 70_000, b'{"type":"REQUEST_STATE"}'])),
)


# -- numbers -----------------------------------------------------------------------------------
# Where request text or JSON becomes a number: the edges of the integer types (2**53, the last
# integer a browser's JavaScript holds exactly; 2**63 and 2**64, where orjson turns to floats and
# refuses to encode), and text no int() should ever see.

THOUSANDS_OF_DIGITS = "9" * 5000  # past Python's 4,300-digit limit of int()
EDGE_INTS = [2**53 - 1, 2**53, 2**53 + 1, -(2**53), 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
             2**64 - 1, 2**64, 2**64 + 1, -(2**64), 10**30, -(10**30), 2**31, 2**31 - 1, 2**32]
EDGE_FLOATS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, -0.0, 0.5, float(2**53), float(2**64), 1e19, -1e19]
RAW_NUMBERS = [RawNumber(t) for t in (THOUSANDS_OF_DIGITS, "1" + "0" * 4300, "-" + THOUSANDS_OF_DIGITS,
                                      "0." + "0" * 5000 + "1", "1e400", "-1e400", "1E+2", "-0", "1e-400",
                                      "123456789012345678901234567890", "1" + "0" * 400)]
JSON_NUMBERS = (st.sampled_from(EDGE_INTS) | st.sampled_from(EDGE_FLOATS) | st.sampled_from(RAW_NUMBERS)
                | st.integers(-(2**65), 2**65) | st.floats(allow_nan=False, allow_infinity=False))

# Numbers as a client types them into a path, a query string or a form field (already URL-safe
# where it matters: callers percent-encode).
NUMERIC_TEXTS = (st.sampled_from([THOUSANDS_OF_DIGITS, "0" * 5000 + "1", "1" + "0" * 4300, "-" + THOUSANDS_OF_DIGITS,
                                  str(2**53), str(2**53 + 1), str(2**63), str(2**64), str(2**64 + 1), "-1", "-0",
                                  " 1", "1 ", "+1", "1_000", "0x10", "1e3", "1.0", "1e400", "١٢", "１", "²", "٣" * 5000,
                                  "9" * 4300, "9" * 4301, "", "0", "00", "2000", "2001", "9999", "10000"])
                 | st.integers(-(2**70), 2**70).map(str)
                 | st.integers(5, 20_000).map(lambda n: "9" * n))
