"""Type stub for the C TLS hello fast path (see _tls.c and netsift.tls)."""

from typing import Any

def parse_hello_body(
    data: bytes, start: int, end: int, kind: int, extension_class: type | None = None, /
) -> tuple[Any, ...] | None: ...
