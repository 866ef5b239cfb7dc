"""Fuzz the HTTP/1.x head parser: netsift.http and the C netsift._http.

Input: the bytes of one direction of a TCP stream.  Checks, for every input and
each direction setting (None, "request", "response"):

- ``parse_heads`` never raises (the module promises no input makes it raise)
  and reports only codes from ``http.ANOMALY_CODES``; every head's look-up
  properties work;
- it gives the same result with the C fast path (``_http.parse_head``) on and
  off (the Python code is the specification);
- a ``HeadAssembler`` fed the input in chunks (the chunk size taken from the
  input's last byte, a small ``max_head_bytes`` so the length bound is reached)
  gives the same heads and counters on both paths, and its buffer never holds
  more than ``max_head_bytes`` (or a chunk-size line, ``MAX_CHUNK_LINE_BYTES``)
  plus one chunk;
- ``_http.parse_head`` called directly never raises.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import atheris
from _common import main, strict

with atheris.instrument_imports(include=["netsift"]):
    from netsift import _http, http

DIRECTIONS: tuple[http.Direction | None, ...] = (None, "request", "response")
SMALL_HEAD_BYTES = 100


def both_paths(fn: Callable[[], Any]) -> Any:
    fast = fn()
    saved = http._c_parse_head
    http._c_parse_head = None
    try:
        slow = fn()
    finally:
        http._c_parse_head = saved
    assert strict(fast) == strict(slow), (fast, slow)
    return fast


def stream(data: bytes, direction: http.Direction | None, step: int) -> Any:
    a = http.HeadAssembler(direction, max_head_bytes=SMALL_HEAD_BYTES)
    heads = []
    for i in range(0, len(data), step):
        chunk = data[i:i + step]
        heads += a.feed(chunk)
        # the documented bound: a head (max_head_bytes) or a chunk-size line, plus one chunk
        assert len(a._buf) <= max(SMALL_HEAD_BYTES, http.MAX_CHUNK_LINE_BYTES) + len(chunk)
    heads += a.close()
    return heads, dict(a.anomalies), a.body_bytes, a.discarded_bytes


def check_head(head: http.Head) -> None:
    assert set(head.anomalies) <= set(http.ANOMALY_CODES), head.anomalies
    assert head.kind in ("request", "response")
    for name in ("host", "user_agent", "content_type", "transfer_encoding"):
        getattr(head, name)


def test_one_input(data: bytes) -> None:
    step = 1 + (data[-1] if data else 0) % 64
    for code, direction in enumerate(DIRECTIONS):
        parsed = both_paths(lambda d=direction: http.parse_heads(data, d))
        assert set(parsed.anomalies) <= set(http.ANOMALY_CODES), parsed.anomalies
        for head in parsed.heads:
            check_head(head)
        heads, counts, _, _ = both_paths(lambda d=direction: stream(data, d, step))
        assert set(counts) <= set(http.ANOMALY_CODES), counts
        for head in heads:
            check_head(head)
        _http.parse_head(data, code)


if __name__ == "__main__":
    main(test_one_input, max_len=8192)
    sys.exit(0)
