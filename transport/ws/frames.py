"""WebSocket frames built once for every socket.

Server frames are never masked and compression is off, so one encoded frame (header + payload)
is byte-for-byte the same for every socket: the hub builds it once and each subscriber only
writes it to its transport.
"""
from __future__ import annotations

import struct


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked, uncompressed frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return header + payload


def text_frame(payload: bytes) -> bytes:
    """Browsers drop binary frames into a Blob that the UI never parses, so everything goes as text."""
    return server_frame(0x1, payload)


PING_FRAME = server_frame(0x9, b"")  # every browser answers a protocol ping by itself


def pong_frame(data: bytes) -> bytes:
    return server_frame(0xA, data[:125])  # a control frame carries at most 125 bytes
