"""Server configuration: one frozen value built from flags and environment variables."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8000
    storage_mode: str = "json"
    storage_dir: Path = Path("data")
    reset_boxes_on_start: bool = False
    max_audit_file_mb: float = 50.0
    # Checkpoints are coalesced: a dirty box is written at most this often.
    checkpoint_interval_s: float = 0.3
    ws_ping_interval_s: float = 30.0
    # A socket whose unsent data stays above the limit this long is closed (1008).
    ws_max_pending_bytes: int = 1 << 20
    ws_stall_timeout_s: float = 5.0
    max_body_bytes: int = 1 << 20
    log_level: str = "INFO"

    @property
    def max_audit_file_bytes(self) -> int:
        return int(self.max_audit_file_mb * 1024 * 1024)

    def replace(self, **changes: object) -> "Config":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Config(**values)  # type: ignore[arg-type]


# (flag, env var, field, help) — the single table behind --help, the README and parsing.
OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("--host", "HOST", "host", "address to listen on (default 0.0.0.0)"),
    ("--port", "PORT", "port", "port to listen on; 0 picks a free port (default 8000)"),
    ("--storage-mode", "STORAGE_MODE", "storage_mode", "storage backend: json (default)"),
    ("--storage-dir", "STORAGE_DIR", "storage_dir", "directory for the audit log and box checkpoints (default ./data)"),
    ("--reset-boxes-on-start", "RESET_BOXES_ON_START", "reset_boxes_on_start",
     "1 = clean start: archive the log and set box checkpoints aside instead of restoring them (default 0)"),
    ("--max-audit-file-mb", "MAX_AUDIT_FILE_SIZE_MB", "max_audit_file_mb",
     "rotate events.ndjson once it reaches this size in MiB (default 50)"),
    ("--log-level", "LOG_LEVEL", "log_level", "DEBUG, INFO, WARNING or ERROR (default INFO)"),
)


class ConfigError(ValueError):
    """A flag or environment variable has a value we cannot use."""


def _convert(name: str, raw: str) -> object:
    kind = Config.__dataclass_fields__[name].type
    try:
        if kind == "int":
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
    values: dict[str, object] = {}
    for _flag, env, name, _help in OPTIONS:
        raw = getattr(args, name, None) if args is not None else None
        if raw is None:
            raw = environ.get(env)
        if raw is not None:
            values[name] = _convert(name, str(raw))
    config = Config(**values)  # type: ignore[arg-type]
    if config.storage_mode != "json":
        raise ConfigError(f"STORAGE_MODE {config.storage_mode!r} is not available; use 'json'")
    if not 0 <= config.port <= 65535:
        raise ConfigError(f"port {config.port} is out of range")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL {config.log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if config.max_audit_file_mb <= 0:
        raise ConfigError("MAX_AUDIT_FILE_SIZE_MB must be positive")
    return config
