"""Just enough CBOR (RFC 8949) for the simulator to speak AWS's Smithy RPC v2 CBOR protocol,
which botocore uses for Compute Optimizer: request bodies are decoded with botocore's own CBOR
reader, answers encoded here (maps, arrays, text, integers, doubles, booleans, null and epoch
timestamps, all of definite length)."""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

from botocore.parsers import RpcV2CBORParser


def decode(body: bytes) -> Any:
    if not body:
        return {}
    parser = RpcV2CBORParser()
    return parser.parse_data_item(parser.get_peekable_stream_from_bytes(body))


def encode(value: Any) -> bytes:
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, dt.datetime):
        return b"\xc1" + encode(value.timestamp())  # tag 1: seconds since the epoch
    if isinstance(value, str):
        raw = value.encode()
        return _head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, list | tuple):
        return _head(4, len(value)) + b"".join(encode(item) for item in value)
    if isinstance(value, dict):
        items = b"".join(encode(str(k)) + encode(v) for k, v in value.items())
        return _head(5, len(value)) + items
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def _head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for info, size, form in ((24, 1, ">B"), (25, 2, ">H"), (26, 4, ">I"), (27, 8, ">Q")):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + struct.pack(form, length)
    raise ValueError("too long for CBOR")
