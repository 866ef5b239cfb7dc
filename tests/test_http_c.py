"""The C head fast path (``netsift._http``) against the Python parser it short-cuts.

``netsift.http._parse_head`` first asks ``_http.parse_head`` (when it has no
extra anomaly codes to add) and falls back to its own code when that answers
None.  Every result with the fast path must equal the result without it (the
Python code is the specification), field by field, value types included, and
the C function must answer exactly for the heads the Python parser finds
clean (a start line and no anomaly at all):

- on every head block the assembler hands to ``_parse_head`` on the corpus
  HTTP captures (those of tests/test_http.py's tshark test);
- on generated heads (several methods, targets, statuses, reasons, fields);
- on Hypothesis-mutated, truncated and random bytes, in every direction, and
  on arbitrary arguments handed to the C function directly (memory safety).

Clean request and response heads must actually take the fast path; a head with
obs-fold, a bare LF or two different Content-Length values must not.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.http as http
from fastpath import strict
from netsift.http import Direction, Head, HeadAssembler, parse_heads
from test_http import PIPELINED, RESPONSES, _capture_heads, _tshark_rows

_http = pytest.importorskip("netsift._http")

CI = os.environ.get("CI") == "true"
EXAMPLES = 3000 if CI else 400
DIRECTIONS: tuple[Direction | None, ...] = (None, "request", "response")
CODE = {None: 0, "request": 1, "response": 2}


# --------------------------------------------------------------------------- comparison


@contextmanager
def fast_path(on: bool) -> Iterator[None]:
    """The fast path on (the C function) or off (None) inside the block."""
    saved = http._c_parse_head
    http._c_parse_head = _http.parse_head if on else None
    try:
        yield
    finally:
        http._c_parse_head = saved




def check_head(new: Head | None, old: Head | None) -> None:
    assert strict(new) == strict(old)
    if new is None or old is None:
        assert new is old
        return
    assert new == old and hash(repr(new)) == hash(repr(old))
    for name in ("host", "user_agent", "content_type", "transfer_encoding"):
        assert getattr(new, name) == getattr(old, name), name
    assert strict(new) == strict(old)  # with the look-up cache built on both


def check_block(block: bytes, offset: int = 0, extra: tuple[str, ...] = ()) -> int:
    """Both paths agree on ``block`` in every direction; the C function answers
    exactly for the clean heads.  Returns how many directions took the fast path."""
    taken = 0
    for direction in DIRECTIONS:
        with fast_path(True):
            new = http._parse_head(block, offset, direction, extra)
        with fast_path(False):
            old = http._parse_head(block, offset, direction, extra)
        check_head(new, old)
        fields = _http.parse_head(block, CODE[direction])
        assert (fields is not None) == python_clean(block, direction), (block, direction, old)
        taken += fields is not None
    return taken


def python_clean(block: bytes, direction: Direction | None) -> bool:
    """Whether the Python parser finds a start line and no anomaly at all in ``block``."""
    with fast_path(False):
        head = http._parse_head(block, 0, direction)
    return head is not None and head.anomalies == ()


def check_stream(data: bytes) -> None:
    for direction in DIRECTIONS:
        with fast_path(True):
            new = parse_heads(data, direction)
        with fast_path(False):
            old = parse_heads(data, direction)
        assert strict(new) == strict(old)


class Recorder:
    """A stand-in for ``http._parse_head`` that keeps every call's arguments."""

    def __init__(self, real: Callable[..., Head | None]) -> None:
        self.real = real
        self.calls: list[tuple[bytes, int, Direction | None, tuple[str, ...]]] = []

    def __call__(self, block: bytes, offset: int, direction: Direction | None,
                 extra: tuple[str, ...] = ()) -> Head | None:
        self.calls.append((block, offset, direction, extra))
        return self.real(block, offset, direction, extra)


class Spy:
    """A stand-in for the C function that counts the calls it answered."""

    def __init__(self) -> None:
        self.calls = self.taken = 0

    def __call__(self, block: bytes, direction: int) -> Any:
        self.calls += 1
        fields = _http.parse_head(block, direction)
        self.taken += fields is not None
        return fields


# --------------------------------------------------------------------------- heads

CHROME_REQUEST = (
    b"GET /search?q=netsift&sourceid=chrome&ie=UTF-8 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: session=0123456789abcdef; theme=dark\r\n"
    b"\r\n"
)
NGINX_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.24.0\r\n"
    b"Date: Mon, 01 Jan 2024 12:00:00 GMT\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: 5120\r\n"
    b"Connection: keep-alive\r\n"
    b"Cache-Control: max-age=0, private, must-revalidate\r\n"
    b"ETag: \"5f3c-1a2b3c4d\"\r\n"
    b"Vary: Accept-Encoding\r\n"
    b"\r\n"
)


def generated_heads(seed: int = 7, count: int = 400) -> list[bytes]:
    rng = random.Random(seed)
    methods = ["GET", "POST", "HEAD", "PUT", "M-SEARCH", "X_1", "OPTIONS", "CONNECT"]
    targets = ["/", "*", "/a?b=c&d=%20", "example.com:443", "http://h/x", "/\xe9t\xe9"]
    reasons = [None, "", "OK", "Not Found", "  spaced  ", "caf\xe9\xa0", "A\x85", "x\ry"]
    names = ["Host", "User-Agent", "Content-Type", "content-length", "CONTENT-LENGTH",
             "Transfer-Encoding", "X-Odd", "Accept", "X-\xe9"]
    values = ["", "a", " padded \t", "10", "010", "5, 5", "5,6", "chunked", "gzip, chunked",
              "caf\xe9", "1" * 19, "1" * 20, "a:b:c", "\t"]
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            start = f"{rng.choice(methods)} {rng.choice(targets)} HTTP/1.{rng.randint(0, 9)}"
        else:
            reason = rng.choice(reasons)
            start = f"HTTP/1.{rng.randint(0, 1)} {rng.randint(100, 599)}"
            if reason is not None:
                start += " " + reason
        lines = [start] + [f"{rng.choice(names)}:{rng.choice(['', ' ', '  '])}{rng.choice(values)}"
                           for _ in range(rng.randint(0, 8))]
        head = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
        if rng.random() < 0.2:
            head += rng.choice([b"body", b"x\ny", b"\x00", b"\r\n"])
        out.append(head)
    return out


def corpus_blocks(corpus_dir: Path) -> list[tuple[bytes, int, Direction | None, tuple[str, ...]]]:
    """Every call the assembler makes to ``_parse_head`` on the corpus HTTP captures
    (all of them with CI=true, else the sample of tests/test_http.py's tshark test)."""
    by_file = _tshark_rows(corpus_dir)
    names = sorted(by_file)
    if not CI:
        names = random.Random(4).sample(names, min(len(names), 150))
    recorder = Recorder(http._parse_head)
    saved = http._parse_head
    http._parse_head = recorder
    try:
        for name in names:
            path = corpus_dir / name
            if path.is_file():
                _capture_heads(path, set())
    finally:
        http._parse_head = saved
    return recorder.calls


# --------------------------------------------------------------------------- the fast path is taken


def test_clean_request_and_response_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy()
    monkeypatch.setattr(http, "_c_parse_head", spy)
    (request,) = parse_heads(CHROME_REQUEST, "request").heads
    assert (spy.calls, spy.taken) == (1, 1)
    assert request.anomalies == () and request.method == "GET" and request.host == "www.example.com"
    assert request.user_agent is not None and request.user_agent.startswith("Mozilla/5.0")
    (response,) = parse_heads(NGINX_RESPONSE + b"x" * 5120, "response").heads
    assert (spy.calls, spy.taken) == (2, 2)
    assert (response.status, response.reason, response.content_length) == (200, "OK", 5120)
    assert response.anomalies == ()
    check_block(CHROME_REQUEST)
    check_block(NGINX_RESPONSE)
    assert _http.parse_head(CHROME_REQUEST, 0) is not None
    assert _http.parse_head(CHROME_REQUEST, 2) is None  # not a status line
    assert _http.parse_head(NGINX_RESPONSE, 1) is None  # not a request line


@pytest.mark.parametrize("block, code", [
    (b"GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", "obs_fold"),
    (b"GET / HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n", "obs_fold"),
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", "bare_lf"),
    (b"GET / HTTP/1.1\r\nHost: a\n\n", "bare_lf"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\n", "bare_lf"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "conflicting_content_length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "conflicting_content_length"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "te_and_cl"),
    (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", "bad_content_length"),
    (b"GET  / HTTP/1.1\r\n\r\n", "loose_start_line"),
    (b"HTTP/1.1 200\tOK\r\n\r\n", "loose_start_line"),
    (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "bad_header_line"),
    (b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n", "nul_in_head"),
])
def test_unclean_heads_do_not_take_the_fast_path(block: bytes, code: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy()
    monkeypatch.setattr(http, "_c_parse_head", spy)
    head = http._parse_head(block, 0, None)
    assert head is not None and code in head.anomalies
    assert (spy.calls, spy.taken) == (1, 0)
    check_block(block)


def test_same_content_length_twice_is_clean() -> None:
    block = b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 005, 5\r\n\r\n"
    assert check_block(block) == 2
    fields = _http.parse_head(block, 1)
    assert fields is not None and fields[-1] == 5 and type(fields[-1]) is int


def test_extra_codes_skip_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy()
    monkeypatch.setattr(http, "_c_parse_head", spy)
    head = http._parse_head(CHROME_REQUEST, 3, "request", ("truncated_head",))
    assert head is not None and head.anomalies == ("truncated_head",) and spy.calls == 0
    check_block(CHROME_REQUEST, 3, ("truncated_head",))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        _http.parse_head(bytearray(CHROME_REQUEST), 0)
    with pytest.raises(TypeError):
        _http.parse_head(CHROME_REQUEST)
    with pytest.raises(TypeError):
        _http.parse_head(CHROME_REQUEST, "request")
    assert _http.parse_head(CHROME_REQUEST, 3) is None
    assert _http.parse_head(CHROME_REQUEST, -1) is None
    assert _http.parse_head(b"", 0) is None


# --------------------------------------------------------------------------- differential


def test_fixed_and_generated_heads_agree() -> None:
    blocks = [CHROME_REQUEST, NGINX_RESPONSE, PIPELINED, RESPONSES, b"GET / HTTP/1.1",
              b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r\nHost: a", b"GET / HTTP/1.1\r\n\r",
              b"HTTP/1.1 200 \r\n\r\n", b"HTTP/1.1 200\r\n\r\n", b"HTTP/1.1 200 OK\r\r\n\r\n",
              b"HTTP/1.1 2000\r\n\r\n", b"\r\n", b"\n", b"GET / HTTP/1.1\r\n\r\nfoo\nbar",
              b"GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n", b"GET / HTTP/1.1\r\n\x0bX: y\r\n\r\n",
              b"GET / HTTP/1.1\r\n\rX: y\r\n\r\n", b"GET / HTTP/1.1\r\n:y\r\n\r\n"]
    taken = sum(check_block(b) for b in blocks + generated_heads())
    assert taken > 200
    for data in (PIPELINED, RESPONSES, CHROME_REQUEST + CHROME_REQUEST, NGINX_RESPONSE):
        check_stream(data)


@pytest.mark.corpus
def test_corpus_heads_agree(corpus_dir: Path) -> None:
    calls = corpus_blocks(corpus_dir)
    assert calls
    counts: Counter[str] = Counter()
    for block, offset, direction, extra in calls:
        with fast_path(True):
            new = http._parse_head(block, offset, direction, extra)
        with fast_path(False):
            old = http._parse_head(block, offset, direction, extra)
        check_head(new, old)
        fields = _http.parse_head(block, CODE[direction])
        clean = python_clean(block, direction)
        assert (fields is not None) == clean, block[:200]
        counts["heads"] += 1
        counts["with_extra_codes"] += bool(extra)  # cut heads: the Python parser runs
        counts["clean"] += clean and not extra
        counts["fast"] += fields is not None and not extra
    print(dict(counts), f"fast path on {counts['fast'] / counts['heads']:.1%} of corpus heads")
    assert counts["fast"] == counts["clean"] and counts["fast"] > 0.5 * counts["heads"], counts


# --------------------------------------------------------------------------- hypothesis

BASES = [CHROME_REQUEST, NGINX_RESPONSE, *generated_heads(11, 40)]
NOISE = b" \t\r\n:,0123456789\x00\x0b\x0c\x85\xa0Hh/.-"


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "noise"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "replace" and data:
            data[pos] = draw(st.sampled_from(NOISE))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[pos:]
        elif op == "noise":
            data[pos:pos] = bytes([draw(st.sampled_from(NOISE))])
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(mutated())
def test_mutated_heads_agree(block: bytes) -> None:
    check_block(block)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(BASES), st.data())
def test_truncated_heads_agree(base: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(base)))
    check_block(base[:cut])
    check_block(base[cut:])


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300), st.integers(-3, 5))
def test_random_bytes_are_safe(block: bytes, direction: int) -> None:
    fields = _http.parse_head(block, direction)
    assert fields is None or (len(fields) == 8 and 0 <= direction <= 2)
    check_block(block)


@settings(max_examples=EXAMPLES // 4, deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=4), st.integers(1, 64))
def test_mutated_streams_agree(heads: list[bytes], step: int) -> None:
    data = b"".join(heads)
    check_stream(data)
    for direction in DIRECTIONS:
        results = []
        for on in (True, False):
            with fast_path(on):
                a = HeadAssembler(direction)
                got = [h for i in range(0, len(data), step) for h in a.feed(data[i:i + step])]
                results.append(strict((got + a.close(), dict(a.anomalies), a.body_bytes,
                                       a.discarded_bytes)))
        assert results[0] == results[1]
