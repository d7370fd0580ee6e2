"""Errors of the JSON storage; `json_store` re-exports them as part of its API."""
from __future__ import annotations


class StorageError(Exception):
    """An I/O failure: the caller answers 503 storage_unavailable and retries later."""


class StorageLocked(StorageError):
    """Another process owns the storage directory."""
