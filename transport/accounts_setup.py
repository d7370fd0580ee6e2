"""Start-up of accounts and tokens: the signing secret, production checks, the first admin."""
from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timezone
from typing import Callable

from actors.accounts import AccountsActor, new_epoch
from actors.persister import Persister
from actors.revocations import load_revoked
from actors.users import load_users, needs_admin, with_admin
from persistence.storage import Storage
from transport.config import Config
from transport.hashing import Hashing
from transport.passwords import hash_password, is_weak_password
from transport.tokens import TokenService, is_weak_secret, load_or_create_secret

log = logging.getLogger("belay.accounts")


class StartupRefused(RuntimeError):
    """A setting that must not run in production; the message says which and what to do."""


def now_iso() -> str:
    return datetime.now().astimezone(timezone.utc).isoformat()


def check_production(config: Config) -> None:
    if not config.production:
        if config.default_admin_password is not None and is_weak_password(config.default_admin_password):
            log.warning("DEFAULT_ADMIN_PASSWORD is weak; production mode (ENV=production) would refuse it")
        return
    if config.jwt_secret is not None and is_weak_secret(config.jwt_secret):
        raise StartupRefused("JWT_SECRET is weak: use at least 32 random characters, or unset it and "
                             "Belay generates one in the storage directory")
    if config.default_admin_password is not None and is_weak_password(config.default_admin_password):
        raise StartupRefused("DEFAULT_ADMIN_PASSWORD is weak or a default: choose another, or unset it "
                             "and Belay prints a generated one once")


def token_service(config: Config) -> TokenService:
    secret = load_or_create_secret(config.storage_dir, config.jwt_secret)
    return TokenService(secret, int(config.token_ttl_min * 60))


async def start_accounts(config: Config, storage: Storage, persister: Persister, hashing: Hashing,
                         on_change: Callable[[], None]) -> AccountsActor:
    users = load_users(await storage.read_document("users"))
    if needs_admin(users):
        password = config.default_admin_password or secrets.token_urlsafe(12)
        created = with_admin(users, await hashing.run(hash_password, password), now_iso(), new_epoch())
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
