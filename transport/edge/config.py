"""An edge's configuration: the server settings it shares with the core, plus Redis and the key."""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass

from actors.accounts.tokens import is_weak_secret
from transport.config import OPTIONS, REDIS_OPTIONS, SECRET_ENV, Config, ConfigError, load_config

# The core's flags an edge takes too (same meaning, same environment variables).
SHARED_FLAGS = ("--host", "--port", "--log-level", "--allowed-origins", "--allowed-origin-regex",
                "--trusted-proxies", "--metrics-port", "--metrics-host")
SPECTATOR_SECRET_ENV = SECRET_ENV["spectator_jwt_secret"]
LOGIN_SECRET_ENV = SECRET_ENV["jwt_secret"]


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    server: Config  # host, port, log level, origins and the socket limits, read as the core reads them
    redis_url: str
    spectator_jwt_secret: str

    @property
    def redis_prefix(self) -> str:
        return self.server.redis_prefix


def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, env, _name, help_text in (*(row for row in OPTIONS if row[0] in SHARED_FLAGS), *REDIS_OPTIONS):
        if flag == "--redis-url":
            help_text = "the Redis the core publishes to (required; redis:// or rediss://, user and password in it)"
        elif flag == "--metrics-port":
            help_text = "serve /metrics without a login on this port (0 picks a free one); default: no /metrics"
        parser.add_argument(flag, default=None, help=f"{help_text} [env {env}]")


def load_edge_config(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> EdgeConfig:
    if environ.get(LOGIN_SECRET_ENV):
        # The login key signs admin and judge tokens: a compromised edge must hold nothing but the
        # spectators' key.
        raise ConfigError(f"{LOGIN_SECRET_ENV} is set: an edge must not hold the key that signs login tokens. "
                          f"Unset it here; edges need only {SPECTATOR_SECRET_ENV}")
    server = load_config(args, environ)
    if not server.redis_url:
        raise ConfigError("an edge needs --redis-url (or REDIS_URL): the Redis its core publishes to")
    secret = server.spectator_jwt_secret
    if not secret:
        raise ConfigError(f"an edge needs {SPECTATOR_SECRET_ENV}: the same value as the core's, so a spectator "
                          f"token works on every edge")
    if server.production and is_weak_secret(secret):
        raise ConfigError(f"{SPECTATOR_SECRET_ENV} is weak: use at least 32 random characters")
    return EdgeConfig(server, server.redis_url, secret)
