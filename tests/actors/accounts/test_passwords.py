"""Password hashes: scrypt for new ones, the reference's passlib pbkdf2_sha256 still accepted."""
from __future__ import annotations

import base64
import hashlib
import re

import pytest

from actors.accounts.passwords import hash_password, password_problem, password_rule, unmatchable_hash, verify_password


def ab64(raw: bytes) -> str:
    """passlib's adapted base64, built by hand: '.' instead of '+', no padding."""
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def passlib_style_hash(password: str, salt: bytes, rounds: int = 29000) -> str:
    checksum = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds, dklen=32)
    return f"$pbkdf2-sha256${rounds}${ab64(salt)}${ab64(checksum)}"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("correct horse")


def test_hash_has_the_scrypt_format_and_a_fresh_salt(stored: str) -> None:
    pattern = r"\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}"
    assert re.fullmatch(pattern, stored)
    assert hash_password("correct horse") != stored, "a random salt makes every hash unique"


def test_round_trip_verifies_without_rehash(stored: str) -> None:
    assert verify_password("correct horse", stored) == (True, False)


def test_wrong_password_is_refused(stored: str) -> None:
    assert verify_password("correct horse ", stored) == (False, False)
    assert verify_password("", stored) == (False, False)


def test_tampered_hash_is_refused(stored: str) -> None:
    head, digest = stored.rsplit("$", 1)
    flipped = digest[:5] + ("A" if digest[5] != "A" else "B") + digest[6:]
    assert verify_password("correct horse", f"{head}${flipped}") == (False, False)
    parts = stored.split("$")  # ["", "scrypt", params, salt, hash]
    parts[3] = parts[3][::-1]
    assert verify_password("correct horse", "$".join(parts)) == (False, False)
    parts = stored.split("$")
    parts[2] = "ln=14,r=8,p=2"
    assert verify_password("correct horse", "$".join(parts)) == (False, False)


def test_scrypt_hash_with_older_parameters_verifies_and_asks_for_rehash() -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pw-12345", salt=salt, n=2**10, r=8, p=1, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    assert verify_password("pw-12345", f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(digest)}") == (True, True)
    assert verify_password("wrong", f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(digest)}") == (False, False)


def test_hand_built_pbkdf2_vector_is_accepted_and_flagged_for_rehash() -> None:
    salt = bytes(range(16))
    hashed = passlib_style_hash("Box3-secret", salt)
    assert hashed.startswith("$pbkdf2-sha256$29000$AAECAwQFBgcICQoLDA0ODw$")
    assert verify_password("Box3-secret", hashed) == (True, True)
    assert verify_password("box3-secret", hashed) == (False, False)


def test_pbkdf2_salt_with_dots_is_decoded_as_adapted_base64() -> None:
    # The reference documentation's salt shape: contains '.' (for '+') and '/'.
    salt_text = "N2bM.V.rVQqB0Pq/B2DAGA"
    salt = base64.b64decode(salt_text.replace(".", "+") + "==")
    checksum = ab64(hashlib.pbkdf2_hmac("sha256", "Ștefan".encode(), salt, 29000, dklen=32))
    hashed = f"$pbkdf2-sha256$29000${salt_text}${checksum}"
    assert verify_password("Ștefan", hashed) == (True, True)
    assert verify_password("Stefan", hashed) == (False, False)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "plaintext",
        "$pbkdf2-sha256$29000$N2bM.V.rVQqB0Pq/B2DAGA$",  # no checksum
        "$pbkdf2-sha256$29000$N2bM.V.rVQqB0Pq/B2DAGA$abc",  # checksum of the wrong length
        "$pbkdf2-sha256$abc$N2bM.V.rVQqB0Pq/B2DAGA$" + "A" * 43,  # rounds not a number
        "$pbkdf2-sha256$029000$N2bM.V.rVQqB0Pq/B2DAGA$" + "A" * 43,  # zero-padded rounds
        "$pbkdf2-sha256$99999999999$N2bM.V.rVQqB0Pq/B2DAGA$" + "A" * 43,  # absurd cost
        "$pbkdf2-sha256$29000$N2bM.V.rVQqB0Pq/B2DAGA$" + "A" * 41,  # impossible base64 length
        "$pbkdf2-sha512$29000$N2bM.V.rVQqB0Pq/B2DAGA$" + "A" * 43,  # another algorithm
        "$scrypt$ln=14,r=8,p=1$c2FsdA$",  # no hash
        "$scrypt$ln=14,r=8,p=1$c2FsdA$!!!",  # not base64
        "$scrypt$ln=99,r=8,p=1$c2FsdA$" + "A" * 43,  # 2**99 rounds
        "$scrypt$ln=20,r=999,p=1$c2FsdA$" + "A" * 43,  # memory beyond the cap
        "$scrypt$ln=14,r=8,p=99$c2FsdA$" + "A" * 43,  # CPU beyond the cap
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        "$scrypt$ln=14,r=8,p=1$c2FsdA$" + "A" * 43 + "\n",
    ],
)
def test_garbage_formats_are_refused_without_raising(garbage: str) -> None:
    assert verify_password("anything", garbage) == (False, False)


@pytest.mark.parametrize("not_text", [None, 42, b"$scrypt$", ["x"]])
def test_non_text_inputs_are_refused_without_raising(not_text: object) -> None:
    assert verify_password("anything", not_text) == (False, False)
    assert verify_password(not_text, "$scrypt$ln=14,r=8,p=1$c2FsdA$AAAA") == (False, False)


def test_a_lone_surrogate_in_a_password_is_refused_instead_of_raising() -> None:
    hashed = passlib_style_hash("ok-ok-ok", bytes(16), rounds=1000)
    assert verify_password("\ud800", hashed) == (False, False)


# --- the one password policy -------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "viewer", "judge"])
@pytest.mark.parametrize("weak", [None, 42, "", "   ", "admin", "password", "Password", "changeme", "escalada",
                                  "123456", "QWERTY", " parola ", "x" * 257])
def test_weak_passwords_are_refused_for_every_role(weak: object, role: str) -> None:
    assert password_problem(weak, role) == password_rule(role)


@pytest.mark.parametrize("short", ["7 chars", "ab3-x!"])
def test_admins_and_viewers_need_eight_characters(short: str) -> None:
    assert password_problem(short, "admin") is not None
    assert password_problem(short, "viewer") is not None


def test_judges_need_six_characters_typed_on_a_tablet() -> None:
    assert password_problem("ab3-x!", "judge") is None
    assert password_problem("ab3-x", "judge") is not None
    assert password_problem("  ab3x  ", "judge") is not None, "spaces around do not count"


def test_a_password_equal_to_the_accounts_own_name_is_refused() -> None:
    assert password_problem("Finals A", "judge", ("Finals A", "Box 3", "3")) is not None
    assert password_problem("finals a", "judge", ("Finals A",)) is not None
    assert password_problem("Finals\u00a0A", "judge", ("finals a",)) is not None, "compared as login names are"
    assert password_problem("Finals A", "judge", ("Box 3",)) is None


@pytest.mark.parametrize("fine", ["correct horse", "Box3-secret", "8 chars!", "x" * 256])
def test_reasonable_passwords_are_accepted_for_every_role(fine: str) -> None:
    assert all(password_problem(fine, role) is None for role in ("admin", "viewer", "judge"))


def test_the_rule_states_the_lengths_of_each_role() -> None:
    assert "at least 6 characters" in password_rule("judge")
    assert "at least 8 characters" in password_rule("admin") and "at least 8" in password_rule("viewer")
    assert "at most 256" in password_rule("judge")


def test_an_unmatchable_hash_costs_a_real_verification_and_matches_nothing() -> None:
    dummy = unmatchable_hash()
    assert re.fullmatch(r"\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}", dummy)
    assert dummy != unmatchable_hash()
    assert verify_password("", dummy) == (False, False)
