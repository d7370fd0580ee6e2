"""POST /api/admin/upload: a start list (.xlsx or .csv) becomes a listbox for the UI. Stateless (reference §1.7)."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from actors.codes import INVALID_START_LIST
from actors.jobs.start_list import SheetError, check_format, read_start_list_in_worker
from actors.rules.commands import MAX_ROUTES
from actors.rules.names import MAX_CATEGORY_LENGTH, clean_text
from transport.http.auth import Need, authorize
from transport.http.errors import (
    BODY_TOO_LARGE,
    INVALID_HOLDS_COUNTS,
    INVALID_REQUEST,
    INVALID_ROUTES_COUNT,
    STATUS,
    ClientError,
)
from transport.keys import UPLOAD_POOL
from transport.request_numbers import whole_number

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
# The app-wide 1 MiB cap does not apply to a streamed multipart body, so this route enforces its own.
MAX_BODY_BYTES = MAX_FILE_BYTES + MAX_PARTS * MAX_FIELD_BYTES
REQUIRED_FIELDS = ("category", "routesCount", "holdsCounts", "file")
_TEXT_FIELDS = ("category", "routesCount", "holdsCounts", "include_clubs")
_TRUTHY = frozenset({"1", "true", "yes", "y", "on"})

NOT_MULTIPART = "the body must be multipart/form-data"
MALFORMED_MULTIPART = "malformed multipart body"
TOO_MANY_PARTS = f"too many form fields (at most {MAX_PARTS})"
INVALID_CATEGORY = f"category must be a non-empty text of at most {MAX_CATEGORY_LENGTH} characters"

routes = web.RouteTableDef()


@routes.post("/api/admin/upload")
async def upload_start_list(request: web.Request) -> web.Response:
    authorize(request, Need.ADMIN)
    fields, file_data = await _read_form(request)
    routes_count = parse_routes_count(fields["routesCount"])
    holds_counts = parse_holds_counts(fields["holdsCounts"])
    if len(holds_counts) != routes_count:
        # The detail stays the bare code the UI may match on; the explanation goes beside it.
        reason = f"holdsCounts has {len(holds_counts)} entries but routesCount is {routes_count}"
        return web.json_response({"detail": INVALID_HOLDS_COUNTS, "reason": reason},
                                 status=STATUS[INVALID_HOLDS_COUNTS], dumps=_dumps)
    category = clean_text(fields["category"])  # the same cleaning INIT_ROUTE applies to `categorie`
    if not category or len(category) > MAX_CATEGORY_LENGTH:
        raise ClientError(INVALID_REQUEST, INVALID_CATEGORY)
    include_clubs = fields.get("include_clubs", "true").strip().lower() in _TRUTHY
    # xlsx or CSV is decided by content: a browser's content type and file name say nothing reliable.
    try:
        check_format(file_data)  # cheap, so plain garbage never reaches the worker
        competitors = await read_start_list_in_worker(request.app[UPLOAD_POOL], file_data, include_clubs)
    except SheetError as exc:
        raise ClientError(INVALID_START_LIST, exc.detail) from None
    listbox = {
        "categorie": category,
        "concurenti": competitors,
        "routesCount": routes_count,
        "holdsCounts": holds_counts,
        "routeIndex": 1,
        "holdsCount": holds_counts[0] if holds_counts else 0,
        "initiated": False,
        "timerPreset": "05:00",
    }
    body = {"status": "success", "message": "Listbox uploaded successfully", "listbox": listbox}
    return web.json_response(body, dumps=_dumps)


def parse_routes_count(text: str) -> int:
    count = whole_number(text.strip(), 1, MAX_ROUTES)
    if count is None:
        raise ClientError(INVALID_ROUTES_COUNT)
    return count


def parse_holds_counts(text: str) -> list[int]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ClientError(INVALID_HOLDS_COUNTS) from None
    if not isinstance(value, list) or len(value) > MAX_ROUTES:
        raise ClientError(INVALID_HOLDS_COUNTS)
    return [_hold_count(item) for item in value]


def _hold_count(item: object) -> int:
    number: int | None = None
    if isinstance(item, bool):  # bool is an int subclass; true is not a hold count
        number = None
    elif isinstance(item, int):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, str):
        number = whole_number(item, 0, 100, max_digits=3)
    if number is None or not 0 <= number <= 100:
        raise ClientError(INVALID_HOLDS_COUNTS)
    return number


async def _read_form(request: web.Request) -> tuple[dict[str, str], bytes]:
    """The text fields and the file, each size-capped while streaming; 400 names a missing field."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ClientError(BODY_TOO_LARGE)  # refuse before reading a byte
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise ClientError(INVALID_REQUEST, NOT_MULTIPART) from None
    fields: dict[str, str] = {}
    file_data: bytes | None = None
    total = 0
    try:
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise ClientError(INVALID_REQUEST, MALFORMED_MULTIPART)  # nested multipart: no browser sends it
            name = part.name
            data = await _read_part(part, MAX_FILE_BYTES if name == "file" else MAX_FIELD_BYTES)
            total += len(data)
            if total > MAX_BODY_BYTES:
                raise ClientError(BODY_TOO_LARGE)
            # The first occurrence of a field wins; unknown fields are read and ignored.
            if name == "file" and file_data is None:
                file_data = data
            elif name in _TEXT_FIELDS and name not in fields:
                fields[name] = _text(name, data)
        else:
            raise ClientError(INVALID_REQUEST, TOO_MANY_PARTS)
    except (ClientError, ConnectionError):
        raise
    except Exception:  # the multipart parser's many ways of saying "bad framing"
        raise ClientError(INVALID_REQUEST, MALFORMED_MULTIPART) from None
    for name in REQUIRED_FIELDS:
        if (file_data is None) if name == "file" else (name not in fields):
            raise ClientError(INVALID_REQUEST, f"missing form field: {name}")
    assert file_data is not None
    return fields, file_data


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    buffer = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        buffer += chunk
        if len(buffer) > limit:
            raise ClientError(BODY_TOO_LARGE)
    return bytes(buffer)


def _text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientError(INVALID_REQUEST, f"form field {name} must be UTF-8 text") from None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def close_pool(app: web.Application) -> None:
    """on_cleanup: stop the spreadsheet worker process."""
    await app[UPLOAD_POOL].close()
