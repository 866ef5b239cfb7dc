"""The C head assembler (``netsift._http.Assembler``) against HeadAssembler, its specification.

``netsift.http.new_assembler`` hands out the C type when the extension was
built; it must answer exactly as the Python class for every input and every
chunking.  Both are driven with the same calls and compared after every call:
the value returned (heads compared with ``fastpath.strict``, so field types
and each head's cached ``_by_name`` table count), the exception raised, the
anomaly Counter (type, items, order), ``body_bytes``, ``discarded_bytes``,
``state``, ``body_left()`` and the heads handed to ``request_of``:

- Hypothesis-generated HTTP streams (pipelined requests and responses,
  Content-Length, chunked bodies with extensions and trailers, bad and
  conflicting lengths, TE with CL, other codings, bare LF, obs-fold, NUL,
  1xx/101/204/304, HEAD and CONNECT answered through ``request_of``, the h2
  preface, garbage, heads longer than a small ``max_head_bytes``) fed in
  random chunkings with empty and one-byte chunks, ``gap``, ``skip`` where
  ``body_left`` allows it, ``expect_no_body`` and ``close``;
- the TCP streams of the corpus HTTP captures (those tests/test_http_c.py
  reads), in their real segmentation with their gaps, the way the application
  layer feeds them (skipping what ``body_left`` allows), and re-chunked;
- errors: bad constructor arguments, ``skip`` beyond ``body_left``, input that
  is not bytes, a ``request_of`` that raises.

The few differences _http.c documents (integers only, read-only attributes,
no re-entry, no pickling) are pinned down at the end.
"""

from __future__ import annotations

import gc
import os
import pickle
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.http as http
from fastpath import strict
from netsift.http import MAX_HEAD_BYTES, Direction, Head, HeadAssembler, new_assembler, parse_heads
from test_http import PIPELINED, RESPONSES, _tshark_rows

_http = pytest.importorskip("netsift._http")

CI = os.environ.get("CI") == "true"
EXAMPLES = 3000 if CI else 400
DIRECTIONS: tuple[Direction | None, ...] = (None, "request", "response")
SYN = 0x02

Op = tuple[Any, ...]  # ("feed", bytes) | ("gap", n) | ("skip", n) | ("expect_no_body",) | ("close",)


# --------------------------------------------------------------------------- the pair


class RequestOf:
    """A ``request_of`` callback answering from a list of methods (None when it
    runs out), keeping what it was shown."""

    def __init__(self, methods: list[str | None]) -> None:
        self.methods = list(methods)
        self.seen: list[Any] = []

    def __call__(self, head: Head) -> str | None:
        self.seen.append(strict(head))  # as the callback sees it, before the state moves on
        return self.methods.pop(0) if self.methods else None


def outcome(fn: Any, *args: Any) -> tuple[Any, ...]:
    try:
        return ("ok", strict(fn(*args)))
    except Exception as exc:  # the type and message must match too
        return ("raised", type(exc).__name__, str(exc) if isinstance(exc, ValueError) else "")


class Pair:
    """A HeadAssembler and a C Assembler given the same calls; ``call`` compares
    what each returned or raised, then everything either shows."""

    def __init__(self, direction: Direction | None = None, max_head_bytes: int = MAX_HEAD_BYTES,
                 methods: list[str | None] | None = None) -> None:
        self.py = HeadAssembler(direction, max_head_bytes)
        self.c = _http.Assembler(direction, max_head_bytes)
        assert type(self.c) is _http.Assembler
        self.callbacks: list[RequestOf] = []
        if methods is not None:
            for a in (self.py, self.c):
                cb = RequestOf(methods)
                self.callbacks.append(cb)
                a.request_of = cb
        self.heads = 0
        self.check()

    def call(self, name: str, *args: Any) -> Any:
        old = outcome(getattr(self.py, name), *args)
        new = outcome(getattr(self.c, name), *args)
        assert new == old, (name, args[:1])
        if old[0] == "ok" and isinstance(old[1], tuple) and old[1][0] == "list":
            self.heads += len(old[1][1])
        self.check()
        return old

    def check(self) -> None:
        py, c = self.py, self.c
        assert type(c.anomalies) is Counter
        assert strict(list(c.anomalies.items())) == strict(list(py.anomalies.items()))
        assert (c.state, c.body_bytes, c.discarded_bytes, c.body_left()) == \
            (py.state, py.body_bytes, py.discarded_bytes, py.body_left())
        assert strict((c.direction, c.max_head_bytes)) == strict((py.direction, py.max_head_bytes))
        if self.callbacks:
            assert self.callbacks[1].seen == self.callbacks[0].seen
            assert self.callbacks[1].methods == self.callbacks[0].methods

    def run(self, ops: list[Op]) -> None:
        for op in ops:
            self.call(op[0], *op[1:])


def feed_all(pair: Pair, data: bytes, step: int) -> None:
    for i in range(0, len(data), step):
        pair.call("feed", data[i:i + step])
    pair.call("close")


# --------------------------------------------------------------------------- streams

METHODS = [b"GET", b"POST", b"HEAD", b"CONNECT", b"PUT", b"M-SEARCH", b"OPTIONS"]
TARGETS = [b"/", b"/a?b=c", b"*", b"example.com:443", b"http://h/x", b"/caf\xe9", b"/a b"]
REASONS = [b"", b" OK", b" Not Found", b" ", b" \xe9t\xe9", b"\tTab"]
STATUSES = [100, 101, 103, 200, 201, 204, 206, 301, 304, 404, 500]
EXTRA_FIELDS = [
    b"Host: example.com", b"User-Agent: curl/8.0", b"Accept: */*", b"X-Empty:", b"x-lower: v",
    b"X-Caf\xe9: \xe9", b"NoColon", b"Bad : space", b": empty-name", b" folded continuation",
    b"\tfolded tab", b"X-Nul: a\x00b", b"Connection: keep-alive", b"Upgrade: h2c",
]
CODINGS = [b"chunked", b"Chunked", b"gzip, chunked", b" chunked ", b"chunked, gzip", b"gzip",
           b"", b", ,", b"identity", b"x, CHUNKED"]
LENGTHS = [b"5, 5", b"5, 6", b"+5", b"", b"abc", b"1" * 20, b" 007 ", b"3,", b"0"]


@st.composite
def fields_and_body(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Framing fields and a body for them (sometimes a wrong one)."""
    framing = draw(st.sampled_from(["none", "length", "chunked", "coding", "odd_length", "te_and_cl"]))
    fields: list[bytes] = []
    body = b""
    if framing in ("length", "te_and_cl"):
        n = draw(st.integers(0, 40))
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"]))
        fields.append(name + b": " + str(n).encode())
        if draw(st.booleans()):
            fields.append(b"Content-Length: " + str(n).encode())  # the same value again
        body = draw(st.binary(min_size=n, max_size=n)) if draw(st.integers(0, 4)) else b"x" * (n // 2)
    if framing == "odd_length":
        fields.append(b"Content-Length: " + draw(st.sampled_from(LENGTHS)))
        body = draw(st.binary(max_size=8))
    if framing in ("chunked", "te_and_cl"):
        fields.append(b"Transfer-Encoding: " + draw(st.sampled_from(CODINGS[:5])))
        body = draw(chunked_body())
    if framing == "coding":
        values = draw(st.lists(st.sampled_from(CODINGS), min_size=1, max_size=3))
        fields.extend(b"Transfer-Encoding: " + v for v in values)
        body = draw(st.one_of(chunked_body(), st.binary(max_size=12)))
    return fields, body


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        size = draw(st.integers(1, 20))
        text = draw(st.sampled_from(["%x", "%X", "%04x", " %x ", "%x\t"])) % size
        ext = draw(st.sampled_from([b"", b";name=value", b";a;b=\"c\"", b" ; x"]))
        data = draw(st.binary(min_size=size, max_size=size))
        end = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b"x\n", b"xyz", b"ab\r\n", b"\r\r\n"]))
        out += text.encode() + ext + draw(st.sampled_from([b"\r\n", b"\n", b"\r\r\n"])) + data + end
    if draw(st.integers(0, 6)) == 0:
        out += draw(st.sampled_from([b"zz\r\n", b"1234567890abcdef\r\n", b"-1\r\n", b"\r\n",
                                     b"5" * 5000, b"fffffffffffffff\r\n", b"0x5\r\n"]))
    last = draw(st.sampled_from([b"0", b"000", b"0;ext", b"0 "]))
    trailers = b"".join(draw(st.lists(st.sampled_from([b"X-T: 1\r\n", b"Expires: 0\n", b"bad\r\n"]),
                                      max_size=2)))
    return out + last + b"\r\n" + trailers + draw(st.sampled_from([b"\r\n", b"\n", b"", b"\r"]))


@st.composite
def message(draw: st.DrawFn, kind: str) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    if kind == "request":
        sep = draw(st.sampled_from([b" ", b" ", b" ", b"\t", b"  "]))
        start = (draw(st.sampled_from(METHODS)) + sep + draw(st.sampled_from(TARGETS)) + sep
                 + b"HTTP/1." + str(draw(st.integers(0, 1))).encode())
    else:
        start = (b"HTTP/1." + str(draw(st.integers(0, 1))).encode() + b" "
                 + str(draw(st.sampled_from(STATUSES))).encode() + draw(st.sampled_from(REASONS)))
    framing, body = draw(fields_and_body())
    extra = draw(st.lists(st.sampled_from(EXTRA_FIELDS), max_size=4))
    fields = draw(st.permutations(framing + extra))
    lines = [start, *fields]
    head = b"".join(line + (eol if draw(st.integers(0, 9)) else b"\n") for line in lines) + eol
    return head + body


@st.composite
def stream(draw: st.DrawFn) -> bytes:
    pieces = []
    for _ in range(draw(st.integers(1, 5))):
        what = draw(st.sampled_from(["request", "request", "response", "response", "empty_lines",
                                     "garbage", "h2", "long_head", "partial"]))
        if what in ("request", "response"):
            pieces.append(draw(message(what)))
        elif what == "empty_lines":
            pieces.append(draw(st.sampled_from([b"\r\n", b"\n\n", b"\r\n" * 40, b"\r", b"\r\n" * 32,
                                                b"\n" * 63, b"\r" * 65])))
        elif what == "garbage":
            pieces.append(draw(st.binary(min_size=1, max_size=40)))
        elif what == "h2":
            pieces.append(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04")
        elif what == "long_head":
            pieces.append(b"GET /" + b"a" * draw(st.integers(0, 120)) + b" HTTP/1.1\r\nX-Long: "
                          + b"b" * draw(st.integers(0, 120)) + b"\r\n\r\n")
        else:  # a start line cut short
            whole = draw(message(draw(st.sampled_from(["request", "response"]))))
            pieces.append(whole[:draw(st.integers(0, 20))])
    return b"".join(pieces)


def assembler_args(draw: Any) -> tuple[Direction | None, int, list[str | None] | None]:
    direction = draw(st.sampled_from(DIRECTIONS))
    max_head = draw(st.sampled_from([16, 17, 20, 24, 32, 40, 48, 64, 100, MAX_HEAD_BYTES]))
    methods = draw(st.one_of(st.none(), st.lists(
        st.sampled_from(["GET", "HEAD", "CONNECT", "POST", None]), max_size=6)))
    return direction, max_head, methods


def drive(pair: Pair, data: bytes, draw: Any) -> None:
    """Feed ``data`` in drawn pieces with drawn gap/skip/expect_no_body/close calls between."""
    pos = 0
    while pos < len(data):
        action = draw(st.sampled_from(["feed"] * 6 + ["byte", "empty", "gap", "skip", "no_body",
                                                      "body_left", "close"]))
        if action == "feed":
            n = draw(st.integers(1, 64))
            pair.call("feed", data[pos:pos + n])
            pos += n
        elif action == "byte":
            pair.call("feed", data[pos:pos + 1])
            pos += 1
        elif action == "empty":
            pair.call("feed", b"")
        elif action == "gap":
            n = draw(st.integers(0, 20))
            pair.call("gap", n)
            pos += max(n, 0)
        elif action == "skip":
            left = pair.py.body_left()
            if left == -1 or left > 1:
                n = draw(st.integers(1, 30 if left == -1 else left - 1))
                pair.call("skip", n)
                pos += n
        elif action == "no_body":
            pair.call("expect_no_body")
        elif action == "body_left":
            pair.call("body_left")
        elif draw(st.integers(0, 3)) == 0:  # close mid-stream, now and then
            pair.call("close")
    pair.call("close")
    pair.call("close")


# --------------------------------------------------------------------------- fixed cases


def test_the_factory_gives_the_c_type() -> None:
    a = new_assembler("response", 100)
    assert type(a) is _http.Assembler and a.direction == "response" and a.max_head_bytes == 100
    assert type(new_assembler()) is _http.Assembler and new_assembler().max_head_bytes == MAX_HEAD_BYTES
    assert http._c_assembler is _http.Assembler


def test_parse_heads_agrees_with_the_python_class(monkeypatch: pytest.MonkeyPatch) -> None:
    data = [PIPELINED, RESPONSES, PIPELINED + RESPONSES, b"GET /a HTT", b"\r\n\r\nGET / HTTP/1.1\n\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"HTTP/1.1 101 Switching\r\n\r\nxyz"]
    for d in data:
        for direction in DIRECTIONS:
            new = parse_heads(d, direction)
            with monkeypatch.context() as m:
                m.setattr(http, "_c_assembler", None)
                old = parse_heads(d, direction)
            assert strict(new) == strict(old)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_fixed_streams_every_step(step: int, direction: Direction | None) -> None:
    streams = [PIPELINED, RESPONSES, PIPELINED * 3,
               b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;a=b\r\nhello\r\n00A\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET / HTTP/1.1\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
               b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbody",
               b"GET / HTTP/1.1\nHost: a\n X-fold\nBad : x\n\nGET\t/b  HTTP/1.0\r\n\r\n"]
    for data in streams:
        for methods in (None, ["HEAD", "CONNECT", None, "GET"]):
            pair = Pair(direction, MAX_HEAD_BYTES, methods)
            feed_all(pair, data, step)


TRICKY = [
    # chunk-size lines: 15 and 16 hex digits, prefixes, spaces, CRs, empty
    *(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"
      for line in (b"1234567890abcdef", b"fffffffffffffff", b"0x2", b" 2 ", b"2\r\r", b"2\r ;x", b";x",
                   b"", b"2;a=b;c", b"02", b"\t2\t")),
    # the CRLF after chunk data: late, bare, missing, doubled
    *(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab" + end + b"0\r\n\r\nGET / HTTP/1.1\r\n\r\n"
      for end in (b"\r\n", b"\n", b"x\n", b"xy\n", b"xyz\n", b"\r\r\n", b"", b"\r")),
    # trailers: none, some, a lone CR, bare LF, a bad line
    *(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + t + b"HTTP/1.1 204 No\r\n\r\n"
      for t in (b"\r\n", b"\n", b"\r", b"A: 1\r\n\r\n", b"A: 1\nB: 2\n\n", b"bad\r\n\r\n", b"\r\r\n")),
    # 63, 64, 65 bytes of empty lines before a head
    *(empties + b"GET / HTTP/1.1\r\n\r\n" for empties in (b"\r\n" * 31 + b"\r", b"\r\n" * 32, b"\n" * 64, b"\r" * 65,
                                                          b"\n" * 65, b"\r\n" * 33)),
    # start lines cut short, then the end of the stream
    b"GET /a HTT", b"HTTP/1.1 2", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabGET", b"G", b"\r\n\r",
    b"GET / HTTP/1.1\r\nHost: a", b"\x16\x03\x01\x02\x00", b"GET\r\r", b"HTTP/1.1 \r",
]


@pytest.mark.parametrize("max_head", [16, 24, 64, MAX_HEAD_BYTES])
def test_tricky_streams_every_step(max_head: int) -> None:
    for data in TRICKY:
        for step in (1, 2, 3, 5, 8, 13, 1000):
            for direction in DIRECTIONS:
                feed_all(Pair(direction, max_head, ["HEAD"]), data, step)


@pytest.mark.parametrize("max_head", range(16, 41))
def test_the_end_of_a_head_across_the_bound(max_head: int) -> None:
    """A head whose empty line straddles max_head_bytes: the look for LF stops at the
    bound, the look at what follows it does not."""
    for pad in range(0, 30):
        for eol in (b"\n", b"\r\n"):
            data = b"GET / HTTP/1.1" + eol + b"X:" + b"a" * pad + eol + eol + b"GET /b HTTP/1.1" + eol + eol
            for step in (len(data), 7):
                feed_all(Pair("request", max_head), data, step)


def test_a_head_split_then_pipelined_heads() -> None:
    """The scan position of a split head is forgotten once it completes."""
    first = b"GET /a HTTP/1.1\r\nX: " + b"y" * 60
    for rest in (b"z\r\n\r\nGET / HTTP/1.1\r\n\r\n", b"\r\n\r\nGET / HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n"):
        pair = Pair("request")
        pair.call("feed", first)
        pair.call("feed", rest)
        assert pair.heads == 1 + rest.count(b"GET")


def test_expect_no_body_with_a_chunk_line_waiting() -> None:
    for tail in (b"zz", b"HTTP/1.1 2", b"5", b"\r"):
        for direction in ("response", None):
            pair = Pair(direction)
            pair.call("feed", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + tail)
            assert pair.c.state == "chunk_size"
            pair.call("expect_no_body")
            pair.call("feed", b"HTTP/1.1 200 OK\r\n\r\n")
            pair.call("close")


@pytest.mark.parametrize("max_head", [16, 17, 31, 64])
def test_heads_longer_than_the_bound(max_head: int) -> None:
    long_head = b"GET /" + b"a" * 70 + b" HTTP/1.1\r\nHost: " + b"h" * 50 + b"\r\n\r\n"
    trailers = (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: "
                + b"t" * 80 + b"\r\n\r\n")
    cut = Counter[str]()
    for data in (long_head, long_head * 2, trailers, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 20):
        for step in (1, 5, 16, 1000):
            for direction in DIRECTIONS:
                pair = Pair(direction, max_head)
                feed_all(pair, data, step)
                cut.update(pair.py.anomalies)
    assert cut["head_too_long"] > 0


def test_connect_and_head_through_request_of() -> None:
    responses = (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"  # answers HEAD: no body
                 b"HTTP/1.1 100 Continue\r\n\r\n"  # interim: request_of not asked
                 b"HTTP/1.1 200 Connection established\r\n\r\n"  # answers CONNECT: a tunnel
                 b"\x16\x03\x01\x00\x05hello")
    pair = Pair("response", MAX_HEAD_BYTES, ["HEAD", "CONNECT"])
    pair.call("feed", responses)
    assert pair.c.state == "done" and pair.heads == 3 and len(pair.callbacks[1].seen) == 2
    pair = Pair("response", MAX_HEAD_BYTES, ["CONNECT"])
    pair.call("feed", b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nxxHTTP/1.1 200 OK\r\n\r\n")
    assert pair.c.state == "until_close"


def test_gap_skip_and_expect_no_body() -> None:
    pair = Pair("response")
    pair.call("feed", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    pair.call("gap", 10)  # inside the body: counted as body
    pair.call("skip", 50)
    pair.call("skip", 37)  # 37 left: not fewer than body_left
    pair.call("skip", 36)
    pair.call("feed", b"xHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    pair.call("expect_no_body")
    pair.call("feed", b"HTTP/1.1 200 OK\r\n\r\nuntil close")
    pair.call("skip", 10**6)
    pair.call("gap", 10**12)
    pair.call("gap", 0)
    pair.call("gap", -4)
    pair.call("expect_no_body")  # back to head: the next bytes are looked at again
    pair.call("feed", b"HTTP/1.1 204 No Content\r\n\r\n")
    pair.call("gap", 3)  # between heads: lost until the next chunk
    pair.call("feed", b"ent\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")  # not a start line: all of it lost
    assert pair.c.state == "lost" and pair.heads == 4
    pair.call("feed", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
    assert pair.c.state == "body"
    pair.call("gap", 3)  # the whole body: back to head
    assert pair.c.state == "head"
    assert pair.heads == 5
    chunked = Pair("request")
    chunked.call("feed", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n")
    chunked.call("gap", 16)  # the chunk data: still in chunk_data, the CRLF is next
    chunked.call("feed", b"\r\n0\r\n\r\n")
    chunked.call("feed", b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunked.call("expect_no_body")
    chunked.call("feed", b"5\r\n")
    assert chunked.c.anomalies["bad_start_line"] == 1


# --------------------------------------------------------------------------- hypothesis


@settings(max_examples=EXAMPLES, deadline=None)
@given(stream(), st.data())
def test_generated_streams_agree(data: bytes, drawn: st.DataObject) -> None:
    direction, max_head, methods = assembler_args(drawn.draw)
    drive(Pair(direction, max_head, methods), data, drawn.draw)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(stream(), st.sampled_from(DIRECTIONS), st.sampled_from([16, 23, 48, MAX_HEAD_BYTES]),
       st.integers(1, 9))
def test_generated_streams_every_step(data: bytes, direction: Direction | None, max_head: int,
                                      step: int) -> None:
    feed_all(Pair(direction, max_head, ["HEAD", "CONNECT", "GET"]), data, step)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_random_bytes_agree(data: bytes, drawn: st.DataObject) -> None:
    direction, max_head, methods = assembler_args(drawn.draw)
    drive(Pair(direction, max_head, methods), data, drawn.draw)


# --------------------------------------------------------------------------- corpus


def corpus_streams(corpus_dir: Path) -> Iterator[tuple[str, list[Op]]]:
    """The calls tests/test_http.py's stand-in reassembly makes on each direction of
    the corpus HTTP captures (all of them with CI=true, else a sample): each
    payload fed, bytes missing from the capture reported with gap."""
    from tcp_segments import tcp_segments

    names = sorted(_tshark_rows(corpus_dir))
    if not CI:
        names = random.Random(5).sample(names, min(len(names), 150))
    for name in names:
        path = corpus_dir / name
        if not path.is_file():
            continue
        ops: dict[tuple[int, ...], list[Op]] = {}
        next_seq: dict[tuple[int, ...], int] = {}
        for segment in tcp_segments(path):
            key = segment.direction
            seq = segment.seq
            payload = segment.payload
            if segment.flags & SYN:
                seq = (seq + 1) % 2**32
            calls = ops.setdefault(key, [])
            if key in next_seq:
                ahead = (seq - next_seq[key]) % 2**32
                if 0 < ahead < 2**31:
                    calls.append(("gap", ahead))
                elif ahead:
                    payload = payload[2**32 - ahead:]
            next_seq[key] = (seq + segment.payload_len) % 2**32
            calls.append(("feed", payload))
        for key, calls in ops.items():
            yield f"{name} {key}", calls


def as_applayer(ops: list[Op], pair: Pair) -> None:
    """Feed as the application layer does: skip what body_left allows instead."""
    for op in ops:
        if op[0] == "feed":
            left = pair.py.body_left()
            if op[1] and (left == -1 or len(op[1]) < left):
                pair.call("skip", len(op[1]))
                continue
        pair.call(*op)
    pair.call("close")


def rechunked(ops: list[Op], rng: random.Random) -> list[Op]:
    """The same bytes and gaps, cut at other places (one-byte and empty chunks included)."""
    out: list[Op] = []
    data = b""
    for op in [*ops, ("gap", 0)]:
        if op[0] == "feed":
            data += op[1]
            continue
        i = 0
        while i < len(data):
            n = rng.choice([0, 1, 1, 2, 5, 17, 100, 600, 1460, 4000])
            out.append(("feed", data[i:i + n]))
            i += n
        data = b""
        if op[1]:
            out.append(op)
    return [*out, ("close",)]


@pytest.mark.corpus
def test_corpus_streams_agree(corpus_dir: Path) -> None:
    rng = random.Random(9)
    counts: Counter[str] = Counter()
    for label, ops in corpus_streams(corpus_dir):
        first = next((op[1] for op in ops if op[0] == "feed" and op[1]), b"")
        response: Direction = "response" if first.startswith(b"HTTP/") else "request"
        runs = [
            (Pair(), [*ops, ("close",)]),  # as tests/test_http.py feeds them
            (Pair(response, MAX_HEAD_BYTES, ["GET", "HEAD", "CONNECT"] * 3), None),
            (Pair(), rechunked(ops, rng)),
            (Pair(response, 64), rechunked(ops, rng)),
        ]
        for pair, calls in runs:
            try:
                if calls is None:
                    as_applayer(ops, pair)
                else:
                    pair.run(calls)
            except AssertionError as exc:
                raise AssertionError(f"{label}: {exc}") from exc
            counts["heads"] += pair.heads
            counts["body_bytes"] += pair.py.body_bytes
            counts.update(pair.py.anomalies)
        counts["directions"] += 1
    print(dict(counts))
    assert counts["heads"] > 1000 and counts["body_bytes"] > 0 and counts["directions"] > 100


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("args", [("both",), (1,), (b"request",), ("Request",), ("request", 15),
                                  (None, 0), (None, -5), (None, None), (None, "20"), (None, [])])
def test_bad_constructor_arguments(args: tuple[Any, ...]) -> None:
    old = outcome(HeadAssembler, *args)
    new = outcome(_http.Assembler, *args)
    assert old[0] == "raised" and new == old
    assert outcome(new_assembler, *args) == old
    with pytest.raises(TypeError):
        _http.Assembler(None, 20, 3)
    with pytest.raises(TypeError):
        _http.Assembler(colour="red")


def test_keyword_and_boundary_arguments() -> None:
    for kwargs in ({"direction": "response", "max_head_bytes": 16}, {"max_head_bytes": 10**30},
                   {"direction": None}, {"max_head_bytes": True + 15}):
        pair = Pair(**kwargs)
        feed_all(pair, RESPONSES + PIPELINED, 5)


def test_skip_beyond_body_left() -> None:
    pair = Pair("request")
    for n in (1, 0, -1, 10**30):
        assert pair.call("skip", n)[0:2] == ("raised", "ValueError")
    pair.call("feed", b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab")
    for n in (8, 9, 0, -2, 10**30):
        assert pair.call("skip", n)[0:2] == ("raised", "ValueError")
    assert pair.call("skip", 7)[0] == "ok"
    pair.call("feed", b"abc")
    for n in ("x", None, 1.5):
        pair.call("skip", n)
    pair.call("feed", b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n")
    for n in ("x", None):
        assert pair.call("skip", n)[0:2] == ("raised", "TypeError")
        assert pair.call("gap", n)[0:2] == ("raised", "TypeError")


def test_input_that_is_not_bytes() -> None:
    pair = Pair()
    for chunk in (None, 0, "", [], b"", bytearray()):
        assert pair.call("feed", chunk) == ("ok", ("list", ()))
    for chunk in ("GET", 123, [1, 2], object()):
        assert pair.call("feed", chunk)[0:2] == ("raised", "TypeError")
    pair.call("feed", b"\x16\x03\x01")  # not HTTP: lost
    assert pair.call("feed", "GET")[0:2] == ("raised", "TypeError")  # lost -> head, then raises
    assert pair.c.state == "head"
    pair.call("feed", bytearray(b"GET / HTTP/1.1\r\n"))
    pair.call("feed", memoryview(b"Host: x\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"))
    pair.call("feed", b"HTTP/1.1 200 OK\r\n\r\n")  # direction None: a response, until close
    pair.call("feed", "a str")  # counted by its length, as len() does
    pair.call("feed", [1, 2, 3])
    pair.call("close")
    pair.call("feed", "more")
    assert pair.heads == 3


class Boom(Exception):
    pass


def test_a_request_of_that_raises() -> None:
    pair = Pair("response")

    def boom(head: Head) -> str | None:
        raise Boom(head.status)

    pair.py.request_of = pair.c.request_of = boom
    assert pair.call("feed", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx")[0:2] == ("raised", "Boom")
    pair.call("feed", b"HTTP/1.1 100 Continue\r\n\r\n")  # not asked: interim
    pair.py.request_of = pair.c.request_of = lambda head: 7  # not a method: compared, no match
    pair.call("feed", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nxx")
    pair.py.request_of = pair.c.request_of = None
    pair.call("feed", b"HTTP/1.1 204 OK\r\n\r\n")
    assert pair.c.request_of is None


# --------------------------------------------------------------------------- documented differences


def test_documented_differences() -> None:
    a = _http.Assembler("request")
    for name in ("direction", "max_head_bytes", "anomalies", "body_bytes", "discarded_bytes", "state"):
        with pytest.raises(AttributeError):
            setattr(a, name, None)
    with pytest.raises(AttributeError):
        del a.request_of
    with pytest.raises(TypeError):
        a.gap(1.5)  # integers only
    with pytest.raises(TypeError):
        _http.Assembler(None, 20.0)
    with pytest.raises(OverflowError):
        a.gap(2**64)  # 64-bit offsets
    a.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
    a.feed(b"x")
    before = (a.state, a.body_bytes, a.discarded_bytes, dict(a.anomalies))
    with pytest.raises(OverflowError):
        a.gap(2**64 - 1)  # the offset is already past 0: nothing changes
    assert (a.state, a.body_bytes, a.discarded_bytes, dict(a.anomalies)) == before
    a.gap(2**63)
    assert a.state == "lost" and a.body_left() == 0
    with pytest.raises(TypeError):
        pickle.dumps(a)
    b = _http.Assembler("response")
    b.request_of = lambda head: b.feed(b"x") and None  # feeding itself from its callback
    with pytest.raises(RuntimeError):
        b.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    assert b.state == "head"  # as it was when request_of was called; usable again
    b.request_of = None
    assert b.feed(b"HTTP/1.1 204 No Content\r\n\r\n")[0].status == 204


def test_a_cycle_through_request_of_is_collected() -> None:
    collected = []

    class Flag:
        def __del__(self) -> None:
            collected.append(True)

    def make() -> None:
        a = _http.Assembler("response")
        flag = Flag()

        def request_of(head: Head) -> str | None:
            assert flag is not None and a is not None  # a -> request_of -> a
            return None

        a.request_of = request_of
        a.feed(b"HTTP/1.1 200 OK\r\n\r\n")

    make()
    gc.collect()
    assert collected == [True]
