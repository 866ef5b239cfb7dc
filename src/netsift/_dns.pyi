"""Type stub for the C DNS summarizer (see _dns.c, dns.summarize and applayer.dns_flow_step)."""

from collections.abc import Callable, Sequence
from typing import Any

def summarize(data: Any, /) -> tuple[Any, ...]: ...
def summarize_many(buf: Any, starts: Sequence[int], lens: Sequence[int], /) -> list[tuple[Any, ...]]: ...
def flow_step(
    flows: dict[int, Any],
    codes: Sequence[int],
    msgs: Sequence[tuple[Any, ...]],
    ts: Sequence[int],
    make: Callable[[tuple[Any, ...]], Any],
    max_outstanding: int,
    /,
) -> tuple[list[int], list[int], list[int]]: ...
