"""Type stub for the C HTTP head fast path (see _http.c and netsift.http)."""

from typing import Any

def parse_head(block: bytes, direction: int, /) -> tuple[Any, ...] | None: ...
