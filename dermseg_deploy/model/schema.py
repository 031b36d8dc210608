"""Strict field checks for what model files carry (checkpoint, metadata, plan sidecar), before anything is built.

Every refusal is a ModelFileError that names the field, shows the value (shortened) and states the rule.
A bool is not a number, a string is not a number, and a float is not an integer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ModelFileError

SHOWN_CHARS = 60


def shown(value: Any) -> str:
    """`repr(value)`, cut to a readable length (a hostile file may carry megabytes in one field)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def refuse(field: str, value: Any, rule: str) -> ModelFileError:
    """The error for `field` holding `value`, which breaks `rule`."""
    return ModelFileError(f"{field} = {shown(value)}: {rule}")


def type_name(value: Any) -> str:
    return type(value).__name__


def require_mapping(value: Any, field: str) -> Mapping[str, Any]:
    """A dict with string keys."""
    if not isinstance(value, dict):
        raise refuse(field, value, f"must be a mapping (found type {type_name(value)})")
    for key in value:
        if not isinstance(key, str):
            raise refuse(f"{field} key", key, f"keys must be strings (found type {type_name(key)})")
    return value


def require_int(value: Any, field: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not a bool, float or string) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse(field, value, f"must be an integer (found type {type_name(value)})")
    if minimum is not None and value < minimum:
        raise refuse(field, value, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise refuse(field, value, f"must be at most {maximum}")
    return value


def require_equal_int(value: Any, field: str, expected: int, why: str) -> int:
    """The integer `expected` itself (`why` explains the rule)."""
    if isinstance(value, bool) or not isinstance(value, int) or value != expected:
        kind = "" if isinstance(value, int) and not isinstance(value, bool) else f" (found type {type_name(value)})"
        raise refuse(field, value, f"must be the integer {expected} ({why}){kind}")
    return value


def require_finite(value: Any, field: str) -> float:
    """An int or float (not a bool or string) that is finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise refuse(field, value, f"must be a number (found type {type_name(value)})")
    if not math.isfinite(value):
        raise refuse(field, value, "must be finite")
    return float(value)


def require_bool(value: Any, field: str) -> bool:
    """True or False, not a string such as "false" or a number."""
    if not isinstance(value, bool):
        raise refuse(field, value, f"must be true or false (found type {type_name(value)})")
    return value


def require_str(value: Any, field: str, max_chars: int = 4096) -> str:
    if not isinstance(value, str):
        raise refuse(field, value, f"must be a string (found type {type_name(value)})")
    if len(value) > max_chars:
        raise refuse(field, value, f"must be at most {max_chars} characters, has {len(value)}")
    return value


def require_optional_str(value: Any, field: str) -> str | None:
    return None if value is None else require_str(value, field)


def require_numbers(value: Any, field: str, count: int) -> tuple[float, ...]:
    """A list (or tuple) of exactly `count` finite numbers."""
    if not isinstance(value, (list, tuple)):
        raise refuse(field, value, f"must be a list of {count} numbers (found type {type_name(value)})")
    if len(value) != count:
        raise refuse(field, value, f"must be a list of {count} numbers, has {len(value)}")
    return tuple(require_finite(item, f"{field}[{index}]") for index, item in enumerate(value))


def require_known_keys(data: Mapping[str, Any], field: str, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise refuse(field, unknown, f"unknown keys (known: {', '.join(sorted(known))})")


def require_keys(data: Mapping[str, Any], field: str, required: tuple[str, ...]) -> None:
    missing = [key for key in required if key not in data]
    if missing:
        raise ModelFileError(f"{field} lacks {', '.join(missing)} (required: {', '.join(required)})")
