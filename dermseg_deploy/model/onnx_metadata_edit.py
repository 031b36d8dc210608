"""Rewriting one entry of an ONNX file's `metadata_props` without the `onnx` package (the runtime install has only
ONNX Runtime): the file's top-level protobuf fields are copied as they are, the entries under the key are dropped,
and one entry with the new value is appended. The graph, its weights and any external data are untouched.

Wire format (protobuf): every field is a varint tag (number << 3 | wire type) then its value: a varint (type 0),
8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5). `ModelProto.metadata_props` is field 14, each
a `StringStringEntryProto` of key (field 1) and value (field 2).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from ..util.atomic import atomic_write_bytes

METADATA_PROPS_FIELD = 14


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("a truncated or overlong varint")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """(field number, wire type, start of the field, end of the field) of each top-level field, in order."""
    fields, position = [], 0
    while position < len(data):
        start = position
        tag, position = _varint(data, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, position = _varint(data, position)
        elif wire == 1:
            position += 8
        elif wire == 2:
            length, position = _varint(data, position)
            position += length
        elif wire == 5:
            position += 4
        else:
            raise ValueError(f"wire type {wire} in field {number}")
        if position > len(data):
            raise ValueError(f"field {number} runs past the end of the file")
        fields.append((number, wire, start, position))
    return fields


def _entry_key(payload: bytes) -> str | None:
    for number, wire, start, _end in _fields(payload):
        if number == 1 and wire == 2:
            tag_end = _varint(payload, start)[1]
            length, value_start = _varint(payload, tag_end)
            return payload[value_start : value_start + length].decode("utf-8", "replace")
    return None


def _entry(key: str, value: str) -> bytes:
    key_bytes, value_bytes = key.encode("utf-8"), value.encode("utf-8")
    payload = (b"\x0a" + _encode_varint(len(key_bytes)) + key_bytes + b"\x12" + _encode_varint(len(value_bytes))
               + value_bytes)
    return _encode_varint(METADATA_PROPS_FIELD << 3 | 2) + _encode_varint(len(payload)) + payload


def rewrite_onnx_metadata(source: Path, target: Path, key: str, value: str) -> None:
    """Write `source` to `target` (atomically; they may be the same file) with `metadata_props[key] = value`."""
    try:
        data = source.read_bytes()
        parts = []
        for number, wire, start, end in _fields(data):
            if number == METADATA_PROPS_FIELD and wire == 2:
                payload_start = _varint(data, _varint(data, start)[1])[1]
                if _entry_key(data[payload_start:end]) == key:
                    continue
            parts.append(data[start:end])
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ModelFileError(f"{source}: not an ONNX file dermseg can rewrite ({exc})") from exc
    atomic_write_bytes(target, b"".join(parts) + _entry(key, value))
