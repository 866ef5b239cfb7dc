"""Type stub for the C decoder (see _decode.c and decode_fast.py)."""

from typing import Any

N_OUTPUTS: int

def decode(
    buf: Any, off: Any, caplen: Any, wirelen: Any, link_type: Any, outputs: tuple[Any, ...], /
) -> None: ...
