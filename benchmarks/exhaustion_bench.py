#!/usr/bin/env python3
"""Resource exhaustion (issue 9): hostile captures, and what ``netsift analyze`` does with them.

    python benchmarks/exhaustion_bench.py                  # every case at full size
    python benchmarks/exhaustion_bench.py --scale 0.1      # a tenth of each
    python benchmarks/exhaustion_bench.py --cases flows,dns --keep DIR

Each case is a capture built to exhaust one table of the analysis:

========== ===============================================================
flows      1,000,000 TCP SYNs from distinct addresses (1,000,000 flows)
frag4      1,000,000 first IPv4 fragments (MF=1, offset 0), distinct IDs:
           trains that never complete
frag6      the same in IPv6 (Fragment header), 512-byte fragments
dns        1,000,000 DNS queries, each for a distinct name, from 200,000
           clients under 100,000 registered domains
dns_few    1,000,000 distinct names from 50 clients under 200 domains
           (the shape of a tunnel: few keys, many names per key)
tls        2,000 TCP connections, interleaved, whose ClientHello
           handshake header claims 16 MB (0xFFFFFF), each continued by
           segments of handshake records
http       2,000 connections each sending an HTTP request head with a
           header line that never ends
dns_tcp    2,000 DNS-over-TCP connections whose length prefix claims
           65,535 bytes, followed by 84 kB of zeros (more length prefixes of 0)
========== ===============================================================

Each capture is written into a temporary directory with numpy (no per-packet
Scapy), then analysed by ``python -m netsift analyze`` in its own process; the
peak RSS is that process's (``resource.getrusage(RUSAGE_CHILDREN)`` after it
exits: every case runs in a fresh child of a fresh worker).  The table shows
the caps in force and the evictions and drops, read from the report.

The generator functions are also used by ``tests/test_exhaustion.py`` at a
smaller scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Capture time of the first packet (2023-11-14T22:13:20Z).
T0 = 1_700_000_000
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
_MAC = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")


# --------------------------------------------------------------------------- writing


def _records(n: int, length: int, step_us: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pcap records of ``length``-byte Ethernet frames, ``step_us`` apart.

    Returns the record array (to write) and its frames as an (n, length) uint8 view
    with both MAC addresses filled in.
    """
    rec = np.zeros(n, dtype=np.dtype([("hdr", "<u4", 4), ("frame", "u1", length)]))
    usec = np.arange(n, dtype=np.int64) * step_us
    hdr = rec["hdr"]
    hdr[:, 0] = T0 + usec // 1_000_000
    hdr[:, 1] = usec % 1_000_000
    hdr[:, 2] = hdr[:, 3] = length
    frame = rec["frame"]
    frame[:, :12] = np.frombuffer(_MAC, dtype=np.uint8)
    return rec, frame


def _put(frame: np.ndarray, off: int, values: Any, width: int) -> None:
    """Write ``values`` big-endian, ``width`` bytes, at byte ``off`` of every frame."""
    v = np.asarray(values, dtype=np.uint64)
    for k in range(width):
        frame[:, off + k] = (v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF)


def _ipv4(frame: np.ndarray, ip_len: int, ident: Any, frag: int, proto: int, src: Any, dst: Any) -> None:
    """An Ethernet type and IPv4 header (20 bytes at 14) with a correct checksum."""
    n = len(frame)
    _put(frame, 12, 0x0800, 2)
    frame[:, 14] = 0x45
    _put(frame, 16, ip_len, 2)
    _put(frame, 18, ident, 2)
    _put(frame, 20, frag, 2)
    frame[:, 22] = 64
    frame[:, 23] = proto
    _put(frame, 26, src, 4)
    _put(frame, 30, dst, 4)
    words = frame[:, 14:34].reshape(n, 10, 2).astype(np.uint32)
    total = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    _put(frame, 24, (~total) & 0xFFFF, 2)


def _chunks(n: int, size: int = 250_000) -> list[tuple[int, int]]:
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def _write_chunked(path: Path, n: int, make: Callable[[int, int], np.ndarray]) -> int:
    """Write ``make(a, b)`` record arrays for consecutive ranges (flat memory at any ``n``)."""
    with open(path, "wb") as fh:
        fh.write(_PCAP_HEADER)
        for a, b in _chunks(n):
            fh.write(make(a, b).tobytes())
    return n


# --------------------------------------------------------------------------- the cases


def gen_flows(path: Path, n: int = 1_000_000) -> int:
    """``n`` TCP SYNs to 10.0.0.2:80 from ``n`` distinct addresses: ``n`` flows, 1 µs apart."""

    def make(a: int, b: int) -> np.ndarray:
        k = np.arange(a, b, dtype=np.uint64)
        rec, f = _records(b - a, 54)
        rec["hdr"][:, 1] = (k % 1_000_000).astype(np.uint32)
        rec["hdr"][:, 0] = (T0 + k // 1_000_000).astype(np.uint32)
        _ipv4(f, 40, k & np.uint64(0xFFFF), 0, 6, np.uint64(0x0B000000) + k, 0x0A000002)
        _put(f, 34, np.uint64(1024) + k % np.uint64(60000), 2)
        _put(f, 36, 80, 2)
        _put(f, 38, k * np.uint64(2654435761) & np.uint64(0xFFFFFFFF), 4)
        f[:, 46] = 0x50
        f[:, 47] = 0x02
        _put(f, 48, 1024, 2)
        return rec

    return _write_chunked(path, n, make)


def gen_frag4(path: Path, n: int = 1_000_000, payload: int = 64) -> int:
    """``n`` first IPv4 fragments (UDP, MF=1, offset 0) of distinct trains: none completes."""

    def make(a: int, b: int) -> np.ndarray:
        k = np.arange(a, b, dtype=np.uint64)
        rec, f = _records(b - a, 34 + payload)
        rec["hdr"][:, 1] = (k % 1_000_000).astype(np.uint32)
        rec["hdr"][:, 0] = (T0 + k // 1_000_000).astype(np.uint32)
        # a distinct (src, id) per train: the id runs through 16 bits, the source after it
        _ipv4(f, 20 + payload, k & np.uint64(0xFFFF), 0x2000, 17,
              np.uint64(0x0B000000) + (k >> np.uint64(16)), 0x0A000002)  # fmt: skip
        _put(f, 34, 5000, 2)
        _put(f, 36, 9999, 2)
        _put(f, 38, 8 + 2 * payload, 2)  # the whole datagram's UDP length
        return rec

    return _write_chunked(path, n, make)


def gen_frag6(path: Path, n: int = 1_000_000, payload: int = 512) -> int:
    """``n`` first IPv6 fragments (Fragment header, M=1, offset 0) of distinct trains."""
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")

    def make(a: int, b: int) -> np.ndarray:
        k = np.arange(a, b, dtype=np.uint64)
        rec, f = _records(b - a, 14 + 40 + 8 + payload)
        rec["hdr"][:, 1] = (k % 1_000_000).astype(np.uint32)
        rec["hdr"][:, 0] = (T0 + k // 1_000_000).astype(np.uint32)
        _put(f, 12, 0x86DD, 2)
        f[:, 14] = 0x60
        _put(f, 18, 8 + payload, 2)
        f[:, 20] = 44  # Fragment header
        f[:, 21] = 64
        f[:, 22:38] = np.frombuffer(src, dtype=np.uint8)
        f[:, 38:54] = np.frombuffer(dst, dtype=np.uint8)
        f[:, 54] = 17  # UDP inside
        _put(f, 56, 1, 2)  # offset 0, M=1
        _put(f, 58, k, 4)  # a distinct 32-bit identification per train
        _put(f, 62, 5000, 2)
        _put(f, 64, 9999, 2)
        _put(f, 66, 8 + 2 * payload, 2)
        return rec

    return _write_chunked(path, n, make)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_digits(v: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII hex digits of ``v`` (most significant first)."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return _HEX[((v[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)]


def _dec_digits(v: np.ndarray, width: int) -> np.ndarray:
    p = np.uint64(10) ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    return (np.uint8(ord("0")) + ((v[:, None] // p) % np.uint64(10)).astype(np.uint8)).astype(np.uint8)


def gen_dns(path: Path, n: int = 1_000_000, clients: int = 200_000, domains: int = 100_000,
            resolvers: int = 4) -> int:  # fmt: skip
    """``n`` DNS A queries over UDP, each for a distinct name ``<16 hex>.d<6 digits>.com``.

    Query ``k`` comes from client ``k % clients`` (10.x addresses) and asks for a
    name under domain ``(k * 7919) % domains``; the first label is a 64-bit mix of
    ``k`` (distinct for distinct ``k``).  No query is answered.
    """
    qname_len = 1 + 16 + 1 + 7 + 1 + 3 + 1
    dns_len = 12 + qname_len + 4
    length = 14 + 20 + 8 + dns_len

    def make(a: int, b: int) -> np.ndarray:
        k = np.arange(a, b, dtype=np.uint64)
        rec, f = _records(b - a, length, step_us=2)
        us = k * np.uint64(2)
        rec["hdr"][:, 1] = (us % np.uint64(1_000_000)).astype(np.uint32)
        rec["hdr"][:, 0] = (T0 + us // np.uint64(1_000_000)).astype(np.uint32)
        client = np.uint64(0x0A000000) + np.uint64(0x10000) + k % np.uint64(clients)
        server = np.uint64(0xC0000200) + k % np.uint64(resolvers) + np.uint64(1)
        _ipv4(f, 20 + 8 + dns_len, k & np.uint64(0xFFFF), 0, 17, client, server)
        _put(f, 34, np.uint64(1024) + (k // np.uint64(clients)) % np.uint64(60000), 2)
        _put(f, 36, 53, 2)
        _put(f, 38, 8 + dns_len, 2)
        d = 42
        _put(f, d, k & np.uint64(0xFFFF), 2)  # id
        _put(f, d + 2, 0x0100, 2)  # RD
        _put(f, d + 4, 1, 2)  # QDCOUNT
        q = d + 12
        f[:, q] = 16
        # splitmix-style mix: a bijection on 64 bits, so distinct k give distinct labels
        x = k + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
        f[:, q + 1 : q + 17] = _hex_digits(x, 16)
        f[:, q + 17] = 7
        f[:, q + 18] = ord("d")
        f[:, q + 19 : q + 25] = _dec_digits((k * np.uint64(7919)) % np.uint64(domains), 6)
        f[:, q + 25] = 3
        f[:, q + 26 : q + 29] = np.frombuffer(b"com", dtype=np.uint8)
        f[:, q + 29] = 0
        _put(f, q + 30, 1, 2)  # A
        _put(f, q + 32, 1, 2)  # IN
        return rec

    with np.errstate(over="ignore"):
        return _write_chunked(path, n, make)


def _tcp_frame(src: int, dst: int, sport: int, dport: int, seq: int, flags: int, payload: bytes,
               ack: int = 0) -> bytes:  # fmt: skip
    ip_len = 40 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, ip_len, 0, 0, 64, 6, 0, src, dst))
    s = sum(struct.unpack("!10H", ip))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    struct.pack_into("!H", ip, 10, ~s & 0xFFFF)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0)
    return _MAC + b"\x08\x00" + bytes(ip) + tcp + payload


class _Packets:
    """Whole pcap records built one at a time (for the small stream cases)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.usec = 0

    def add(self, frame: bytes) -> None:
        self.usec += 10
        self.parts.append(struct.pack("<IIII", T0 + self.usec // 1_000_000, self.usec % 1_000_000,
                                      len(frame), len(frame)) + frame)  # fmt: skip

    def write(self, path: Path) -> int:
        with open(path, "wb") as fh:
            fh.write(_PCAP_HEADER)
            fh.writelines(self.parts)
        return len(self.parts)


_SYN, _ACK, _PA = 0x02, 0x10, 0x18


def _streams(path: Path, conns: int, first: Callable[[int], bytes], more: Callable[[int, int], bytes],
             segments: int, dport: int) -> int:  # fmt: skip
    """``conns`` client connections, handshaken, then ``segments`` data segments each,
    interleaved round-robin (so every connection's state is live at once)."""
    out = _Packets()
    server = 0x0A000002
    seqs = []
    for c in range(conns):
        client, sport = 0x0B000000 + c, 20000 + c % 40000
        isn = 1000 + c
        out.add(_tcp_frame(client, server, sport, dport, isn, _SYN, b""))
        out.add(_tcp_frame(server, client, dport, sport, 5000, _SYN | _ACK, b"", isn + 1))
        out.add(_tcp_frame(client, server, sport, dport, isn + 1, _ACK, b"", 5001))
        seqs.append(isn + 1)
    for s in range(segments):
        for c in range(conns):
            client, sport = 0x0B000000 + c, 20000 + c % 40000
            data = first(c) if s == 0 else more(c, s)
            out.add(_tcp_frame(client, server, sport, dport, seqs[c], _PA, data, 5001))
            seqs[c] = (seqs[c] + len(data)) & 0xFFFFFFFF
    return out.write(path)


#: bytes of handshake data per TLS segment
TLS_CHUNK = 1400


def gen_tls(path: Path, conns: int = 2_000, segments: int = 100) -> int:
    """``conns`` connections to port 443 whose ClientHello claims 0xFFFFFF bytes (16 MB).

    The first segment is a handshake record starting the hello (type 1, length
    0xFFFFFF); every later one is a further handshake record of :data:`TLS_CHUNK`
    bytes continuing it.  ``segments`` × 1.4 kB per connection; the hello never ends.
    """
    body = bytes(range(256)) * (TLS_CHUNK // 256 + 1)

    def first(c: int) -> bytes:
        hs = b"\x01\xff\xff\xff\x03\x03" + body[: TLS_CHUNK - 6]
        return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

    def more(c: int, s: int) -> bytes:
        return b"\x16\x03\x01" + struct.pack("!H", TLS_CHUNK) + body[:TLS_CHUNK]

    return _streams(path, conns, first, more, segments, 443)


def gen_http(path: Path, conns: int = 2_000, segments: int = 100) -> int:
    """``conns`` connections to port 80 sending ``GET / HTTP/1.1`` and then one header
    line that never ends (1,400 bytes a segment, ``segments`` segments)."""

    def first(c: int) -> bytes:
        return b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: " + b"a" * 1350

    def more(c: int, s: int) -> bytes:
        return b"a" * TLS_CHUNK

    return _streams(path, conns, first, more, segments, 80)


def gen_dns_tcp(path: Path, conns: int = 2_000, segments: int = 60) -> int:
    """``conns`` DNS-over-TCP connections whose first length prefix claims 65,535 bytes,
    followed by ``segments`` segments of 1,400 bytes of zeros (past the claimed message,
    more length prefixes, of 0)."""

    def first(c: int) -> bytes:
        return b"\xff\xff" + b"\x12\x34\x01\x00\x00\x01" + b"\x00" * 1392

    def more(c: int, s: int) -> bytes:
        return b"\x00" * TLS_CHUNK

    return _streams(path, conns, first, more, segments, 53)


#: case -> (generator, full-size arguments, what the case exhausts)
CASES: dict[str, tuple[Callable[..., int], dict[str, int], str]] = {
    "flows": (gen_flows, {"n": 1_000_000}, "1M unique TCP flows"),
    "frag4": (gen_frag4, {"n": 1_000_000}, "1M incomplete IPv4 fragment trains"),
    "frag6": (gen_frag6, {"n": 1_000_000}, "1M incomplete IPv6 fragment trains, 512-byte fragments"),
    "dns": (gen_dns, {"n": 1_000_000}, "1M distinct DNS names, 200k clients, 100k domains"),
    "dns_few": (gen_dns, {"n": 1_000_000, "clients": 50, "domains": 200},
                "1M distinct DNS names, 50 clients, 200 domains"),
    "tls": (gen_tls, {"conns": 2_000, "segments": 100}, "2,000 ClientHellos claiming 16 MB, 140 kB each"),
    "http": (gen_http, {"conns": 2_000, "segments": 100}, "2,000 HTTP heads that never end, 140 kB each"),
    "dns_tcp": (gen_dns_tcp, {"conns": 2_000, "segments": 60},
                "2,000 DNS/TCP prefixes claiming 65,535 bytes, 84 kB each"),
}


# --------------------------------------------------------------------------- running


def run_analyze(capture: Path, report: Path, extra: list[str] | None = None) -> dict[str, Any]:
    """``netsift analyze`` in a fresh worker process; its wall time, peak RSS and exit code."""
    code = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.monotonic()\n"
        "rc = subprocess.call(sys.argv[1:])\n"
        "wall = time.monotonic() - t\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': rc, 'wall_s': wall, 'maxrss_kb': ru.ru_maxrss}))\n"
    )
    cmd = [sys.executable, "-m", "netsift", "analyze", str(capture), "-o", str(report), "--quiet",
           *(extra or [])]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def caps_of(case: str, r: dict[str, Any]) -> tuple[str, str]:
    """The caps in force and what went past them, from a report."""
    flows, frag = r.get("flows") or {}, r.get("fragments") or {}
    dns, tls, http = r.get("dns") or {}, r.get("tls") or {}, r.get("http") or {}
    fc = frag.get("counters") or {}
    limits = frag.get("limits") or {}
    caps = f"max_flows {flows.get('config', {}).get('max_flows', '?'):,}"
    seen = [f"peak_live {flows.get('peak_live', 0):,}", f"evicted {flows.get('evicted', 0):,}"]
    if case.startswith("frag"):
        caps += f"; max_trains {limits.get('max_trains', 0):,}, max_bytes {limits.get('max_bytes', 0):,}"
        seen += [f"trains evicted (count) {fc.get('trains_evicted_count_cap', 0):,}",
                 f"(bytes) {fc.get('trains_evicted_byte_cap', 0):,}",
                 f"peak_trains {fc.get('peak_trains', 0):,}", f"peak_bytes {fc.get('peak_bytes', 0):,}"]
    if case.startswith("dns"):
        seen += [f"dns.messages {dns.get('messages', 0):,}", f"dns.approximate {dns.get('approximate')}",
                 f"clients.total {dns.get('clients', {}).get('total', 0):,}"]
        if dns.get("anomalies"):
            seen.append(f"dns.anomalies {dns['anomalies']}")
        for key in ("distinct_names_not_held",):
            if key in dns:
                seen.append(f"dns.{key} {dns[key]:,}")
    if case == "tls":
        seen.append(f"tls.anomalies {tls.get('anomalies')}")
        if "hello_bytes_peak" in tls:
            seen.append(f"hello_bytes_peak {tls['hello_bytes_peak']:,}")
    if case == "http":
        seen.append(f"http.anomalies {http.get('anomalies')}")
    return caps, "; ".join(seen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    ap.add_argument("--scale", type=float, default=1.0, help="multiply each case's size (default 1)")
    ap.add_argument("--keep", metavar="DIR", help="write the captures and reports here and keep them")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in names:
        if c not in CASES:
            ap.error(f"unknown case {c!r}")
    where = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="netsift-exhaust-"))
    where.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for c in names:
            gen, kwargs, what = CASES[c]
            kw = {k: max(1, int(v * args.scale)) if k in ("n", "conns") else v for k, v in kwargs.items()}
            cap = where / f"{c}.pcap"
            t = time.monotonic()
            packets = gen(cap, **kw)
            gen_s = time.monotonic() - t
            rep = where / f"{c}.json"
            run = run_analyze(cap, rep)
            complete = False
            caps, seen = "", ""
            if run["rc"] == 0 and rep.exists():
                r = json.loads(rep.read_text())
                complete = not r["run"]["partial"] and all(k in r for k in ("flows", "fragments", "dns", "tls"))
                caps, seen = caps_of(c, r)
            rows.append((c, what, packets, os.path.getsize(cap), gen_s, run["wall_s"], run["maxrss_kb"] / 1024,
                         caps, seen, run["rc"], complete))  # fmt: skip
            print(f"{c}: {packets:,} packets, generated in {gen_s:.1f} s, analysed in {run['wall_s']:.1f} s, "
                  f"peak RSS {run['maxrss_kb'] / 1024:.0f} MB, exit {run['rc']}", file=sys.stderr)  # fmt: skip
            if not args.keep:
                cap.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    print("| case | capture | packets | file MB | gen s | wall s | peak RSS MB | caps in force "
          "| past the caps (report) | exit | complete report |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c, what, packets, size, gen_s, wall, rss, caps, seen, rc, complete in rows:
        print(f"| {c} | {what} | {packets:,} | {size / 1e6:.0f} | {gen_s:.1f} | {wall:.1f} | {rss:.0f} "
              f"| {caps} | {seen} | {rc} | {'yes' if complete else 'NO'} |")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
