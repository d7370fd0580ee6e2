"""`python run.py migrate --from DIR --to postgresql://… [--schema S] [--dry-run]`, and back.

This module is the command: which side is which, a progress bar per stage on a terminal, and the
figures at the end. The work (locks, the copy, the proof) is actors/recovery/migrate.py.
"""
from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from actors.recovery.migrate import Migrated, MigrationFailed, Side, Tick, migrate
from persistence.errors import StorageNotEmpty
from persistence.factory import DEFAULT_DATABASE_SCHEMA
from persistence.migration.directory import DirectorySide
from persistence.migration.schema import SchemaSide
from persistence.postgres.schema import check_schema_name
from transport.cli.common import FAILED, OK, USAGE, CliError, Progress

URL_SCHEMES: Final = ("postgresql", "postgres")
PARTS: Final = ("reading", "copy", "indexes", "writing", "hashing", "replay")


def run_migrate(args: argparse.Namespace) -> int:
    schema = args.schema or os.environ.get("DATABASE_SCHEMA") or DEFAULT_DATABASE_SCHEMA
    try:
        check_schema_name(schema)
    except ValueError as exc:
        raise CliError(str(exc).replace("DATABASE_SCHEMA", "--schema"), USAGE) from None
    source, target = side(args.source, schema, "--from"), side(args.target, schema, "--to")
    if isinstance(source, DirectorySide) == isinstance(target, DirectorySide):
        raise CliError("one side must be a storage directory and the other a postgresql:// URL", USAGE)
    stages = Stages()
    try:
        result = asyncio.run(migrate(source, target, dry_run=args.dry_run, stage=stages.start))
    except (ValueError, StorageNotEmpty) as exc:  # the driver's word on a URL it cannot use; a full target
        raise CliError(f"{exc}", USAGE) from None
    except MigrationFailed as exc:
        stages.finish()
        print(f"run.py migrate: {exc}; nothing was written to {target.location}:")
        for problem in exc.problems[:50]:
            print(f"  {problem}")
        if len(exc.problems) > 50:
            print(f"  ... and {len(exc.problems) - 50} more")
        return FAILED
    finally:
        stages.finish()
    report(result)
    return OK


def side(text: str, schema: str, flag: str) -> Side:
    """A postgresql:// URL or a directory; anything else is a usage error saying which flag."""
    if "\x00" in text or not text.strip():
        raise CliError(f"{flag} needs a storage directory or a postgresql:// URL", USAGE)
    if "://" not in text:
        return DirectorySide(Path(text))
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here, not deep in the driver
    except ValueError:
        raise CliError(f"{flag}: not a valid URL", USAGE) from None
    if parts.scheme not in URL_SCHEMES:
        raise CliError(f"{flag}: only postgresql:// URLs are supported, not {parts.scheme}://", USAGE)
    if not parts.hostname and not parts.path.strip("/"):
        raise CliError(f"{flag}: the URL names no host and no database", USAGE)
    return SchemaSide(text, schema)


class Stages:
    """One progress bar per stage, on stderr, only on a terminal."""

    def __init__(self) -> None:
        self._bar: Progress | None = None

    def start(self, name: str, total: int) -> Tick:
        self.finish()
        bar = self._bar = Progress(name)
        return lambda done: bar(done, total)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.finish()
            self._bar = None


def report(result: Migrated) -> None:
    parts = ", ".join(f"{name} {result.seconds[name]:.1f} s" for name in PARTS if name in result.seconds)
    verb = "checked (dry run, nothing written)" if result.dry_run else "migrated"
    print(f"{verb}: {result.events} event line(s) of {result.boxes} box(es), {result.line_bytes / 1e6:.1f} MB, "
          f"from {result.source} to {result.target} in {result.seconds['total']:.1f} s ({parts})")
    for note in result.notes:
        print(f"note: {note}")
    if not result.dry_run:
        print("every box's lines match byte for byte (SHA-256) and every box replays to its checkpoint")
