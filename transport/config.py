"""Server configuration: one frozen value built from flags and environment variables."""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from persistence.factory import DEFAULT_DATABASE_SCHEMA, StorageSettings, database_problem, mode_problem
from transport.broker.wire import DEFAULT_PREFIX, PREFIX_PATTERN

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


# LAN-friendly: the UI is served from another port (Vite on 5173) of a venue machine.
DEFAULT_ORIGIN_REGEX = (
    r"^https?://(localhost|127\.0\.0\.1|\[::1\]|([a-z0-9-]+\.)+local"
    r"|10\.\d{1,3}\.\d{1,3}\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}\.\d{1,3}|192\.168\.\d{1,3}\.\d{1,3})"
    r"(:\d{1,5})?$"
)


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8000
    storage_mode: str = "json"
    storage_dir: Path = Path("data")
    reset_boxes_on_start: bool = False
    max_audit_file_mb: float = 50.0
    # Checkpoints are coalesced: a dirty box is written at most this often.
    checkpoint_interval_s: float = 1.0
    ws_ping_interval_s: float = 30.0
    # A socket whose unsent data stays above the limit this long is dropped (its buffer is full: no close
    # frame could reach it).
    ws_max_pending_bytes: int = 1 << 20
    ws_stall_timeout_s: float = 5.0
    max_body_bytes: int = 1 << 20
    log_level: str = "INFO"
    # Accounts and tokens. Secrets come from the environment only (flags show up in `ps`).
    jwt_secret: str | None = None
    token_ttl_min: float = 720.0  # a competition day
    default_admin_password: str | None = None
    production: bool = False
    cookie_secure: bool = False
    cookie_samesite: str = "lax"
    allowed_origins: str = "http://localhost:5173,http://localhost:3000"
    allowed_origin_regex: str = DEFAULT_ORIGIN_REGEX
    rate_limits: bool = True
    backup_dir: Path = Path("backups")
    backup_interval_min: float = 10.0
    backup_retention_files: int = 20
    # Behind a reverse proxy: the proxies whose X-Forwarded-For is believed (transport/http/client_address.py).
    trusted_proxies: str = ""
    # Edges (issue 19): publish the spectators' view to Redis; spectator tokens have their own key.
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_PREFIX
    spectator_jwt_secret: str | None = None
    # The ops page: judge tablets are pinged this often (others every ws_ping_interval_s), and a box
    # whose tablets have all been silent this long is shown offline (also in /api/health).
    ws_tablet_ping_interval_s: float = 5.0
    tablet_silent_after_s: float = 15.0
    # /metrics open to anyone who can reach this address, for a Prometheus scraper (None: only the
    # admin-only /metrics of the main port). Loopback by default: the LAN must not read it.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # STORAGE_MODE=postgres (issue 18). The URL may hold a password: it is never logged or shown.
    database_url: str = field(default="", repr=False)
    database_schema: str = DEFAULT_DATABASE_SCHEMA

    @property
    def max_audit_file_bytes(self) -> int:
        return int(self.max_audit_file_mb * 1024 * 1024)

    @property
    def storage(self) -> StorageSettings:
        """What persistence/factory.py needs to pick and open the backend."""
        return StorageSettings(self.storage_mode, self.storage_dir, self.max_audit_file_bytes, self.database_url,
                               self.database_schema)

    @property
    def trusted_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """TRUSTED_PROXIES parsed: addresses and CIDRs, separated by commas or spaces."""
        return tuple(ip_network(item, strict=False) for item in self.trusted_proxies.replace(",", " ").split())

    def replace(self, **changes: object) -> Config:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Config(**values)


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# The core's and the edges' (transport/edge/config.py) Redis settings.
REDIS_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--redis-url", "REDIS_URL", "redis_url",
     "publish the spectators' view to this Redis for edge processes (redis:// or rediss://); default off"),
    ("--redis-prefix", "REDIS_PREFIX", "redis_prefix",
     f"prefix of every Redis key and channel, one per competition (default {DEFAULT_PREFIX})"),
)
# (flag, env var, field, help) — the single table behind --help, the README and parsing.
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--host", "HOST", "host", "address to listen on (default 0.0.0.0)"),
    ("--port", "PORT", "port", "port to listen on; 0 picks a free port (default 8000)"),
    ("--storage-mode", "STORAGE_MODE", "storage_mode", "storage backend: json (default) or postgres"),
    ("--storage-dir", "STORAGE_DIR", "storage_dir", "directory for the audit log and box checkpoints (default ./data)"),
    ("--reset-boxes-on-start", "RESET_BOXES_ON_START", "reset_boxes_on_start",
     "1 = clean start: archive the log and set box checkpoints aside instead of restoring them (default 0)"),
    ("--max-audit-file-mb", "MAX_AUDIT_FILE_SIZE_MB", "max_audit_file_mb",
     "rotate events.ndjson once it reaches this size in MiB (default 50)"),
    ("--log-level", "LOG_LEVEL", "log_level", "DEBUG, INFO, WARNING or ERROR (default INFO)"),
    ("--token-ttl-min", "ACCESS_TOKEN_EXPIRES_MIN", "token_ttl_min",
     "login token lifetime in minutes, renewed while in use (default 720 = 12 h)"),
    ("--allowed-origins", "ALLOWED_ORIGINS", "allowed_origins",
     "comma-separated browser origins allowed to call the API with credentials"),
    ("--allowed-origin-regex", "ALLOWED_ORIGIN_REGEX", "allowed_origin_regex",
     ("regex of further allowed origins (default: localhost, 127.0.0.1, *.local, 10.x, 172.16-31.x, "
      "192.168.x, any port)")),
    ("--cookie-secure", "COOKIE_SECURE", "cookie_secure", "1 = mark the login cookie Secure (HTTPS only)"),
    ("--cookie-samesite", "COOKIE_SAMESITE", "cookie_samesite", "SameSite of the login cookie (default lax)"),
    ("--backup-dir", "BACKUP_DIR", "backup_dir", "where backup zips go (default ./backups, outside the storage dir)"),
    ("--backup-interval-min", "BACKUP_INTERVAL_MIN", "backup_interval_min",
     "minutes between automatic backups; 0 turns them off (default 10)"),
    ("--backup-retention-files", "BACKUP_RETENTION_FILES", "backup_retention_files",
     "how many backup zips to keep (default 20)"),
    ("--rate-limits", "RATE_LIMITS", "rate_limits",
     "0 = no per-box command rate limits (benchmarks, trusted networks); default 1"),
    ("--trusted-proxies", "TRUSTED_PROXIES", "trusted_proxies",
     ("comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client "
      "(default none: the peer's address is the client)")),
    *REDIS_OPTIONS,
    ("--metrics-port", "METRICS_PORT", "metrics_port",
     "also serve /metrics without a login on this port (0 picks a free one); default: admin-only on --port"),
    ("--metrics-host", "METRICS_HOST", "metrics_host", "address of --metrics-port (default 127.0.0.1)"),
    # STORAGE_MODE=postgres (issue 18)
    ("--database-url", "DATABASE_URL", "database_url",
     ("postgresql://user@host:port/database for STORAGE_MODE=postgres; a direct or session-pooled connection "
      "(the writer holds an advisory lock). Keep a password out of the command line: set it in the "
      "environment variable, or PGPASSWORD / ~/.pgpass")),
    ("--database-schema", "DATABASE_SCHEMA", "database_schema",
     "the competition's schema in that database (default belay): one Belay server writes each"),
)
# Read from the environment only.
SECRET_ENV = {"jwt_secret": "JWT_SECRET", "default_admin_password": "DEFAULT_ADMIN_PASSWORD",
              "spectator_jwt_secret": "SPECTATOR_JWT_SECRET"}


class ConfigError(ValueError):
    """A flag or environment variable has a value we cannot use."""


def _convert(name: str, raw: str) -> object:
    kind = Config.__dataclass_fields__[name].type
    try:
        if kind in ("int", "int | None"):
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            low = raw.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        raise ConfigError(f"{name}: cannot use {raw!r}") from None
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, env, _name, help_text in OPTIONS:
        parser.add_argument(flag, default=None, help=f"{help_text} [env {env}]")


def load_config(args: argparse.Namespace | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Flags win over environment variables, which win over defaults."""
    values: dict[str, Any] = {}  # each value converted to its field's type by _convert
    for _flag, env, name, _help in OPTIONS:
        raw = getattr(args, name, None) if args is not None else None
        if raw is None:
            raw = environ.get(env)
        if raw is not None:
            values[name] = _convert(name, str(raw))
    for name, env in SECRET_ENV.items():
        if environ.get(env):
            values[name] = environ[env]
    deployment = (environ.get("ENV") or environ.get("APP_ENV") or "").strip().lower()
    values["production"] = deployment in ("prod", "production")
    config = Config(**values)
    if (problem := mode_problem(config.storage_mode) or database_problem(config.storage)) is not None:
        raise ConfigError(problem)
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port} is out of range")
    if config.metrics_port is not None and not 0 <= config.metrics_port <= 65535:
        raise ConfigError(f"metrics port {config.metrics_port} is out of range")
    if config.metrics_port == config.port != 0:
        raise ConfigError("METRICS_PORT must differ from PORT (the main port serves /metrics to admins)")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL {config.log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if config.cookie_samesite.lower() not in ("lax", "strict", "none"):
        raise ConfigError("COOKIE_SAMESITE must be lax, strict or none")
    if config.token_ttl_min <= 0:
        raise ConfigError("ACCESS_TOKEN_EXPIRES_MIN must be positive")
    try:
        re.compile(config.allowed_origin_regex)
    except re.error as exc:
        raise ConfigError(f"ALLOWED_ORIGIN_REGEX does not compile: {exc}") from None
    if config.backup_retention_files < 1:
        raise ConfigError("BACKUP_RETENTION_FILES must be at least 1")
    if config.max_audit_file_mb <= 0:
        raise ConfigError("MAX_AUDIT_FILE_SIZE_MB must be positive")
    try:
        config.trusted_networks  # noqa: B018 - parsed here to refuse a typo at start-up
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES: {exc} (addresses or CIDRs, e.g. 10.0.0.5,192.168.1.0/24)") from None
    if config.redis_url is not None and not config.redis_url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"REDIS_URL must start with {', '.join(REDIS_SCHEMES)}")
    if not PREFIX_PATTERN.fullmatch(config.redis_prefix):
        raise ConfigError("REDIS_PREFIX must be 1 to 64 letters, digits, '_', '.' or '-'")
    return config
