"""Text from files (names, model summaries, error texts that quote them) made safe to print on one terminal line.

Control characters (C0 and C1, DEL), Unicode line and paragraph separators and the bidirectional overrides are
written as `\\xNN` / `\\uNNNN` escapes, so that a name holding a newline cannot forge an `error: ...` line and one
holding an escape sequence cannot drive the terminal. Bytes that are not UTF-8 (a file name's, kept as Python's
surrogate escapes) are written as `\\xNN` too.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\udc80-\udcff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a surrogate escape: the raw byte it stands for
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every unsafe character escaped (see the module docstring); safe text is returned as it is."""
    return _UNSAFE.sub(_escape, text)


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def escape_undecodable(text: str) -> str:
    """`text` with the raw bytes of a name that is not UTF-8 (surrogate escapes) written as `\\xNN`, and nothing else
    changed: for JSON, where such a string could not be encoded."""
    return _UNDECODABLE.sub(_escape, text)


def csv_bytes(text: str) -> bytes:
    """CSV text as bytes: UTF-8, with the raw bytes of names that are not UTF-8 kept as they were (as `manifest.csv`
    is written), so that the file names in a CSV are the files' own."""
    return text.encode("utf-8", "surrogateescape")
