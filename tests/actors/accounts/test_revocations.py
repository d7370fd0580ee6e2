"""Logged-out sessions: kept until no token of theirs could be valid, malformed entries skipped."""
from __future__ import annotations

import copy

import pytest

from actors.accounts.revocations import load_revoked, revoked_document, with_revoked

NOW = 1_700_000_000


def test_a_revocation_is_kept_until_its_expiry_and_then_pruned() -> None:
    revoked = with_revoked({}, "s1", NOW + 60, NOW)
    assert revoked == {"s1": NOW + 60}
    later = with_revoked(revoked, "s2", NOW + 500, NOW + 60)
    assert later == {"s2": NOW + 500}, "s1's tokens have all expired by now"


def test_revoking_again_never_shortens_a_revocation() -> None:
    revoked = with_revoked({}, "s1", NOW + 600, NOW)
    assert with_revoked(revoked, "s1", NOW + 60, NOW) == {"s1": NOW + 600}
    assert with_revoked(revoked, "s1", NOW + 900, NOW) == {"s1": NOW + 900}


def test_inputs_are_never_mutated() -> None:
    revoked = {"s1": NOW + 1}
    before = copy.deepcopy(revoked)
    with_revoked(revoked, "s2", NOW + 5, NOW + 2)
    assert revoked == before


def test_the_document_round_trips_without_expired_entries() -> None:
    revoked = {"s1": NOW + 10, "s2": NOW + 20}
    assert load_revoked(revoked_document(revoked), NOW) == revoked
    assert load_revoked(revoked_document(revoked), NOW + 10) == {"s2": NOW + 20}


@pytest.mark.parametrize("junk", [None, 3, "x", [], {"sessions": []}, {"sessions": "s1"},
                                  {"sessions": {"s1": "soon", "": NOW + 9, "s" * 300: NOW + 9, "s2": True,
                                                "s3": 1.5e12}}])
def test_malformed_documents_load_as_nothing_revoked(junk: object) -> None:
    assert load_revoked(junk, NOW) == {}
