"""Fuzz the TLS hello parsers and the fingerprints: netsift.tls and the C netsift._tls.

Input: TLS record-layer bytes (as a TCP payload would carry them); the same
bytes are also parsed as a bare ClientHello and ServerHello body, and from
offset 9 (past a record and handshake header).  Checks, for every input:

- ``read_hello``, ``parse_client_hello`` and ``parse_server_hello`` never
  raise; the documented "malformed" outcomes are a None hello and anomaly codes
  from ``tls.ANOMALY_CODES``;
- each gives the same result with the C fast path (``_tls.parse_hello_body``)
  on and off (the Python code is the specification);
- JA3, JA3N, JA3S, JA4 and JA4_o of every hello never raise, the cached
  ``client_fingerprints``/``server_fingerprint`` equal the uncached functions,
  and JA4 has its documented shape (``t13d1516h2_<12 hex>_<12 hex>``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import atheris
from _common import main, strict

with atheris.instrument_imports(include=["netsift"]):
    from netsift import _tls, tls

JA4_SHAPE = re.compile(
    r"[tqd](13|12|11|10|s3|s2|d1|d2|d3|00)[di]\d\d\d\d[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")


def both_paths(fn: Callable[[bytes], Any], data: bytes) -> Any:
    """``fn(data)`` with the C fast path on, checked against the pure-Python result."""
    fast = fn(data)
    saved = tls._parse_hello_body
    tls._parse_hello_body = None
    try:
        slow = fn(data)
    finally:
        tls._parse_hello_body = saved
    assert strict(fast) == strict(slow), (fast, slow)
    return fast


def check_hello(hello: tls.ClientHello | tls.ServerHello | None) -> None:
    if hello is None:
        return
    assert set(hello.anomalies) <= set(tls.ANOMALY_CODES), hello.anomalies
    if isinstance(hello, tls.ServerHello):
        assert tls.server_fingerprint(hello) == tls.ja3s(hello)
        return
    for proto in tls.JA4_PROTOCOLS:
        fps = tls.client_fingerprints(hello, proto)
        assert fps.ja4 == tls.ja4(hello, proto) and fps.ja4_o == tls.ja4_o(hello, proto)
        assert JA4_SHAPE.fullmatch(fps.ja4.hash), fps.ja4.hash
        assert JA4_SHAPE.fullmatch(fps.ja4_o.hash), fps.ja4_o.hash
    assert fps.ja3 == tls.ja3(hello) and fps.ja3n == tls.ja3n(hello)


def test_one_input(data: bytes) -> None:
    read = both_paths(tls.read_hello, data)
    assert set(read.anomalies) <= set(tls.ANOMALY_CODES), read.anomalies
    # a change_cipher_spec record cut short once made consumed run past the input
    # (tests/test_fuzz_regressions.py); it is fixed, so the bound is checked again
    assert 0 <= read.consumed <= len(data)
    check_hello(read.hello)
    for body in (data, data[9:]):
        check_hello(both_paths(tls.parse_client_hello, body))
        check_hello(both_paths(tls.parse_server_hello, body))
    # The C function itself at inner offsets, against the Python body parsers there.
    if len(data) >= 2:
        start, end = data[1] % len(data), len(data) - data[0] % (len(data) // 2 + 1)
        if start <= end:
            for kind, parse, build in (
                (tls.HANDSHAKE_CLIENT_HELLO, tls._client_hello, tls._client_from_fields),
                (tls.HANDSHAKE_SERVER_HELLO, tls._server_hello, tls._server_from_fields),
            ):
                fields = _tls.parse_hello_body(data, start, end, kind, tls.Extension)
                if fields is not None:
                    want = both_paths(lambda d, p=parse: p(d, start, end, None), data)
                    assert strict(build(fields, None)) == strict(want)


if __name__ == "__main__":
    main(test_one_input, max_len=8192)
    sys.exit(0)
