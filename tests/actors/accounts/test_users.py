"""users.json records: canonical names, the reference's login lookup, judge accounts per box."""
from __future__ import annotations

import copy

import pytest

from actors.accounts.records import (
    LAST_ADMIN,
    USER_NOT_FOUND,
    aliases_of,
    canonical_username,
    find_user,
    load_users,
    login_identity,
    needs_admin,
    public_boxes,
    session_keys,
    with_active,
    with_admin,
    with_judge_password,
    with_new_password,
    with_password_hash,
    without_user,
)

T0, T1, T2 = "2025-05-01T08:00:00Z", "2025-05-02T09:00:00Z", "2025-05-03T10:00:00Z"


def record(username: str, role: str = "judge", boxes: list[int] | None = None, **extra: object) -> dict:
    return {"username": username, "password_hash": f"hash-of-{username}", "role": role,
            "assigned_boxes": boxes or [], "is_active": True, "created_at": T0, "updated_at": T0} | extra


@pytest.mark.parametrize(
    "raw, canonical",
    [
        ("Box 3", "Box 3"),
        ("Box\u00a03", "Box 3"),  # NBSP
        ("Box\u200b 3\u200b", "Box 3"),  # zero-width spaces are format characters
        ("\ufeffBox 3", "Box 3"),  # a BOM pasted from a spreadsheet
        ("  Box \t\n 3  ", "Box 3"),
        ("Ｂｏｘ ３", "Box 3"),  # full-width forms (NFKC)
        ("Ștefan", "Ștefan"),
        ("S\u0326tefan", "\u0218tefan"),  # S + combining comma below, composed by NFKC
        ("", ""),
        ("\u200b \u00a0", ""),
    ],
)
def test_canonical_username(raw: str, canonical: str) -> None:
    assert canonical_username(raw) == canonical


def test_canonical_username_keeps_case() -> None:
    assert canonical_username("BOX 3") == "BOX 3"


# --- lookup order (reference §6.2) ------------------------------------------------------------

@pytest.fixture
def users() -> dict:
    return load_users({
        "admin": record("admin", "admin"),
        "Box 3": record("Box 3", boxes=[3]),
        "3": record("3", boxes=[3]),
        "Box 7": record("Box 7", boxes=[7]),
        "Youth Girls A": record("Youth Girls A", boxes=[5]),
    })


@pytest.mark.parametrize(
    "typed, key",
    [
        ("admin", "admin"),
        ("ADMIN", "admin"),  # casefold
        ("3", "3"),  # exact
        ("Box 3", "Box 3"),
        ("box 3", "Box 3"),  # casefold of canonical forms
        ("Box\u00a03", "Box 3"),  # canonical
        (" 3 ", "3"),
        ("7", "Box 7"),  # digits fall back to "Box n"
        (" 7\u200b", "Box 7"),
        ("BOX 7", "Box 7"),
        ("Ｂｏｘ ７", "Box 7"),  # the normalised (NFKC) form of a name
        ("youth\u200b girls a", "Youth Girls A"),
    ],
)
def test_lookup_finds(users: dict, typed: str, key: str) -> None:
    found = find_user(users, typed)
    assert found is not None and found[0] == key
    assert found[1] is users[key]


@pytest.mark.parametrize("typed", ["", "   ", "\u200b", "Box 4", "4", "admi", "12345", "9" * 5000])
def test_lookup_misses(users: dict, typed: str) -> None:
    assert find_user(users, typed) is None


@pytest.mark.parametrize("typed", ["07", "007", "0007", "Box 07", "box 007", "٧", "۷", "७", "７", "⁷", "Box ٧"])
def test_a_box_number_counts_only_in_ascii_digits_without_leading_zeros(users: dict, typed: str) -> None:
    # These all used to reach box 7's judge, each spelling with its own five tries.
    assert find_user(users, typed) is None


def test_box_zero_is_a_plain_number() -> None:
    users = load_users({"Box 0": record("Box 0", boxes=[0])})
    assert find_user(users, "0")[0] == "Box 0"  # type: ignore[index]
    assert find_user(users, "00") is None


def test_a_name_stored_with_non_ascii_digits_still_logs_in_as_typed() -> None:
    users = load_users({"Grupa ٣": record("Grupa ٣", boxes=[3])})
    assert find_user(users, "grupa ٣")[0] == "Grupa ٣"  # type: ignore[index]


def test_exact_key_beats_canonical_and_casefold_matches() -> None:
    users = load_users({"Box 3": record("Box 3", boxes=[3]), "box 3": record("box 3", boxes=[9]),
                        "Box  3": record("Box  3", boxes=[8])})
    assert find_user(users, "box 3")[0] == "box 3"  # type: ignore[index]
    assert find_user(users, "Box  3")[0] == "Box  3"  # type: ignore[index]
    assert find_user(users, "Box   3")[0] == "Box 3"  # type: ignore[index]


def test_digits_prefer_the_bare_key_over_box_n() -> None:
    users = load_users({"Box 2": record("Box 2", boxes=[2]), "2": record("2", boxes=[20])})
    assert find_user(users, "2")[0] == "2"  # type: ignore[index]


# --- what a login attempt is guessing at (the throttle's key) ---------------------------------------

def test_every_spelling_of_a_judge_is_one_identity() -> None:
    users, _, _ = with_judge_password(load_users({"admin": record("admin", "admin")}), 2, "U16 Fete", "h2", T1, "e1")
    ids = {login_identity(find_user(users, typed), typed) for typed in ("Box 2", "2", "box 2", " BOX\u00a02 ",
                                                                        "U16 Fete", "u16 fete")}
    assert len(ids) == 1
    assert login_identity(find_user(users, "admin"), "admin") not in ids


def test_a_new_password_is_a_new_identity() -> None:
    users, _, _ = with_judge_password({}, 2, None, "old", T1, "e1")
    before = login_identity(find_user(users, "2"), "2")
    users, _, _ = with_judge_password(users, 2, None, "new", T2, "e2")
    assert login_identity(find_user(users, "2"), "2") != before


def test_unknown_names_are_counted_like_known_ones() -> None:
    assert login_identity(None, "Ghost") == login_identity(None, " ghost\u200b")
    assert login_identity(None, "9") == login_identity(None, "Box 9"), "as the aliases of a real judge would be"
    assert login_identity(None, "Ghost") != login_identity(None, "Ghoul")
    assert login_identity(None, "Ghost").startswith("name:")


# --- loading users.json -------------------------------------------------------------------------

def test_legacy_list_form_is_keyed_by_username() -> None:
    users = load_users([record("admin", "admin"), record("Box 1", boxes=[1])])
    assert list(users) == ["admin", "Box 1"]
    assert users["Box 1"]["assigned_boxes"] == [1]


def test_missing_fields_get_reference_defaults() -> None:
    users = load_users({"guest": {"password_hash": "h"}})
    assert users == {"guest": {"username": "guest", "password_hash": "h", "role": "viewer", "assigned_boxes": [],
                               "is_active": True, "created_at": None, "updated_at": None, "token_epoch": ""}}


def test_bad_records_are_skipped_and_bad_fields_cleaned() -> None:
    raw = {
        "no-hash": {"username": "no-hash", "role": "judge"},
        "empty-hash": {"password_hash": ""},
        "numeric-hash": {"password_hash": 123},
        "superuser": {"password_hash": "h", "role": "root"},  # unknown role: skipped, never guessed
        "spectator": {"password_hash": "h", "role": "spectator"},
        "listed-role": {"password_hash": "h", "role": ["admin"]},
        "not-a-dict": ["password_hash", "h"],
        "   ": {"password_hash": "h"},
        "ok": {"password_hash": "h", "role": "judge", "assigned_boxes": [1, "2", True, 1, 10000, -1, 2.0, 4],
               "is_active": "no", "created_at": 5},
    }
    users = load_users(raw)
    assert list(users) == ["ok"]
    assert users["ok"]["assigned_boxes"] == [1, 4]
    assert users["ok"]["is_active"] is False, "anything but a real boolean fails closed"
    assert users["ok"]["created_at"] is None


@pytest.mark.parametrize("junk", [None, 3, "users", b"{}", [None, 1, "x"], {1: {"password_hash": "h"}}])
def test_junk_files_load_as_no_users(junk: object) -> None:
    assert load_users(junk) == {}


def test_explicit_null_is_active_means_active() -> None:
    assert load_users({"a": {"password_hash": "h", "is_active": None}})["a"]["is_active"] is True
    assert load_users({"a": {"password_hash": "h", "is_active": False}})["a"]["is_active"] is False


def test_loading_never_mutates_its_input() -> None:
    raw = {"a": {"password_hash": "h", "assigned_boxes": [1, "x"]}}
    before = copy.deepcopy(raw)
    users = load_users(raw)
    users["a"]["assigned_boxes"].append(9)
    assert raw == before


def test_public_boxes_returns_valid_box_ids_only() -> None:
    assert public_boxes({"assigned_boxes": [3, "4", None, 5]}) == [3, 5]
    assert public_boxes({"assigned_boxes": "3"}) == []
    assert public_boxes({}) == []


# --- admin bootstrap ----------------------------------------------------------------------------

def test_admin_is_added_once() -> None:
    users = load_users({"Box 1": record("Box 1", boxes=[1])})
    added = with_admin(users, "admin-hash", T1, "e1")
    assert added is not None and "admin" not in users
    assert added["admin"] == {"username": "admin", "password_hash": "admin-hash", "role": "admin",
                              "assigned_boxes": [], "is_active": True, "created_at": T1, "updated_at": T1,
                              "token_epoch": "e1"}
    assert with_admin(added, "other", T2, "e2") is None


def test_a_removed_admin_is_not_created_again_while_another_admin_is_active() -> None:
    users = load_users({"boss": record("boss", "admin")})
    assert not needs_admin(users) and with_admin(users, "h", T1, "e") is None
    disabled = load_users({"boss": record("boss", "admin", is_active=False)})
    assert needs_admin(disabled), "nobody could log in: the bootstrap admin comes back"


# --- judge passwords per box (reference §6.3) ---------------------------------------------------

def test_judge_password_writes_three_records_for_the_default_name() -> None:
    users, reply, moved = with_judge_password({}, 3, None, "h3", T1, "e1")
    assert reply == {"status": "ok", "boxId": 3, "username": "Box 3", "alias": "Box 3", "id_alias": "3"}
    assert moved == {}
    assert sorted(users) == ["3", "Box 3"], "the default name is the alias itself"
    assert users["3"] == {"username": "3", "password_hash": "h3", "role": "judge", "assigned_boxes": [3],
                          "is_active": True, "created_at": T1, "updated_at": T1, "token_epoch": "e1"}


def test_judge_password_with_a_custom_name_writes_three_keys() -> None:
    users, reply, _ = with_judge_password({}, 3, " Youth\u00a0Girls A\u200b", "h3", T1, "e1")
    assert reply["username"] == "Youth Girls A"
    assert sorted(users) == ["3", "Box 3", "Youth Girls A"]
    strip = lambda r: {k: v for k, v in r.items() if k != "username"}  # noqa: E731
    assert strip(users["Youth Girls A"]) == strip(users["Box 3"]) == strip(users["3"])
    for typed in ("3", "Box 3", "box 3", "youth girls a"):
        assert find_user(users, typed)[1]["assigned_boxes"] == [3]  # type: ignore[index]


def test_blank_custom_name_falls_back_to_box_n() -> None:
    assert with_judge_password({}, 4, " \u200b ", "h", T1, "e1")[1]["username"] == "Box 4"


def test_reset_keeps_the_earliest_created_at_and_renews_updated_at() -> None:
    users = load_users({"Box 3": record("Box 3", boxes=[3], created_at=T1),
                        "3": record("3", boxes=[3], created_at=T0)})
    updated, _, _ = with_judge_password(users, 3, "Lead Finals", "new", T2, "e2")
    for key in ("Lead Finals", "Box 3", "3"):
        assert updated[key]["created_at"] == T0
        assert updated[key]["updated_at"] == T2
        assert updated[key]["password_hash"] == "new"


def test_judge_password_moves_a_name_from_another_box() -> None:
    users, _, _ = with_judge_password({}, 1, "Seniors", "h1", T1, "e1")
    moved_users, reply, moved = with_judge_password(users, 2, "Seniors", "h2", T2, "e2")
    assert moved_users["Seniors"]["assigned_boxes"] == [2]
    assert moved_users["Seniors"]["token_epoch"] == "e2", "the old sessions under the name end"
    assert moved_users["Box 1"] == users["Box 1"] and moved_users["1"] == users["1"], "box 1 keeps its aliases"
    assert reply["movedFrom"] == 1 and moved == {"Seniors": [1]}


def test_a_moved_name_spelled_with_another_case_replaces_the_old_record() -> None:
    users, _, _ = with_judge_password({}, 1, "seniors", "h1", T1, "e1")
    moved_users, reply, moved = with_judge_password(users, 2, "Seniors", "h2", T2, "e2")
    assert "seniors" not in moved_users, "the old spelling would still log in to box 1"
    assert find_user(moved_users, "seniors") == ("Seniors", moved_users["Seniors"])
    assert reply["movedFrom"] == 1 and moved == {"seniors": [1]}


def test_setting_a_box_password_ends_every_session_of_that_boxs_judges() -> None:
    users, _, _ = with_judge_password({}, 3, "Qualis", "old", T0, "e0")
    users = {**users, "alice": record("alice", boxes=[3, 4], token_epoch="a0"),
             "bob": record("bob", boxes=[4], token_epoch="b0"),
             "tv": record("tv", "viewer", boxes=[3], token_epoch="t0")}
    updated, reply, moved = with_judge_password(users, 3, "Finals", "new", T1, "e1")
    assert moved == {} and "movedFrom" not in reply
    for key in ("Finals", "Box 3", "3", "Qualis"):
        assert (updated[key]["password_hash"], updated[key]["token_epoch"]) == ("new", "e1"), key
    assert updated["alice"]["token_epoch"] == "e1", "a judge of box 3 too: its sessions end"
    assert updated["alice"]["password_hash"] == "hash-of-alice", "its own password is its own"
    assert updated["bob"] == users["bob"] and updated["tv"] == users["tv"]


def test_a_judge_holding_the_name_for_several_boxes_moves_here() -> None:
    users = load_users({"alice": record("alice", boxes=[2, 3], token_epoch="a0")})
    updated, reply, moved = with_judge_password(users, 3, "Alice", "h", T1, "e1")
    assert updated["Alice"]["assigned_boxes"] == [3] and "alice" not in updated
    assert reply["movedFrom"] == 2 and moved == {"alice": [2, 3]}


@pytest.mark.parametrize("taken", ["admin", "Admin", "ADMIN\u200b", "Coach"])
def test_judge_password_never_overwrites_an_admin_or_viewer(taken: str) -> None:
    users = load_users({"admin": record("admin", "admin"), "coach": record("coach", "viewer")})
    before = copy.deepcopy(users)
    with pytest.raises(ValueError, match="username_taken"):
        with_judge_password(users, 3, taken, "h", T1, "e1")
    assert users == before


def test_judge_password_never_overwrites_a_viewer_holding_an_alias() -> None:
    users = load_users({"Box 3": record("Box 3", "viewer")})
    with pytest.raises(ValueError, match="username_taken"):
        with_judge_password(users, 3, "Finals", "h", T1, "e1")


@pytest.mark.parametrize("own", ["Box 3", "box 3", "3", "Box 03", "Finals 5", "Box 3 Lead"])
def test_judge_password_may_use_its_own_aliases_or_any_other_name(own: str) -> None:
    users, _, _ = with_judge_password({}, 3, own, "h3", T1, "e1")
    assert find_user(users, own)[1]["assigned_boxes"] == [3]  # type: ignore[index]


@pytest.mark.parametrize("box_id", [-1, 10000, True, "3"])
def test_judge_password_rejects_invalid_box_ids(box_id: object) -> None:
    with pytest.raises(ValueError, match="invalid_box"):
        with_judge_password({}, box_id, None, "h", T1, "e1")  # type: ignore[arg-type]


def test_judge_password_never_mutates_its_input() -> None:
    users = load_users({"Box 3": record("Box 3", boxes=[3]), "admin": record("admin", "admin")})
    before = copy.deepcopy(users)
    updated, _, _ = with_judge_password(users, 3, "Finals", "h", T1, "e1")
    assert users == before and updated is not users


# --- rehash on login ----------------------------------------------------------------------------

def test_rehash_updates_a_judge_and_its_aliases_only() -> None:
    users, _, _ = with_judge_password(load_users({"admin": record("admin", "admin")}), 3, "Finals", "old", T1, "e1")
    before = copy.deepcopy(users)
    updated = with_password_hash(users, "3", "new", T2)
    assert users == before
    assert {k: r["password_hash"] for k, r in updated.items()} == {
        "admin": "hash-of-admin", "Finals": "new", "Box 3": "new", "3": "new"}
    assert updated["3"]["updated_at"] == T2 and updated["admin"]["updated_at"] == T0


def test_rehash_of_a_vanished_user_changes_nothing() -> None:
    users = load_users({"admin": record("admin", "admin")})
    assert with_password_hash(users, "ghost", "new", T2) == users


def test_rehash_keeps_the_sessions() -> None:
    users, _, _ = with_judge_password({}, 3, None, "old", T1, "e1")
    assert {r["token_epoch"] for r in with_password_hash(users, "3", "new", T2).values()} == {"e1"}


# --- organiser changes: password, disable, remove (every one ends the account's sessions) ------

def judge_and_admins() -> dict:
    users, _, _ = with_judge_password(load_users({"admin": record("admin", "admin", token_epoch="a0"),
                                                  "tv": record("tv", "viewer", token_epoch="t0")}),
                                      3, "Finals", "h3", T1, "e1")
    return users


def test_a_judges_names_are_one_account() -> None:
    users = {**judge_and_admins(), "other": record("other", boxes=[3])}
    assert sorted(aliases_of(users, "Box 3")) == ["3", "Box 3", "Finals"]
    assert aliases_of(users, "admin") == ["admin"]
    with pytest.raises(ValueError, match=USER_NOT_FOUND):
        aliases_of(users, "ghost")


def test_a_new_password_gives_the_account_and_its_aliases_a_new_epoch() -> None:
    users = judge_and_admins()
    updated = with_new_password(users, "3", "new", T2, "e2")
    for key in ("3", "Box 3", "Finals"):
        assert (updated[key]["password_hash"], updated[key]["token_epoch"], updated[key]["updated_at"]) == \
            ("new", "e2", T2)
    assert updated["admin"] == users["admin"] and updated["tv"] == users["tv"]


def test_disabling_ends_sessions_and_enabling_starts_a_new_epoch() -> None:
    users = judge_and_admins()
    disabled = with_active(users, "Finals", False, T2, "e2")
    assert all(not disabled[k]["is_active"] and disabled[k]["token_epoch"] == "e2" for k in ("3", "Box 3", "Finals"))
    assert set(session_keys(disabled)) == {"admin", "tv"}
    assert with_active(disabled, "Finals", False, T2, "e3") == disabled, "already disabled: nothing changes"
    enabled = with_active(disabled, "3", True, T2, "e4")
    assert session_keys(enabled)["Box 3"] == ("judge", (3,), "e4")


def test_removing_a_judge_removes_all_its_names() -> None:
    users = judge_and_admins()
    updated, removed = without_user(users, "Box 3")
    assert sorted(removed) == ["3", "Box 3", "Finals"] and sorted(updated) == ["admin", "tv"]


def test_the_last_active_admin_can_be_neither_disabled_nor_removed() -> None:
    users = judge_and_admins()
    with pytest.raises(ValueError, match=LAST_ADMIN):
        with_active(users, "admin", False, T2, "e2")
    with pytest.raises(ValueError, match=LAST_ADMIN):
        without_user(users, "admin")
    two = {**users, "boss": record("boss", "admin")}
    assert "admin" not in without_user(two, "admin")[0]
    assert with_active(two, "admin", False, T2, "e2")["admin"]["is_active"] is False


def test_session_keys_are_role_boxes_and_epoch_of_active_accounts() -> None:
    users = load_users({"a": record("a", "admin", token_epoch="x"), "j": record("j", boxes=[2, 1]),
                        "off": record("off", "viewer", is_active=False)})
    assert session_keys(users) == {"a": ("admin", (), "x"), "j": ("judge", (2, 1), "")}


def test_the_issues_example_moves_box_1s_alias_to_box_2() -> None:
    """POST /api/admin/auth/boxes/2/password {"username": "Box 1"}: the name moves, box 1 keeps "1"."""
    users, _, _ = with_judge_password({}, 1, "Lead", "h1", T1, "e1")
    updated, reply, moved = with_judge_password(users, 2, "Box 1", "h2", T2, "e2")
    assert reply["movedFrom"] == 1 and moved == {"Box 1": [1]}
    assert updated["Box 1"]["assigned_boxes"] == [2] and updated["Box 1"]["password_hash"] == "h2"
    assert updated["1"] == users["1"] and updated["Lead"] == users["Lead"]
