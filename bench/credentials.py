"""The bench's server runs with a known signing secret and an admin whose token epoch is known, so
every process mints its own admin token (a token must match a current account)."""
from __future__ import annotations

from pathlib import Path

import orjson

from actors.accounts.tokens import TokenService

# Only for the throwaway servers the bench starts on temp dirs.
BENCH_JWT_SECRET = "belay-bench-secret-not-for-real-use-0123456789"
BENCH_ADMIN_PASSWORD = "bench-admin-password"
BENCH_TOKEN_EPOCH = "bench"
SERVER_ENV = {"JWT_SECRET": BENCH_JWT_SECRET, "DEFAULT_ADMIN_PASSWORD": BENCH_ADMIN_PASSWORD,
              "RATE_LIMITS": "0"}


def admin_token() -> str:
    return TokenService(BENCH_JWT_SECRET, 24 * 3600).issue("admin", "admin", [], uid="admin", ep=BENCH_TOKEN_EPOCH)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token()}"}


def seed_admin(storage_dir: Path) -> None:
    """Before the server's first start on `storage_dir`: the admin account the bench's tokens name."""
    path = storage_dir / "users.json"
    if path.exists():
        return
    from actors.accounts.passwords import hash_password

    record = {"username": "admin", "password_hash": hash_password(BENCH_ADMIN_PASSWORD), "role": "admin",
              "assigned_boxes": [], "is_active": True, "created_at": None, "updated_at": None,
              "token_epoch": BENCH_TOKEN_EPOCH}
    path.write_bytes(orjson.dumps({"admin": record}))
