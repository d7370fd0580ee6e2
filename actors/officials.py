"""The competition officials (global, shown in every snapshot): one actor serializes changes."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from actors.persister import Persister
from actors.runtime import Actor
from persistence.storage import StorageError

OFFICIAL_KEYS = ("judgeChief", "competitionDirector", "chiefRoutesetter")
MAX_OFFICIAL_NAME = 255


@dataclass(frozen=True, slots=True)
class SetOfficials:
    values: Mapping[str, str]


def officials_from(raw: Any) -> dict[str, str]:
    """The stored document, tolerant of old or partial files: unknown keys dropped, values trimmed."""
    source = raw if isinstance(raw, dict) else {}
    return {key: clean_official(source.get(key)) for key in OFFICIAL_KEYS}


def clean_official(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    printable = "".join(ch for ch in value if ch.isprintable() or ch == " ")
    return " ".join(printable.split())[:MAX_OFFICIAL_NAME]


class OfficialsActor(Actor):
    answered_errors = (StorageError,)

    def __init__(self, initial: Mapping[str, str], persister: Persister,
                 on_change: Callable[[], None]) -> None:
        super().__init__("officials")
        self.current: Mapping[str, str] = dict(initial)
        self._persister = persister
        self._on_change = on_change

    async def handle(self, message: object) -> Mapping[str, str]:
        if not isinstance(message, SetOfficials):
            raise TypeError(f"unexpected message {message!r}")
        new = officials_from(message.values)
        if new != self.current:
            await self._persister.write_document("officials", new)  # StorageError reaches the caller
            self.current = new
            self._on_change()
        return self.current
