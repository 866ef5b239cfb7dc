"""Test-only stand-in for the flow reassembly of issue 3: TLS hellos from a capture.

Reads a capture with the fast decoder and yields every TCP payload that starts a
TLS handshake record carrying a ClientHello or ServerHello.  When a hello spans
several segments, the following payloads of the same 5-tuple direction are
appended in capture order until :func:`netsift.tls.read_hello` says the hello is
complete.  Retransmitted segments (same direction and sequence number) are
ignored.  No reordering, no gap handling: good enough for reference captures,
not a reassembler.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netsift.stats import ip_text
from netsift.tls import HelloRead, read_hello
from tcp_segments import tcp_segments

#: Give up on a hello that has not completed after this many bytes.
MAX_PENDING_BYTES = 1 << 18


@dataclass
class FoundHello:
    frame: int  # frame of the segment where the hello starts (1-based)
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    sport: int
    dport: int
    segments: int
    read: HelloRead


def _address(hi: int, lo: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(ip_text(hi, lo))


def _hello_start(payload: bytes) -> int | None:
    """Offset of a handshake record carrying a hello, after leading complete
    change_cipher_spec or alert records (a CCS precedes a second ClientHello,
    RFC 8446 §D.4; some servers send a warning alert first)."""
    pos = 0
    while len(payload) >= pos + 6 and payload[pos] in (20, 21) and payload[pos + 1] == 3:
        pos += 5 + int.from_bytes(payload[pos + 3:pos + 5], "big")
    if (len(payload) >= pos + 6 and payload[pos] == 0x16 and payload[pos + 1] == 3
            and payload[pos + 5] in (1, 2)):
        return pos
    return None


def tls_hellos(path: Path) -> Iterator[FoundHello]:
    pending: dict[tuple[int, ...], tuple[int, bytearray, int]] = {}
    for segment in tcp_segments(path):
        key = segment.direction
        payload = segment.payload
        if key in pending:
            frame, buf, n = pending.pop(key)
            buf += payload
            n += 1
        elif (start := _hello_start(payload)) is not None:
            frame, buf, n = segment.frame, bytearray(payload[start:]), 1
        else:
            continue
        read = read_hello(bytes(buf))
        if read.complete or len(buf) > MAX_PENDING_BYTES or "tls_truncated" not in read.anomalies:
            yield FoundHello(frame, _address(key[0], key[1]), _address(key[2], key[3]),
                             key[4], key[5], n, read)
        else:
            pending[key] = (frame, buf, n)
