"""One reader for JSON that dermseg did not write itself in this process: model metadata (ONNX metadata, IR rt_info),
plan sidecars, the shipped model's manifest, Triton configs read back, `--ids` and `--config` files, a service's
answers.

Its limits are numbers, checked before or while parsing, never by catching what the parser hits:

    size     at most `max_bytes` (4 MiB), checked before anything is decoded (a file: before it is read)
    depth    at most `max_depth` (32) nested arrays and objects, checked by a linear scan before `json` recurses
    numbers  integers of at most 20 digits, floats of at most 40 characters that parse to a finite value; NaN,
             Infinity and -Infinity refused

Every refusal is an UntrustedJsonError (a UserError: exit 2) that names the source and the limit.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from itertools import accumulate
from pathlib import Path
from typing import Any

from ..errors import UserError

MAX_JSON_BYTES = 4 * 2**20
"""Room for every field dermseg's files carry (metadata with a calibration table is a few kB; a split of 100,000 ids
about 2 MB)."""
MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 20
"""Enough for any 64-bit integer (19 digits and a sign)."""
MAX_FLOAT_CHARS = 40

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class UntrustedJsonError(UserError):
    """JSON that breaks a limit of this module, or is not JSON at all."""


def _max_depth(text: str) -> int:
    """The deepest nesting of arrays and objects outside strings (a linear scan, no recursion)."""
    steps = (1 if bracket in "[{" else -1 for bracket in _BRACKET.findall(_STRING.sub("", text)))
    return max(accumulate(steps, initial=0))


def loads_bounded(text: str | bytes, source: object, max_bytes: int = MAX_JSON_BYTES,
                  max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse `text` (named `source` in errors) within the limits of this module."""
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > max_bytes:
        raise UntrustedJsonError(f"{source}: {size} bytes of JSON, over the limit of {max_bytes}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UntrustedJsonError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    depth = _max_depth(text)
    if depth > max_depth:
        raise UntrustedJsonError(f"{source}: JSON nested {depth} levels deep, over the limit of {max_depth}")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise UntrustedJsonError(f"{source}: an integer of {len(digits.lstrip('-'))} digits, over the limit of "
                                     f"{MAX_INT_DIGITS}")
        return int(digits)

    def real(literal: str) -> float:
        value = float(literal) if len(literal) <= MAX_FLOAT_CHARS else math.inf
        if len(literal) > MAX_FLOAT_CHARS or not math.isfinite(value):
            raise UntrustedJsonError(f"{source}: the number {literal[:20]}{'...' if len(literal) > 20 else ''} is "
                                     f"not a finite number of at most {MAX_FLOAT_CHARS} characters")
        return value

    def constant(name: str) -> Any:
        raise UntrustedJsonError(f"{source}: {name} is not a JSON number (NaN and Infinity are refused)")

    try:
        return json.loads(text, parse_int=integer, parse_float=real, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise UntrustedJsonError(f"{source}: not valid JSON ({exc})") from exc


def read_bounded_json_file(path: Path, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read and parse a JSON file: a regular file (not a device, FIFO or folder) of at most `max_bytes`, read no
    further than that."""
    try:
        with open(path, "rb", opener=_open_nonblocking) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UntrustedJsonError(f"{path}: not a regular file")
            if info.st_size > max_bytes:
                raise UntrustedJsonError(f"{path}: {info.st_size} bytes, over the limit of {max_bytes} for a JSON file")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UntrustedJsonError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return loads_bounded(data, path, max_bytes, max_depth)


def _open_nonblocking(path: str, flags: int) -> int:
    """Open without blocking on a FIFO (whose open waits for a writer); the file is checked to be regular next."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))
