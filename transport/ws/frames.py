"""WebSocket frames built once for every socket.

Server frames are never masked, so one encoded frame (header + payload) is byte-for-byte the same
for every socket: the hub builds it once and each subscriber only writes it to its transport.
A spectator socket that negotiated permessage-deflate may instead get the same message deflated,
also once for every such socket: each message is compressed alone, with a fresh compressor and
no context taken over from earlier ones (RFC 7692 §7.2.1), so it depends on nothing else that
socket received.
"""
from __future__ import annotations

import struct
import zlib
from typing import Final

RSV1: Final = 0x40  # set on the first frame of a compressed message (RFC 7692 §6)
# The server window a deflated frame needs; a socket that negotiated a smaller one gets plain frames.
DEFLATE_WINDOW_BITS: Final = 15
# zlib's level 1 saves 83-87% of a spectator frame against 85-88% at the default level, in about
# half the time (docs/performance.md, "Spectator frames").
DEFLATE_LEVEL: Final = 1
# Below this a message shrinks by too little to be worth the work (a PING grows).
DEFLATE_MIN_PAYLOAD: Final = 256


def server_frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked frame (RFC 6455 §5.2); `opcode` carries RSV1 for a compressed message."""
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


def deflated_text_frame(plain: bytes) -> bytes:
    """The message of `plain` (a text_frame) as a compressed frame, or `plain` itself if small."""
    length = plain[1]
    payload = plain[2 if length < 126 else 4 if length == 126 else 10:]
    if len(payload) < DEFLATE_MIN_PAYLOAD:
        return plain
    compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -DEFLATE_WINDOW_BITS)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # The sync flush's empty block ends in 00 00 ff ff, which the receiver appends back (§7.2.1).
    return server_frame(RSV1 | 0x1, data.removesuffix(b"\x00\x00\xff\xff"))


PING_FRAME = server_frame(0x9, b"")  # every browser answers a protocol ping by itself


def pong_frame(data: bytes) -> bytes:
    return server_frame(0xA, data[:125])  # a control frame carries at most 125 bytes
