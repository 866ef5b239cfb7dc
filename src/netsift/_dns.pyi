"""Type stub for the C DNS summarizer (see _dns.c and dns.summarize)."""

from typing import Any

def summarize(data: Any, /) -> tuple[Any, ...]: ...
