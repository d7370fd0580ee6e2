"""The bench's server runs with a known signing secret, so every process mints its own admin token."""
from __future__ import annotations

from transport.tokens import TokenService

# Only for the throwaway servers the bench starts on temp dirs.
BENCH_JWT_SECRET = "belay-bench-secret-not-for-real-use-0123456789"
SERVER_ENV = {"JWT_SECRET": BENCH_JWT_SECRET, "DEFAULT_ADMIN_PASSWORD": "bench-admin-password",
              "RATE_LIMITS": "0"}


def admin_headers() -> dict[str, str]:
    token = TokenService(BENCH_JWT_SECRET, 24 * 3600).issue("admin", "admin", [])
    return {"Authorization": f"Bearer {token}"}
