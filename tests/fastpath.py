"""Test-only helpers shared by the C fast-path suites (test_tls_c.py, test_http_c.py)."""

from __future__ import annotations

import dataclasses
from typing import Any


def strict(value: Any) -> Any:
    """``value`` with the type of every part spelled out, dataclass instance dicts included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, strict(dict(vars(value))))
    if isinstance(value, dict):
        return ("dict", tuple((k, strict(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(strict(v) for v in value))
    return (type(value).__name__, value)
