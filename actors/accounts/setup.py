"""Start-up of accounts and tokens: the signing secret, production checks, the first admin."""
from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from actors.accounts.actor import AccountsActor, new_epoch
from actors.accounts.hashing import Hashing
from actors.accounts.passwords import hash_password, password_problem
from actors.accounts.records import ADMIN_NAME, load_users, needs_admin, with_admin
from actors.accounts.revocations import load_revoked
from actors.accounts.tokens import (
    SPECTATOR_SECRET_FILE,
    SPECTATOR_TTL_S,
    TokenService,
    is_weak_secret,
    load_or_create_secret,
)
from actors.persister import Persister
from persistence.storage import Storage

log = logging.getLogger("belay.accounts")

STARTUP = "start-up"  # whom the first admin's hash is made for, in place of a client address


class AccountSettings(Protocol):
    """The settings read here (transport's Config has them; actors never import transport)."""

    @property
    def storage_dir(self) -> Path: ...
    @property
    def jwt_secret(self) -> str | None: ...
    @property
    def spectator_jwt_secret(self) -> str | None: ...
    @property
    def token_ttl_min(self) -> float: ...
    @property
    def default_admin_password(self) -> str | None: ...
    @property
    def production(self) -> bool: ...


class StartupRefused(RuntimeError):
    """A setting that must not run in production; the message says which and what to do."""


def now_iso() -> str:
    return datetime.now().astimezone(UTC).isoformat()


def check_production(config: AccountSettings) -> None:
    if config.spectator_jwt_secret is not None and config.spectator_jwt_secret == config.jwt_secret:
        # Edges hold the spectator key: with one key for both, a compromised edge could sign an admin token.
        raise StartupRefused("SPECTATOR_JWT_SECRET must differ from JWT_SECRET")
    problem = None
    if config.default_admin_password is not None:
        problem = password_problem(config.default_admin_password, "admin", (ADMIN_NAME,))
    if not config.production:
        if problem is not None:
            log.warning("DEFAULT_ADMIN_PASSWORD is weak (%s); production mode (ENV=production) would refuse it",
                        problem)
        return
    for name, secret in (("JWT_SECRET", config.jwt_secret), ("SPECTATOR_JWT_SECRET", config.spectator_jwt_secret)):
        if secret is not None and is_weak_secret(secret):
            raise StartupRefused(f"{name} is weak: use at least 32 random characters, or unset it and "
                                 f"Belay generates one in the storage directory")
    if problem is not None:
        raise StartupRefused(f"DEFAULT_ADMIN_PASSWORD is weak: {problem}. Choose another, or unset it "
                             f"and Belay prints a generated one once")


def token_service(config: AccountSettings) -> TokenService:
    secret = load_or_create_secret(config.storage_dir, config.jwt_secret)
    return TokenService(secret, int(config.token_ttl_min * 60))


def spectator_token_service(config: AccountSettings) -> TokenService:
    """Spectator tokens only. Edges sign them with the same SPECTATOR_JWT_SECRET; without it the
    core keeps its own in the storage directory (then only the core's spectators are served)."""
    secret = load_or_create_secret(config.storage_dir, config.spectator_jwt_secret, SPECTATOR_SECRET_FILE)
    return TokenService(secret, SPECTATOR_TTL_S)


async def start_accounts(config: AccountSettings, storage: Storage, persister: Persister, hashing: Hashing,
                         on_change: Callable[[], None]) -> AccountsActor:
    users = load_users(await storage.read_document("users"))
    if needs_admin(users):
        password = config.default_admin_password or secrets.token_urlsafe(12)
        created = with_admin(users, await hashing.run(STARTUP, hash_password, password), now_iso(), new_epoch())
        if created is not None:
            await persister.write_document("users", created)
            users = created
            if config.default_admin_password is None:
                # Shown once; only its hash is stored.
                log.warning("created user 'admin' with the generated password %s (shown only now)", password)
            else:
                log.info("created user 'admin' from DEFAULT_ADMIN_PASSWORD")
    revoked = load_revoked(await storage.read_document("revocations"), time.time())
    return AccountsActor(users, persister, revoked=revoked, on_change=on_change)
