"""HTTP/1.x message heads (request and status lines, header fields) from one direction of a TCP stream.

Pure functions on bytes: nothing here knows about packets, flows or reports,
and no input makes anything here raise.  :class:`HeadAssembler` takes the
consecutive payload chunks of one direction of a connection and emits every
complete head; :func:`parse_heads` runs it over one buffer.

:class:`HeadAssembler` is the specification.  ``netsift._http.Assembler`` (see
_http.c) is the same state machine in C, built to answer exactly as it does
for every input and every chunking (tests/test_http_assembler_c.py holds the
two together); :func:`new_assembler` returns the C one when the extension was
built and the Python class otherwise, and callers that only feed should use
it, typed as the :class:`Assembler` protocol both satisfy.

Rules implemented (RFC 9112 unless said otherwise):

- Start lines, §3 (``method SP request-target SP HTTP-version``) and §4
  (``HTTP-version SP status-code SP [reason-phrase]``).  An HTTP-version
  (``HTTP/`` DIGIT ``.`` DIGIT, §2.3, major version 1) is required in both,
  which is what lets heads be found on any port: HTTP/0.9 simple requests are
  not recognised.  The method is any token (RFC 9110 §9.1, §5.6.2).  Words
  separated by other whitespace than one SP are accepted, as §3 allows
  ("MAY ... parse on whitespace-delimited word boundaries"), with
  ``loose_start_line``.  Empty lines before a request line are skipped (§2.2).
- Lines end in CRLF; a bare LF is accepted, as §2.2 allows and many servers
  do, with ``bare_lf``.  Field lines (§5): ``name ":" OWS value OWS``; a line
  without a colon, with an empty name or with whitespace before the colon
  (§5.1) is dropped with ``bad_header_line``; obsolete line folding (§5.2) is
  joined to the previous value with one SP and flagged ``obs_fold``.  Bytes
  are decoded as latin-1 (RFC 9110 §5.5: field values are octets); a NUL
  anywhere in the head is flagged ``nul_in_head``.
- Message body length, §6.3, from one direction only: responses with status
  1xx, 204 or 304 have no body (rule 1); ``101 Switching Protocols`` ends
  HTTP/1 on the connection (§9.9 of RFC 9110, e.g. WebSocket or h2c) and so
  does the HTTP/2 connection preface ``PRI * HTTP/2.0`` (RFC 9113 §3.4);
  Transfer-Encoding whose final coding is ``chunked`` is walked chunk by
  chunk (§7.1) and wins over Content-Length, flagged ``te_and_cl`` (rule 3,
  a request smuggling sign); a request with another final coding has no
  knowable length (``unsupported_transfer_coding``, stop); a response with one
  runs until close; Content-Length is skipped (rule 5) — a malformed value is
  ``bad_content_length``, a list of different values
  ``conflicting_content_length`` (RFC 9110 §8.6; also a smuggling sign), and
  the body length is then unknown; a request with neither has no body
  (rule 6); a response with neither runs until the connection closes
  (rule 8), so nothing after it is parsed.  What one direction cannot know:
  the response to a HEAD request or a successful CONNECT has no body even
  with a Content-Length (rules 1–2); the caller that pairs directions may
  call :meth:`HeadAssembler.expect_no_body` after such a response head.
- When bytes where a head should start are not one (a capture starting
  mid-stream, TLS on port 80, an unknown body length), the assembler is
  *lost*: it discards input and looks for a start line again only at the
  start of the next chunk (segment), as Wireshark does.  So a garbage stream
  gives results that depend on the segmentation; a well-formed one does not.
  Bytes missing from the capture are reported with :meth:`HeadAssembler.gap`.

Bounds (per direction): a head is at most :data:`MAX_HEAD_BYTES`; a longer
one is cut there, emitted with ``head_too_long`` and the assembler is lost.
The buffer never holds more than that plus one chunk; body bytes are skipped
without being stored.  Counters of discarded and skipped bytes are kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

__all__ = [
    "ANOMALY_CODES",
    "MAX_HEAD_BYTES",
    "Assembler",
    "Direction",
    "Head",
    "HeadAssembler",
    "HeadsParse",
    "new_assembler",
    "parse_heads",
]

Direction = Literal["request", "response"]

#: Every anomaly code this module emits (stable identifiers, Zeek "weird" style).
ANOMALY_CODES = (
    "bare_lf",  # a line of the head ends in LF without CR (RFC 9112 §2.2)
    "head_too_long",  # no end of head within MAX_HEAD_BYTES: cut there
    "bad_start_line",  # bytes where a head should start are not a request/status line
    "loose_start_line",  # start-line words separated by other whitespace than one SP (§3)
    "bad_header_line",  # field line without colon, empty name or space before colon (§5.1)
    "obs_fold",  # obsolete line folding (RFC 9112 §5.2)
    "nul_in_head",  # a NUL byte in the head (RFC 9110 §5.5)
    "bad_content_length",  # Content-Length is not 1*DIGIT (RFC 9110 §8.6)
    "conflicting_content_length",  # several different Content-Length values (smuggling)
    "te_and_cl",  # Transfer-Encoding and Content-Length together (RFC 9112 §6.3 rule 3)
    "unsupported_transfer_coding",  # Transfer-Encoding whose final coding is not chunked
    "bad_chunk",  # a chunk-size line that is not hex digits (RFC 9112 §7.1)
    "truncated_head",  # the stream ends inside a head
)

#: Largest head accepted.  nginx's default ``large_client_header_buffers 4 8k``
#: allows 32 KiB of request head, Apache's ``LimitRequestFields 100`` of
#: ``LimitRequestFieldSize 8190`` about 800 KiB; 64 KiB covers real traffic
#: with room and keeps per-direction state small.
MAX_HEAD_BYTES = 64 * 1024
#: Longest chunk-size line (with chunk extensions) accepted before ``bad_chunk``.
MAX_CHUNK_LINE_BYTES = 4096
#: Empty lines skipped before a start line (RFC 9112 §2.2 says "at least one").
MAX_LEADING_EMPTY_BYTES = 64

_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_WS = rb"[ \t]+"
# The target runs to the last whitespace before the version, so a target
# holding spaces (invalid, seen in attacks and broken clients) is kept whole
# — as Zeek does — and flagged ``loose_start_line``.
_REQUEST = re.compile(rb"([" + _TCHAR + rb"]+)" + _WS + rb"([^ \t\r\n](?:[^\r\n]*[^ \t\r\n])?)" + _WS
                      + rb"(HTTP/1\.[0-9])[ \t]*\Z")
_REQUEST_STRICT = re.compile(rb"[" + _TCHAR + rb"]+ [^ \t\r\n]+ HTTP/1\.[0-9]\Z")
_STATUS = re.compile(rb"(HTTP/1\.[0-9])" + _WS + rb"([0-9]{3})(?:[ \t]+(.*))?\Z", re.S)
_STATUS_STRICT = re.compile(rb"HTTP/1\.[0-9] [0-9]{3}(?: [^\t]*)?\Z", re.S)
_H2_PREFACE = b"PRI * HTTP/2.0"
# Prefixes of a start line still being received (no LF yet).
_VERSION_PREFIX = rb"(?:H(?:T(?:T(?:P(?:/(?:1(?:\.(?:[0-9]%s)?)?)?)?)?)?)?)?"
_REQUEST_PARTIAL = re.compile(rb"[" + _TCHAR + rb"]+(?:" + _WS + rb"[^\n]*)?\Z")
_STATUS_PARTIAL = re.compile(
    _VERSION_PREFIX % (rb"(?:" + _WS + rb"(?:[0-9]{0,3}(?:[ \t][^\n]*)?)?)?") + rb"\Z", re.S)
_DIGITS = re.compile(rb"[0-9]{1,19}\Z")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}\Z")
_NO_BODY_STATUS = (204, 304)


def _latin1(b: bytes) -> str:
    return b.decode("latin-1")


@dataclass(frozen=True)
class Head:
    """One HTTP/1.x request or response head.

    ``offset`` and ``length`` place the head in the direction's byte stream
    (start line to the end of the empty line).  ``headers`` keeps every field
    in wire order with its original name; look-ups are case-insensitive.
    """

    kind: Direction
    version: str
    method: str | None
    target: str | None
    status: int | None
    reason: str | None
    headers: tuple[tuple[str, str], ...]
    content_length: int | None
    anomalies: tuple[str, ...]
    offset: int
    length: int

    def header_values(self, name: str) -> tuple[str, ...]:
        return self._by_name.get(name.lower(), ())

    @cached_property
    def _by_name(self) -> dict[str, tuple[str, ...]]:
        """Field values by lower-cased name, in wire order (built on first look-up)."""
        out: dict[str, tuple[str, ...]] = {}
        for n, v in self.headers:
            key = n.lower()
            out[key] = (*out[key], v) if key in out else (v,)
        return out

    def header(self, name: str) -> str | None:
        """The first value of field ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def host(self) -> str | None:
        return self.header("host")

    @property
    def user_agent(self) -> str | None:
        return self.header("user-agent")

    @property
    def content_type(self) -> str | None:
        return self.header("content-type")

    @property
    def transfer_encoding(self) -> str | None:
        values = self.header_values("transfer-encoding")
        return ", ".join(values) if values else None


@dataclass(frozen=True)
class HeadsParse:
    """Result of :func:`parse_heads`: the heads found, stream-level anomaly
    codes (each once, in first-seen order) and byte counters."""

    heads: tuple[Head, ...]
    anomalies: tuple[str, ...]
    body_bytes: int
    discarded_bytes: int


def _split_lines(block: bytes, anomalies: list[str]) -> list[bytes]:
    lines = block.split(b"\n")
    out = []
    for line in lines:
        if line.endswith(b"\r"):
            out.append(line[:-1])
        else:
            out.append(line)
    # every line but the last (the remainder after the final LF) ended in LF
    if any(not line.endswith(b"\r") for line in lines[:-1]):
        anomalies.append("bare_lf")
    return out


def _start_line(line: bytes, direction: Direction | None, anomalies: list[str]
                ) -> tuple[Direction, str, str | None, str | None, int | None, str | None] | None:
    if direction != "response" and (m := _REQUEST.match(line)):
        if not _REQUEST_STRICT.match(line):
            anomalies.append("loose_start_line")
        return ("request", _latin1(m.group(3)), _latin1(m.group(1)), _latin1(m.group(2)), None, None)
    if direction != "request" and (m := _STATUS.match(line)):
        if not _STATUS_STRICT.match(line):
            anomalies.append("loose_start_line")
        reason = m.group(3)
        return ("response", _latin1(m.group(1)), None, None, int(m.group(2)),
                _latin1(reason).strip() if reason is not None else None)
    return None


def _content_length(values: tuple[str, ...], anomalies: list[str]) -> int | None:
    if not values:
        return None
    numbers: set[int] = set()
    for value in values:
        for part in value.split(","):
            text = part.strip(" \t").encode("latin-1")
            if not _DIGITS.match(text):
                anomalies.append("bad_content_length")
                return None
            numbers.add(int(text))
    if len(numbers) != 1:
        anomalies.append("conflicting_content_length")
        return None
    return numbers.pop()


# The C fast path (``netsift._http``, see _http.c): ``parse_head(block, direction)``
# (direction 0 either, 1 request, 2 response) parses a head exactly as _parse_head
# below and returns the fields it computes as a plain tuple (kind, version, method,
# target, status, reason, headers, content_length), or None whenever _parse_head
# would note any anomaly or find no start line -- then it runs in full.  The Python
# code stays the specification; tests/test_http_c.py holds the two together.
_c_parse_head: Callable[[bytes, int], tuple[Any, ...] | None] | None
try:
    from ._http import parse_head as _imported_parse_head

    _c_parse_head = _imported_parse_head
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _c_parse_head = None

_DIRECTION_CODE: dict[Direction | None, int] = {None: 0, "request": 1, "response": 2}


def _parse_head(block: bytes, offset: int, direction: Direction | None,
                extra: tuple[str, ...] = ()) -> Head | None:
    """Parse a head (start line up to the end of the empty line, or a cut-off
    part of one); None when the first line is not a start line."""
    if _c_parse_head is not None and not extra:
        fields = _c_parse_head(block, _DIRECTION_CODE[direction])
        if fields is not None:
            kind, version, method, target, status, reason, wire_fields, length = fields
            return Head(kind, version, method, target, status, reason, wire_fields, length, (),
                        offset, len(block))
    anomalies: list[str] = list(extra)
    if b"\x00" in block:
        anomalies.append("nul_in_head")
    lines = _split_lines(block, anomalies)
    start = _start_line(lines[0], direction, anomalies)
    if start is None:
        return None
    kind, version, method, target, status, reason = start
    headers: list[list[str]] = []
    for line in lines[1:]:
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            anomalies.append("obs_fold")
            if headers:
                headers[-1][1] = (headers[-1][1] + " " + _latin1(line.strip(b" \t"))).strip(" ")
            else:
                anomalies.append("bad_header_line")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.rstrip(b" \t") or name[:1].isspace():
            anomalies.append("bad_header_line")
            continue
        headers.append([_latin1(name), _latin1(value.strip(b" \t"))])
    fields = tuple((n, v) for n, v in headers)
    cl_values = tuple(v for n, v in fields if n.lower() == "content-length")
    length = _content_length(cl_values, anomalies)
    if cl_values and any(n.lower() == "transfer-encoding" for n, _ in fields):
        anomalies.append("te_and_cl")
    return Head(kind, version, method, target, status, reason, fields, length,
                tuple(dict.fromkeys(anomalies)), offset, len(block))


def _head_end(buf: bytes | bytearray, start: int, stop: int) -> int:
    """Index just past the empty line ending the head, or -1 (search from ``start``)."""
    i = buf.find(b"\n", start, stop)
    while i != -1:
        if buf[i + 1:i + 2] == b"\n":
            return i + 2
        if buf[i + 1:i + 3] == b"\r\n":
            return i + 3
        i = buf.find(b"\n", i + 1, stop)
    return -1


# Assembler states
_HEAD = "head"  # looking for / reading a head
_BODY = "body"  # skipping ``_remaining`` body bytes
_CHUNK_SIZE = "chunk_size"  # reading a chunk-size line
_CHUNK_DATA = "chunk_data"  # skipping chunk data, then its CRLF
_TRAILERS = "trailers"  # reading the trailer section after the last chunk
_UNTIL_CLOSE = "until_close"  # body runs to the end of the connection
_DONE = "done"  # not HTTP/1 any more (101 Switching Protocols, h2 preface)
_LOST = "lost"  # not in sync: look for a start line at the next chunk


class HeadAssembler:
    """Heads from consecutive payload chunks of one direction of a connection.

    ``feed`` returns the heads completed by that chunk; ``close`` returns a
    head cut short by the end of the stream (with ``truncated_head``).
    ``direction`` restricts which start lines are recognised (None: both).
    """

    def __init__(self, direction: Direction | None = None, max_head_bytes: int = MAX_HEAD_BYTES) -> None:
        if direction not in ("request", "response", None):
            raise ValueError(f"direction must be 'request', 'response' or None, not {direction!r}")
        if max_head_bytes < 16:
            raise ValueError(f"max_head_bytes must be at least 16, not {max_head_bytes}")
        self.direction: Direction | None = direction
        self.max_head_bytes = max_head_bytes
        #: for a response stream: called with each response head as it completes, returns
        #: the method of the request it answers (None if unknown), so that a response to
        #: HEAD, or a 2xx to CONNECT, is known to have no body before its bytes are read
        self.request_of: Callable[[Head], str | None] | None = None
        self.anomalies: Counter[str] = Counter()
        self.body_bytes = 0
        self.discarded_bytes = 0
        self.state = _HEAD
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._scanned = 0  # bytes of _buf already searched for the end of a head
        self._remaining = 0

    # -- public

    def feed(self, chunk: bytes) -> list[Head]:
        out: list[Head] = []
        if not chunk:
            return out
        if self.state == _LOST:
            self.state = _HEAD  # a segment boundary: try again
        if self.state in (_DONE, _UNTIL_CLOSE):
            self._discard_input(len(chunk), body=self.state == _UNTIL_CLOSE)
            return out
        if (self.state == _BODY or self.state == _CHUNK_DATA) and not self._buf and len(chunk) < self._remaining:
            # inside a body that goes on past this chunk: nothing to look at
            self._remaining -= len(chunk)
            self._discard_input(len(chunk), body=True)
            return out
        self._buf += chunk
        self._run(out)
        return out

    def close(self) -> list[Head]:
        """End of stream: a head in progress is returned with ``truncated_head``."""
        out: list[Head] = []
        if self.state == _HEAD and self._buf:
            start = self._skip_empty_lines()
            if start < len(self._buf):
                head = _parse_head(bytes(self._buf[start:]), self._offset + start, self.direction,
                                   ("truncated_head",))
                if head is not None:
                    self._count(head.anomalies)
                    out.append(head)
                elif self._could_start(bytes(self._buf[start:]).rstrip(b"\r")):
                    self.anomalies["truncated_head"] += 1
        self._drop(len(self._buf), discard=True)
        self.state = _DONE
        return out

    def gap(self, n: int) -> None:
        """``n`` bytes of the stream are missing (not captured).  Inside a body of
        known length they are counted as skipped body; anywhere else the
        assembler is lost until the next chunk (Zeek's content-gap handling)."""
        if n <= 0:
            return
        if self.state in (_BODY, _CHUNK_DATA) and not self._buf and n <= self._remaining:
            self._remaining -= n
            self._offset += n
            self.body_bytes += n
            if self._remaining == 0 and self.state == _BODY:
                self.state = _HEAD
            return
        if self.state in (_DONE, _UNTIL_CLOSE):
            self._offset += n
            return
        self._lose(None)
        self._offset += n

    def body_left(self) -> int:
        """How many of the next stream bytes are certainly skipped (body or not HTTP):
        :meth:`skip` may be given fewer than this instead of :meth:`feed`; -1 means
        every byte from here on."""
        state = self.state
        if state in (_UNTIL_CLOSE, _DONE):
            return -1
        if state in (_BODY, _CHUNK_DATA) and not self._buf:
            return self._remaining
        return 0

    def skip(self, n: int) -> None:
        """Account for ``n`` stream bytes that :meth:`body_left` says are skipped: the
        same as :meth:`feed` with them, without the bytes."""
        left = self.body_left()
        if not (n > 0 and (left == -1 or n < left)):
            raise ValueError(f"skip({n}) with {left} bytes skippable")
        if left == -1:
            self._discard_input(n, body=self.state == _UNTIL_CLOSE)
        else:
            self._remaining -= n
            self._discard_input(n, body=True)

    def expect_no_body(self) -> None:
        """The last head's message has no body whatever its fields say (response
        to HEAD, 2xx to CONNECT — known only to whoever pairs the directions)."""
        if self.state in (_BODY, _CHUNK_SIZE, _UNTIL_CLOSE):
            self.state = _HEAD
            self._remaining = 0
            self._run([])

    # -- internals

    def _count(self, codes: tuple[str, ...]) -> None:
        self.anomalies.update(codes)

    def _discard_input(self, n: int, body: bool) -> None:
        if body:
            self.body_bytes += n
        else:
            self.discarded_bytes += n
        self._offset += n

    def _drop(self, n: int, discard: bool = False, body: bool = False) -> None:
        n = min(n, len(self._buf))
        del self._buf[:n]
        self._offset += n
        self._scanned = 0
        if body:
            self.body_bytes += n
        elif discard:
            self.discarded_bytes += n

    def _lose(self, code: str | None) -> None:
        if code:
            self.anomalies[code] += 1
        self._drop(len(self._buf), discard=True)
        self.state = _LOST

    def _skip_empty_lines(self) -> int:
        i = 0
        buf = self._buf
        while i < len(buf) and i < MAX_LEADING_EMPTY_BYTES and buf[i] in (0x0D, 0x0A):
            i += 1
        return i

    def _could_start(self, line: bytes) -> bool:
        if self.direction != "response" and _REQUEST_PARTIAL.match(line):
            return True
        return self.direction != "request" and _STATUS_PARTIAL.match(line) is not None

    def _run(self, out: list[Head]) -> None:
        while self._buf:
            state = self.state
            if state == _HEAD:
                if not self._step_head(out):
                    return
            elif state == _BODY:
                n = min(self._remaining, len(self._buf))
                self._drop(n, body=True)
                self._remaining -= n
                if self._remaining == 0:
                    self.state = _HEAD
            elif state == _CHUNK_SIZE:
                if not self._step_chunk_size():
                    return
            elif state == _CHUNK_DATA:
                if self._remaining > 0:
                    n = min(self._remaining, len(self._buf))
                    self._drop(n, body=True)
                    self._remaining -= n
                    continue
                lf = self._buf.find(b"\n", 0, 3)
                if lf == -1:
                    if len(self._buf) >= 3:
                        self._lose("bad_chunk")
                    return
                self._drop(lf + 1, body=True)
                self.state = _CHUNK_SIZE
            elif state == _TRAILERS:
                if not self._step_trailers():
                    return
            else:  # _UNTIL_CLOSE, _DONE, _LOST
                self._drop(len(self._buf), discard=state != _UNTIL_CLOSE, body=state == _UNTIL_CLOSE)
                return

    def _step_head(self, out: list[Head]) -> bool:
        """Try to complete a head; False when more input is needed."""
        start = self._skip_empty_lines()
        if start:
            self._drop(start, discard=True)
            if not self._buf:
                return False
        buf = self._buf
        limit = self.max_head_bytes
        lf = buf.find(b"\n", 0, limit)
        if lf != -1 and buf[:14] != _H2_PREFACE:
            # The usual case, a whole head in the buffer: a head parsed from it has a
            # valid start line, which is all the checks below would establish first
            end = _head_end(buf, max(0, self._scanned - 2), min(len(buf), limit))
            if end != -1:
                head = _parse_head(bytes(buf[:end]), self._offset, self.direction)
                if head is not None:
                    if head.anomalies:
                        self._count(head.anomalies)
                    out.append(head)
                    self._drop(end)
                    self._after_head(head)
                    return True
        first = bytes(buf[:lf] if lf != -1 else buf[:limit])
        if first.endswith(b"\r"):
            first = first[:-1]
        if lf != -1 or len(buf) >= limit:
            if first == _H2_PREFACE and self.direction != "response":
                self.state = _DONE
                self._drop(len(buf), discard=True)
                return False
            if _start_line(first, self.direction, []) is None:
                self._lose("bad_start_line")
                return False
        elif not self._could_start(first):
            self._lose("bad_start_line")
            return False
        stop = min(len(buf), limit)
        end = _head_end(buf, max(0, self._scanned - 2), stop)
        if end == -1:
            if len(buf) < limit:
                self._scanned = len(buf)
                return False
            head = _parse_head(bytes(buf[:limit]), self._offset, self.direction, ("head_too_long",))
            if head is not None:
                self._count(head.anomalies)
                out.append(head)
            self._lose(None)
            return False
        head = _parse_head(bytes(buf[:end]), self._offset, self.direction)
        if head is None:  # cannot happen: the start line was checked above
            self._lose("bad_start_line")
            return False
        self._count(head.anomalies)
        out.append(head)
        self._drop(end)
        self._after_head(head)
        return True

    def _after_head(self, head: Head) -> None:
        status = head.status
        if head.kind == "response" and self.request_of is not None and not (
            status is not None and 100 <= status < 200  # interim: the request is still open
        ):
            # the request this response answers decides what RFC 9112 §6.3 rules 1-2 say
            method = self.request_of(head)
            if method == "HEAD":
                self.state = _HEAD
                return
            if method == "CONNECT" and status is not None and 200 <= status < 300:
                self.state = _DONE  # a tunnel: what follows is not HTTP
                return
        if head.kind == "response" and status is not None:
            if status == 101:
                self.state = _DONE
                return
            if 100 <= status < 200 or status in _NO_BODY_STATUS:
                self.state = _HEAD
                return
        te = head.transfer_encoding
        if te is not None:
            codings = [c.strip(" \t").lower() for c in te.split(",") if c.strip(" \t")]
            if codings and codings[-1] == "chunked":
                self.state = _CHUNK_SIZE
                return
            self.anomalies["unsupported_transfer_coding"] += 1
            self.state = _LOST if head.kind == "request" else _UNTIL_CLOSE
            return
        if head.header("content-length") is not None:
            if head.content_length is None:  # malformed or conflicting: length unknown
                self.state = _LOST
            elif head.content_length > 0:
                self._remaining = head.content_length
                self.state = _BODY
            else:
                self.state = _HEAD
            return
        self.state = _HEAD if head.kind == "request" else _UNTIL_CLOSE

    def _step_chunk_size(self) -> bool:
        lf = self._buf.find(b"\n", 0, MAX_CHUNK_LINE_BYTES)
        if lf == -1:
            if len(self._buf) >= MAX_CHUNK_LINE_BYTES:
                self._lose("bad_chunk")
            return False
        line = bytes(self._buf[:lf]).rstrip(b"\r")
        size_text = line.split(b";", 1)[0].strip(b" \t")
        if not _HEX.match(size_text):
            self._lose("bad_chunk")
            return False
        size = int(size_text, 16)
        self._drop(lf + 1, body=True)
        if size == 0:
            self.state = _TRAILERS
        else:
            self._remaining = size
            self.state = _CHUNK_DATA
        return True

    def _step_trailers(self) -> bool:
        # The trailer section is field lines ending in an empty line (§7.1.2).
        buf = self._buf
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":
            self._drop(1 if buf[:1] == b"\n" else 2, body=True)
            self.state = _HEAD
            return True
        if buf[:1] == b"\r" and len(buf) < 2:
            return False
        end = _head_end(buf, 0, min(len(buf), self.max_head_bytes))
        if end == -1:
            if len(buf) >= self.max_head_bytes:
                self._lose("head_too_long")
            return False
        self._drop(end, body=True)
        self.state = _HEAD
        return True


class Assembler(Protocol):
    """What :class:`HeadAssembler` and its C port ``netsift._http.Assembler`` both
    offer (the type :func:`new_assembler` returns).  The C type's attributes are
    read-only but for ``request_of``."""

    #: see :attr:`HeadAssembler.request_of`
    request_of: Callable[[Head], str | None] | None

    @property
    def direction(self) -> Direction | None: ...
    @property
    def max_head_bytes(self) -> int: ...
    @property
    def anomalies(self) -> Counter[str]: ...
    @property
    def body_bytes(self) -> int: ...
    @property
    def discarded_bytes(self) -> int: ...
    @property
    def state(self) -> str: ...
    def feed(self, chunk: bytes) -> list[Head]: ...
    def close(self) -> list[Head]: ...
    def gap(self, n: int) -> None: ...
    def body_left(self) -> int: ...
    def skip(self, n: int) -> None: ...
    def expect_no_body(self) -> None: ...


# The C assembler (``netsift._http.Assembler``, see _http.c): HeadAssembler's state
# machine with the head parser's fast path inside, a fifth of its time per chunk on
# real traffic.  HeadAssembler above stays the specification.
_c_assembler: Callable[[Direction | None, int], Assembler] | None
try:
    from ._http import Assembler as _imported_assembler

    _c_assembler = _imported_assembler
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _c_assembler = None


def new_assembler(direction: Direction | None = None, max_head_bytes: int = MAX_HEAD_BYTES) -> Assembler:
    """A head assembler: the C one when the extension was built, else :class:`HeadAssembler`
    (the same answers either way; the same arguments and errors)."""
    if _c_assembler is not None:
        return _c_assembler(direction, max_head_bytes)
    return HeadAssembler(direction, max_head_bytes)


def parse_heads(data: bytes, direction: Direction | None = None) -> HeadsParse:
    """Every HTTP/1.x head in ``data``, one direction of a connection from its
    start (pipelined messages included; bodies skipped as the module doc says)."""
    assembler = new_assembler(direction)
    heads = assembler.feed(bytes(data)) + assembler.close()
    return HeadsParse(tuple(heads), tuple(assembler.anomalies), assembler.body_bytes,
                      assembler.discarded_bytes)
