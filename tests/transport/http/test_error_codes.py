"""One table of client-visible codes: actors answer with codes, transport alone picks the status."""
from __future__ import annotations

import pytest

from actors import codes
from actors.messages import Reply
from transport.http import errors
from transport.http.errors import STATUS, ClientError, reply_status


def _codes_of(module: object) -> dict[str, str]:
    return {name: value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}


def test_every_code_an_actor_or_transport_answers_with_has_its_status() -> None:
    every = {**_codes_of(codes), **_codes_of(errors)}
    assert {name: code for name, code in every.items() if code not in STATUS} == {}
    assert set(STATUS) == set(every.values())  # and the table names nothing else


def test_no_two_codes_share_a_spelling() -> None:
    spelled = list(_codes_of(codes).values()) + list(_codes_of(errors).values())
    assert len(spelled) == len(set(spelled))


@pytest.mark.parametrize("code, status", [
    ("invalid_credentials", 401), ("token_expired", 401), ("invalid_token", 401), ("token_revoked", 401),
    ("forbidden_box", 403), ("storage_unavailable", 503), ("box_unavailable", 503), ("shutting_down", 503),
    ("internal_error", 500), ("restore_aborted", 409), ("invalid_command", 400), ("rate_limited", 429),
])
def test_the_codes_clients_know_keep_their_words_and_statuses(code: str, status: int) -> None:
    assert STATUS[code] == status


def test_a_box_answers_with_a_code_and_transport_picks_the_status() -> None:
    assert reply_status(Reply.ok()) == 200
    assert reply_status(Reply.ignored("stale")) == 200
    refused = Reply.error(codes.STORAGE_UNAVAILABLE)
    assert (reply_status(refused), refused.body) == (503, {"detail": "storage_unavailable"})
    worded = Reply.error(codes.INVALID_COMMAND, "Invalid command: boxId is required")
    assert (reply_status(worded), worded.body) == (400, {"detail": "Invalid command: boxId is required"})


def test_a_refusal_reads_as_its_code_unless_it_has_words_of_its_own() -> None:
    plain = ClientError(codes.USER_NOT_FOUND)
    assert (plain.status_code, plain.detail) == (404, "user_not_found")
    worded = ClientError(codes.RESTORE_REFUSED, "box 3 cannot be restored: too far ahead")
    assert (worded.status_code, worded.detail) == (400, "box 3 cannot be restored: too far ahead")


def test_a_code_without_a_status_is_a_bug_found_where_it_is_raised() -> None:
    with pytest.raises(KeyError):
        ClientError("a code nobody gave a status")
