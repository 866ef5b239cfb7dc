#!/usr/bin/env python3
"""Write a realistic synthetic capture quickly: classic pcap, Ethernet, microsecond timestamps.

    python benchmarks/gen_capture.py --packets 1000000 --out bench.pcap --seed 1

Traffic mix (shares are of packets; see ``SHARES``): TLS over TCP (v4 and v6) with
handshakes (10% ECN), ClientHellos carrying SNI, server flights, bulk transfers with
delayed ACKs, fast retransmissions after duplicate ACKs, FIN or RST closes; plain
HTTP; interactive TCP (SSH, SMTP, RDP, databases, inbound SSH attempts); SYN retries
to dead hosts and SYN->RST to closed ports; a port scanner (open ports answer SYN-ACK
and are reset, closed ones RST); DNS over v4 and v6 (A/AAAA, CNAME chains, NXDOMAIN
with SOA, EDNS, long high-entropy TXT "tunnel" names from two hosts, large TXT answers
sent as IPv4 fragments, queries to a dead resolver answered by ICMP port
unreachable quoting the query); QUIC-like UDP 443; NTP, syslog, RTP; traceroute with
ICMP time-exceeded / port-unreachable quoting the probe; ICMP and ICMPv6 echo, big
fragmented pings; ARP, STP, IGMP (mostly with the Router Alert IP option), ICMPv6
neighbour solicitations and an ESP tunnel.  About 15% of frames carry an 802.1Q tag
(per local host), about 9% are IPv6; frames shorter than 60 bytes are padded.
IPv4 header checksums and TCP/UDP/ICMP/ICMPv6/IGMP checksums are correct (UDP in
IPv4 fragments carries checksum 0, which IPv4 allows).

How it stays fast with flat memory
  * Packet bodies (everything after the IP header, or the ARP/LLC body) come from a
    few thousand byte *templates* built once with ``struct``; no per-packet object.
  * Flows are scripted in Python as rows of integers (time, template, payload
    length, hosts, ports, seq, ack, flags, aux): one short tuple per packet.
  * Traffic is produced in windows of one second of capture time: flows start in
    the window, rows are sorted by time, rows past the window's end wait for the
    next one.  Each window is written with numpy: record headers, Ethernet/VLAN,
    IPv4/IPv6 headers, ports, sequence numbers, lengths and checksums are computed
    for all rows at once and scattered into one preallocated buffer; only the
    template copy is a (cheap) Python loop of memoryview slice assignments.
  * The output depends only on the seed (and --pps), not on --packets: a capture of
    N packets is the prefix of any longer one made with the same seed.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import heapq
import math
import random
import struct
import sys
import time
from dataclasses import dataclass, field

import numpy as np

EPOCH = 1_700_000_000  # capture start, seconds
WINDOW_US = 1_000_000
M32 = 0xFFFFFFFF

# TCP flags
FIN, SYN, RST, PSH, ACK, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x40, 0x80
PA = PSH | ACK

# template L3 kinds and patch kinds
L3_IP, L3_ARP, L3_LLC = 1, 3, 4
K_NONE, K_TCP, K_UDP, K_ECHO, K_ICMPERR, K_FRAG1U, K_FRAG, K_ARP = range(8)

# row columns (one int64 each)
COLS = ("ts", "tm", "pl", "s", "d", "sp", "dp", "seq", "ack", "fl", "aux")
NCOL = len(COLS)

SHARES = {  # share of packets per flow family
    "tls4": 0.500,
    "tls6": 0.063,
    "http": 0.070,
    "tcp_other": 0.060,
    "tcp_fail": 0.025,
    "scan": 0.020,
    "dns4": 0.080,
    "dns6": 0.012,
    "dns_dead": 0.003,
    "dns_big": 0.004,
    "quic": 0.055,
    "udp_other": 0.040,
    "ping4": 0.010,
    "ping6": 0.004,
    "ping_big": 0.004,
    "arp": 0.004,
    "l2misc": 0.003,
    "esp": 0.005,
}


# --------------------------------------------------------------------------- hosts
@dataclass
class Hosts:
    """Every endpoint (and multicast/broadcast pseudo-endpoint) as a row of arrays."""

    addr: list[bytes] = field(default_factory=list)  # 4 or 16 bytes
    mac: list[bytes] = field(default_factory=list)  # own MAC
    local: list[bool] = field(default_factory=list)  # on our side of the gateway
    ttl: list[int] = field(default_factory=list)  # TTL / hop limit seen at the tap
    vlan: list[int] = field(default_factory=list)

    def add(self, addr: bytes, local: bool, ttl: int, mac: bytes | None = None) -> int:
        if mac is None:
            h = (int.from_bytes(addr[-4:], "big") * 2654435761 + len(addr)) & 0xFFFFFFFF
            mac = b"\x02\x1a" + h.to_bytes(4, "big")
        self.addr.append(addr)
        self.mac.append(mac)
        self.local.append(local)
        self.ttl.append(ttl)
        self.vlan.append(0)
        return len(self.addr) - 1

    def freeze(self, gw_mac: bytes, tsbase: np.ndarray) -> None:
        n = len(self.addr)
        self.v6 = np.array([len(a) == 16 for a in self.addr])
        self.a16 = np.zeros((n, 16), np.uint8)
        for i, a in enumerate(self.addr):
            self.a16[i, : len(a)] = np.frombuffer(a, np.uint8)
        w = self.a16.astype(np.int64)
        self.asum = (w[:, 0::2] * 256 + w[:, 1::2]).sum(axis=1)  # ones'-complement words
        self.realmac = np.frombuffer(b"".join(self.mac), np.uint8).reshape(n, 6)
        gw = np.frombuffer(gw_mac, np.uint8)
        self.l2mac = np.where(np.array(self.local)[:, None], self.realmac, gw)
        self.ttl_a = np.array(self.ttl, np.int64)
        self.vlan_a = np.array(self.vlan, np.int64)
        self.tsbase = tsbase
        self.win = 502 + (np.arange(n, dtype=np.int64) * 7919) % 3000


class Pool:
    """Zipf-weighted choice among host ids."""

    def __init__(self, ids: list[int], s: float) -> None:
        self.ids = ids
        acc = 0.0
        self.cw = []
        for i in range(len(ids)):
            acc += 1.0 / (i + 1) ** s
            self.cw.append(acc)
        self.total = acc

    def weights(self) -> list[float]:
        return [b - a for a, b in zip([0.0, *self.cw[:-1]], self.cw, strict=True)]


# ----------------------------------------------------------------------- templates
def ones_sum(b: bytes) -> int:
    if len(b) & 1:
        b += b"\x00"
    a = np.frombuffer(b, ">u2").astype(np.int64)
    return int(a.sum())


def fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


class Templates:
    """Byte bodies (L4 segment, or ARP/LLC body) plus per-template patch attributes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.attrs: list[dict[str, int]] = []
        self.rchunks: list[np.ndarray] = []
        self.rsize = 0

    def add(self, body: bytes, *, kind: int, proto: int = 0, l3: int = L3_IP, hdr: int = -1,
            dyn: int = 0, csoff: int = -1, pseudo: int = 0, frag: int = 0, ttl: int = 0,
            ipopt: int = 0, tsopt: int = -1, a1: tuple[int, int] = (-1, 0),
            a2: tuple[int, int] = (-1, 0), arptha: int = 0, inner: int = 0, pay: int = 0,
            sack: int = -1) -> int:
        """hdr >= 0 makes the template variable-length: segment = hdr + payload length
        (payload length taken from the row, at most len(body) - hdr).  pay: the payload
        length of a fixed TCP template (what its sequence number advances by)."""
        if kind == K_UDP:
            dyn = max(dyn, 8)  # ports and length are patched
        dyn = (max(dyn, a1[0] + a1[1], a2[0] + a2[1]) + 1) & ~1 if csoff >= 0 else 0
        tid = len(self.attrs)
        inner_sum = 0
        if inner:  # ICMP error: ones' sum of the quoted IPv4 header without addresses/checksum
            ih = bytearray(body[8:28])
            ih[10:20] = bytes(10)
            inner_sum = ones_sum(bytes(ih))
        self.attrs.append(dict(
            off=self.size, len=len(body), var=int(hdr >= 0), hdr=max(hdr, 0), kind=kind,
            proto=proto, l3=l3, dyn=dyn, csoff=csoff, pseudo=pseudo, frag=frag, ttl=ttl,
            ipopt=ipopt, tsopt=tsopt, a1off=a1[0], a1w=a1[1], a2off=a2[0], a2w=a2[1],
            arptha=arptha, isum=inner_sum, rbase=0, sack=sack, plmax=len(body) - hdr if hdr >= 0 else pay))
        if csoff >= 0:  # ones' sums of body[dyn:dyn+k] for every usable k
            rest = np.frombuffer(body[dyn:], np.uint8).astype(np.int64)
            if hdr >= 0:
                k = len(rest)
                hi = rest[0::2] * 256
                lo = np.zeros_like(hi)
                lo[: k // 2] = rest[1::2]
                cw = np.concatenate(([0], np.cumsum(hi + lo)))
                pref = np.empty(k + 1, np.int64)
                pref[0::2] = cw[: k // 2 + 1]
                pref[1::2] = cw[: (k + 1) // 2] + hi[: (k + 1) // 2]
                self.attrs[-1]["rbase"] = self.rsize
                self.rchunks.append(pref)
                self.rsize += k + 1
            else:
                self.attrs[-1]["rbase"] = self.rsize - len(rest)
                self.rchunks.append(np.array([ones_sum(body[dyn:])], np.int64))
                self.rsize += 1
        self.chunks.append(body)
        self.size += len(body)
        return tid

    def freeze(self) -> None:
        self.blob = b"".join(self.chunks)
        self.chunks = []
        self.rtab = np.concatenate(self.rchunks) if self.rchunks else np.zeros(1, np.int64)
        self.rchunks = []
        for key in self.attrs[0]:
            setattr(self, "t_" + key, np.array([a[key] for a in self.attrs], np.int64))
        self.plmax = [a["plmax"] for a in self.attrs]


def tcp_body(opts: bytes = b"", payload: bytes = b"") -> bytes:
    hl = 20 + len(opts)
    return struct.pack("!HHIIBBHHH", 0, 0, 0, 0, (hl // 4) << 4, 0, 0, 0, 0) + opts + payload


def udp_body(payload: bytes) -> bytes:
    return struct.pack("!HHHH", 0, 0, 8 + len(payload), 0) + payload


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\x00"


EDNS_OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def dns_query(name: str, qtype: int, edns: bool = False) -> bytes:
    return (struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, int(edns)) + dns_name(name)
            + struct.pack("!HH", qtype, 1) + (EDNS_OPT if edns else b""))


def dns_answer(r: random.Random, name: str, qtype: int, rcode: int = 0,
               txt: list[bytes] | None = None, edns: bool = False) -> bytes:
    q = dns_name(name) + struct.pack("!HH", qtype, 1)
    labels = name.split(".")
    zone_off = 12 + sum(len(x) + 1 for x in labels[: max(0, len(labels) - 2)])
    an: list[bytes] = []
    ns: list[bytes] = []
    if rcode == 3:
        soa = (b"\x03ns1" + struct.pack("!H", 0xC000 | zone_off) + b"\x0ahostmaster"
               + struct.pack("!HIIIII", 0xC000 | zone_off, 2024060101, 7200, 3600, 1209600, 300))
        ns.append(struct.pack("!HHHIH", 0xC000 | zone_off, 6, 1, 300, len(soa)) + soa)
    elif txt is not None:
        for t in txt:
            rd = b"".join(bytes([len(t[i:i + 255])]) + t[i:i + 255] for i in range(0, len(t), 255))
            an.append(struct.pack("!HHHIH", 0xC00C, 16, 1, r.randrange(0, 600), len(rd)) + rd)
    else:
        ptr = 0xC00C
        if r.random() < 0.3:  # CNAME into a CDN zone first
            cn = dns_name(f"e{r.randrange(9999)}.cdn-{r.choice(['edge', 'akam', 'fastly'])}.net")
            an.append(struct.pack("!HHHIH", ptr, 5, 1, r.randrange(60, 3600), len(cn)) + cn)
            ptr = 0xC000 | (12 + len(q) + 12)
        for _ in range(r.randrange(1, 5) if qtype == 1 else r.randrange(1, 3)):
            rd = r.randbytes(4 if qtype == 1 else 16)
            an.append(struct.pack("!HHHIH", ptr, qtype, 1, r.randrange(30, 3600), len(rd)) + rd)
    flags = 0x8180 | rcode
    hdr = struct.pack("!HHHHHH", 0, flags, 1, len(an), len(ns), int(edns))
    return hdr + q + b"".join(an) + b"".join(ns) + (EDNS_OPT if edns else b"")


def tls_client_hello(r: random.Random, sni: str) -> bytes:
    """A TLS 1.3 ClientHello record (RFC 8446 layout) with SNI, ALPN, key share, padding."""
    sb = sni.encode()
    grease = r.choice([0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A])
    exts = [
        struct.pack("!HH", grease, 0),
        struct.pack("!HHHBH", 0, len(sb) + 5, len(sb) + 3, 0, len(sb)) + sb,
        struct.pack("!HH", 23, 0),  # extended master secret
        struct.pack("!HHB", 0xFF01, 1, 0),  # renegotiation_info
        struct.pack("!HHH4H", 10, 10, 8, grease, 0x1D, 0x17, 0x18),
        struct.pack("!HHBB", 11, 2, 1, 0),
        struct.pack("!HH", 35, 0),  # session ticket
        struct.pack("!HHH", 16, 14, 12) + b"\x02h2\x08http/1.1",
        struct.pack("!HHB4H", 5, 5, 1, 0, 0, 0, 0)[:9],  # status_request
        struct.pack("!HHH", 13, 18, 16) + struct.pack("!8H", 0x0403, 0x0804, 0x0401, 0x0503,
                                                      0x0805, 0x0501, 0x0806, 0x0601),
        struct.pack("!HH", 18, 0),
        struct.pack("!HHHHH", 51, 43, 41, grease, 1) + b"\x00"
        + struct.pack("!HH", 0x1D, 32) + r.randbytes(32),
        struct.pack("!HHB", 45, 2, 1) + b"\x01",
        struct.pack("!HHB", 43, 7, 6) + struct.pack("!3H", grease, 0x0304, 0x0303),
    ]
    ext = b"".join(exts)
    pad = max(0, 508 - len(ext) - 80) if r.random() < 0.7 else 0
    if pad:
        ext += struct.pack("!HH", 21, pad) + bytes(pad)
    ciphers = struct.pack("!16H", grease, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
                          0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035)
    body = (b"\x03\x03" + r.randbytes(32) + b"\x20" + r.randbytes(32) + struct.pack("!H", len(ciphers))
            + ciphers + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


WORDS = ["mail", "cdn", "api", "static", "img", "video", "news", "shop", "login", "auth", "edge",
         "assets", "media", "app", "sync", "push", "metrics", "docs", "files", "update", "www"]
BRANDS = ["example", "contoso", "fabrikam", "northwind", "acme", "globex", "initech", "umbrella",
          "hooli", "wayne", "stark", "tyrell", "cyberdyne", "soylent", "oscorp", "vandelay"]
TLDS = ["com", "net", "org", "io", "co.uk", "de", "fr", "jp", "cloud", "nl"]


# ------------------------------------------------------------------------ generator
class Generator:
    def __init__(self, seed: int, pps: int) -> None:
        self.r = random.Random(seed)
        self.pps = pps
        self.rows: list[int] = []  # flat, NCOL ints per packet
        self._hosts()
        self._templates()

    # ---- hosts ---------------------------------------------------------------
    def _hosts(self) -> None:
        r = self.r
        H = self.H = Hosts()
        self.gw_mac = bytes.fromhex("00005e000101")
        seen: set[bytes] = set()

        def uniq(make):
            while True:
                a = make()
                if a not in seen:
                    seen.add(a)
                    return a

        cl = [H.add(uniq(lambda: bytes([10, r.choice([1, 2, 3, 4, 5, 6, 20]), r.randrange(256),
                                         r.randrange(1, 255)])), True, r.choice([64, 64, 128]))
              for _ in range(3000)]
        self.v4c = Pool(cl, 0.9)
        sv = []
        for _ in range(6000):
            a = uniq(lambda: bytes([r.choice([23, 31, 34, 35, 52, 54, 104, 142, 151, 157, 185, 199]),
                                    r.randrange(256), r.randrange(256), r.randrange(1, 255)]))
            sv.append(H.add(a, False, r.choice([64, 64, 128, 255]) - r.randrange(6, 24)))
        self.v4s = Pool(sv, 1.05)
        c6 = [H.add(uniq(lambda: bytes.fromhex("20010db8000100") + bytes([r.randrange(8)]) + r.randbytes(8)),
                    True, 64) for _ in range(400)]
        self.v6c = Pool(c6, 0.9)
        s6 = [H.add(uniq(lambda: bytes.fromhex(r.choice(["26064700", "2a001450", "2620012c", "2a032880"]))
                         + r.randbytes(12)), False, 64 - r.randrange(6, 24)) for _ in range(1200)]
        self.v6s = Pool(s6, 1.05)
        lsrv = [H.add(bytes([10, 0, 0, 20 + i]), True, 64) for i in range(40)]  # local servers
        self.lsrv = Pool(lsrv, 0.8)
        self.res4 = Pool([H.add(bytes([10, 0, 0, 53]), True, 64), H.add(bytes([8, 8, 8, 8]), False, 119),
                          H.add(bytes([1, 1, 1, 1]), False, 58), H.add(bytes([10, 0, 1, 53]), True, 64)], 1.2)
        self.res6 = H.add(bytes.fromhex("20014860486000000000000000008888"), False, 117)
        self.dead_res = H.add(bytes([10, 0, 2, 53]), True, 64)
        self.scanner = H.add(bytes([185, 220, 101, 7]), False, 47)
        self.ssh_bots = [H.add(bytes([45, 141, r.randrange(256), r.randrange(1, 255)]), False, 50)
                         for _ in range(30)]
        self.tunnel = [cl[1700], cl[2400]]
        self.routers = [H.add(a, i < 1, 255 - i)
                        for i, a in enumerate([bytes([10, 0, 0, 1]), bytes([100, 64, 0, 1]),
                                               bytes([100, 64, 3, 9]), bytes([62, 115, 4, 33]),
                                               bytes([80, 81, 192, 5]), bytes([195, 22, 196, 1]),
                                               bytes([62, 115, 9, 1]), bytes([62, 115, 10, 1])])]
        self.syslog_srv = H.add(bytes([10, 0, 0, 14]), True, 64)
        self.ntp_srv = [H.add(bytes([162, 159, 200, 1]), False, 55), H.add(bytes([10, 0, 0, 123]), True, 64)]
        self.esp = (H.add(bytes([10, 0, 0, 2]), True, 64), H.add(bytes([203, 0, 113, 77]), False, 52))
        self.bcast = H.add(b"\xff\xff\xff\xff", True, 64, mac=b"\xff" * 6)
        self.stp_sw = H.add(b"\x00\x00\x00\x00", True, 64, mac=bytes.fromhex("021aaabbcc01"))
        self.stp_grp = H.add(b"\x00\x00\x00\x00", True, 64, mac=bytes.fromhex("0180c2000000"))
        self.igmp_grp = [H.add(bytes(g), True, 1, mac=b"\x01\x00\x5e" + bytes([g[1] & 0x7F, g[2], g[3]]))
                         for g in ([224, 0, 0, 251], [239, 255, 255, 250], [224, 0, 0, 252], [239, 1, 2, 3])]
        self.ns_targets = []
        for _ in range(50):
            tgt = r.choice(c6)
            a = H.addr[tgt]
            sn = bytes.fromhex("ff0200000000000000000001ff") + a[-3:]
            self.ns_targets.append((tgt, H.add(sn, True, 255, mac=b"\x33\x33" + sn[-4:])))
        # 802.1Q: tag a random subset of local hosts carrying about 15% of the flows
        for pool in (self.v4c, self.v6c):
            order = list(range(30, len(pool.ids)))  # the heaviest hosts stay untagged: steadier share
            r.shuffle(order)
            w = pool.weights()
            acc = 0.0
            for i in order:
                if acc + w[i] > 0.13 * pool.total:
                    continue
                acc += w[i]
                H.vlan[pool.ids[i]] = r.choice([10, 20, 30, 100, 201])
        for h in lsrv[:6]:
            H.vlan[h] = 100
        n = len(H.addr)
        H.freeze(self.gw_mac, np.array([r.randrange(1 << 31) for _ in range(n)], np.int64))

    def pick(self, pool: Pool) -> int:
        return pool.ids[bisect.bisect_left(pool.cw, self.r.random() * pool.total)]

    # ---- templates -----------------------------------------------------------
    def _templates(self) -> None:
        r = self.r
        T = self.T = Templates()
        tcp = dict(kind=K_TCP, proto=6, csoff=16, pseudo=1, frag=0x4000)
        # SYN options: MSS, SACK-permitted, timestamps, NOP, window scale (RFC 9293/7323)
        syn_opts = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02" + struct.pack("!BBII", 8, 10, 0, 0) \
            + b"\x01\x03\x03\x07"
        self.t_syn = T.add(tcp_body(syn_opts), dyn=40, tsopt=28, **tcp)
        self.t_syn6 = T.add(tcp_body(syn_opts[:2] + struct.pack("!H", 1440) + syn_opts[4:]), dyn=40,
                            tsopt=28, **tcp)
        self.t_scan = T.add(tcp_body(struct.pack("!BBH", 2, 4, 1460)), dyn=24, **tcp)
        ts_opts = b"\x01\x01" + struct.pack("!BBII", 8, 10, 0, 0)
        self.t_ack = T.add(tcp_body(ts_opts), dyn=32, tsopt=24, **tcp)
        # duplicate ACK with one SACK block; row.pl = right edge - ACK number, left edge = ACK + MSS
        self.t_sack = T.add(tcp_body(ts_opts + b"\x01\x01\x05\x0a" + bytes(8)), dyn=44, tsopt=24, sack=36, **tcp)
        self.t_rst = T.add(tcp_body(), dyn=20, **tcp)

        def data(payload: bytes) -> int:
            return T.add(tcp_body(ts_opts, payload), hdr=32, dyn=32, tsopt=24, **tcp)

        def fixed(payload: bytes) -> int:
            return T.add(tcp_body(ts_opts, payload), dyn=32, tsopt=24, pay=len(payload), **tcp)

        self.t_rand = [data(r.randbytes(1448)) for _ in range(8)]
        self.t_tlsapp = [data(b"\x17\x03\x03" + struct.pack("!H", r.randrange(200, 16401)) + r.randbytes(1443))
                         for _ in range(8)]
        sh = (b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + r.randbytes(32) + b"\x20" + r.randbytes(32)
              + b"\x13\x01\x00\x00\x2e\x00\x2b\x00\x02\x03\x04\x00\x33\x00\x24\x00\x1d\x00\x20" + r.randbytes(32)
              + b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x10\x1b")
        self.t_tls_sh = [data(sh[:11] + r.randbytes(32) + sh[43:] + r.randbytes(1448 - len(sh))) for _ in range(4)]
        self.t_tls_fin = [data(b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x35" + r.randbytes(200)) for _ in range(4)]
        names = set()
        while len(names) < 400:
            nm = f"{r.choice(WORDS)}.{r.choice(BRANDS)}{r.randrange(40)}.{r.choice(TLDS)}"
            if r.random() < 0.3:
                nm = f"{r.choice(WORDS)}-{r.randrange(99)}.{nm}"
            names.add(nm)
        self.names = sorted(names)
        self.t_ch = [fixed(tls_client_hello(r, nm)) for nm in r.sample(self.names, 160)]
        self.t_http = []
        for _ in range(120):
            path = "/" + "/".join(r.choice(WORDS) for _ in range(r.randrange(1, 4))) \
                + r.choice(["", ".js", ".css", ".png", f"?id={r.randrange(10**6)}"])
            req = (f"GET {path} HTTP/1.1\r\nHost: {r.choice(self.names)}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:126.0) "
                   "Gecko/20100101 Firefox/126.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
                   "Connection: keep-alive\r\n\r\n")
            self.t_http.append(fixed(req.encode()))
        self.t_http_resp = []  # (template, head + body size): Content-Length matches the bytes sent
        for i in range(32):
            ctype = ("text/html; charset=utf-8", "application/javascript", "application/octet-stream",
                     "text/css")[i % 4]
            clen = min(int(r.lognormvariate(math.log(8000), 1.4)), 2_000_000)
            head = ("HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
                    f"Content-Type: {ctype}\r\nContent-Length: {clen}\r\n"
                    "Connection: keep-alive\r\nCache-Control: max-age=3600\r\n\r\n").encode()
            self.t_http_resp.append((data(head + r.randbytes(1448 - len(head))), len(head) + clen))
        self.t_banner = {
            22: (fixed(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n"), fixed(b"SSH-2.0-OpenSSH_9.2p1\r\n")),
            25: (fixed(b"EHLO relay.example.net\r\n"), fixed(b"220 mx1.contoso.com ESMTP Postfix (Debian)\r\n")),
            143: (fixed(b"a001 CAPABILITY\r\n"), fixed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n")),
        }
        # ---- UDP
        udp = dict(kind=K_UDP, proto=17, csoff=6, pseudo=1)

        def dns(msg: bytes) -> int:
            return T.add(udp_body(msg), dyn=10, a1=(8, 2), **udp)

        self.tunnel_names = []
        while len(self.tunnel_names) < 150:
            enc = base64.b32encode(r.randbytes(r.randrange(30, 140))).decode().rstrip("=").lower()
            nm = ".".join(enc[i:i + 63] for i in range(0, len(enc), 63)) + "." \
                + r.choice(["t.sync-cdn.example", "x.exfil.test", "d.telemetry-upd.invalid"])
            if len(nm) <= 253:
                self.tunnel_names.append(nm)
        self.dnsq: dict[tuple[str, int], int] = {}
        self.dnsr: dict[tuple[str, int], tuple[int, int]] = {}
        for nm in self.names:
            for qt in (1, 28):
                edns = r.random() < 0.4
                self.dnsq[(nm, qt)] = dns(dns_query(nm, qt, edns))
                self.dnsr[(nm, qt)] = (dns(dns_answer(r, nm, qt, 0, edns=edns)),
                                       dns(dns_answer(r, nm, qt, 3, edns=edns)))
        for nm in self.tunnel_names:
            self.dnsq[(nm, 16)] = dns(dns_query(nm, 16))
            ans = dns(dns_answer(r, nm, 16, txt=[base64.b32encode(r.randbytes(r.randrange(20, 120)))]))
            self.dnsr[(nm, 16)] = (ans, dns(dns_answer(r, nm, 16, 3)))
        # large TXT answers (EDNS 4096): UDP datagram split into IPv4 fragments
        self.big_dns = []
        for nm in r.sample(self.names, 40):
            q = dns(dns_query(nm, 16, True))
            a = dns_answer(r, nm, 16, txt=[base64.b64encode(r.randbytes(180)) for _ in range(r.randrange(8, 20))],
                           edns=True)
            dgram = bytearray(udp_body(a))  # ports patched into the first fragment; checksum 0
            self.big_dns.append((q, self._fragments(bytes(dgram), 17)))
        # QUIC-like: long-header Initial (client padded to 1200+), short header 1-RTT
        qk = dict(dyn=20, **udp)
        self.t_quic_ci = [T.add(udp_body(b"\xc3\x00\x00\x00\x01\x08" + bytes(8) + b"\x08" + r.randbytes(8)
                                         + b"\x00\x44\xd0" + r.randbytes(1230)), a1=(14, 4), a2=(34, 4), **qk)
                          for _ in range(4)]
        self.t_quic_si = [T.add(udp_body(b"\xc1\x00\x00\x00\x01\x08" + bytes(8) + b"\x08" + r.randbytes(8)
                                         + b"\x00\x44\xb0" + r.randbytes(1180)), a1=(14, 4), a2=(34, 4), **qk)
                          for _ in range(4)]
        self.t_quic_s = [T.add(udp_body(bytes([0x40 | r.randrange(64)]) + bytes(8) + r.randbytes(1341)),
                               hdr=17, a1=(9, 4), a2=(17, 4), **qk) for _ in range(6)]
        ntpq = bytes([0x23, 0, 6, 0xEC]) + bytes(36) + r.randbytes(8)
        ntpr = bytes([0x24, 2, 6, 0xE9]) + r.randbytes(12) + r.randbytes(32)
        self.t_ntp = (T.add(udp_body(ntpq), **udp), T.add(udp_body(ntpr), **udp))
        self.t_syslog = []
        for i in range(24):
            pri, mm, ss = r.choice([13, 30, 38, 86, 134, 165]), r.randrange(60), r.randrange(60)
            app = r.choice(["sshd", "kernel", "systemd", "cron", "sudo", "nginx", "postfix/smtpd"])
            text = r.choice(["Accepted publickey for deploy from 10.1.4.7 port 52311 ssh2",
                             "Failed password for invalid user admin from 45.141.3.9 port 40122 ssh2",
                             "Started Daily apt download activities.",
                             "pam_unix(cron:session): session opened for user root(uid=0)",
                             "connect from unknown[10.4.3.2]",
                             "[UFW BLOCK] IN=eth0 OUT= SRC=45.141.9.1 DST=10.0.0.20 PROTO=TCP DPT=23"])
            msg = f"<{pri}>Nov 14 22:{mm:02d}:{ss:02d} host{i:02d} {app}[{r.randrange(100, 40000)}]: {text}"
            self.t_syslog.append(T.add(udp_body(msg.encode()), **udp))
        self.t_rtp = [T.add(udp_body(b"\x80" + bytes([pt]) + bytes(10) + r.randbytes(160)), a1=(10, 2),
                            a2=(12, 4), dyn=20, **udp) for pt in (0, 8, 0, 8)]
        probe = b"@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_"
        self.t_probe = T.add(udp_body(probe), ttl=-1, **udp)
        # ---- ICMP / ICMPv6
        ping = bytes(8) + bytes(range(0x10, 0x38))
        icmp = dict(kind=K_ECHO, csoff=2, dyn=8)
        self.t_echo4 = (T.add(b"\x08\x00" + bytes(6) + ping, proto=1, **icmp),
                        T.add(b"\x00\x00" + bytes(6) + ping, proto=1, **icmp))
        self.t_echo6 = (T.add(b"\x80\x00" + bytes(6) + ping, proto=58, pseudo=1, **icmp),
                        T.add(b"\x81\x00" + bytes(6) + ping, proto=58, pseudo=1, **icmp))

        def icmp_err(typ: int, code: int, inner_ttl: int, udp_payload: bytes, a1: tuple[int, int] = (-1, 0)) -> int:
            iu = struct.pack("!HHHH", 0, 0, 8 + len(udp_payload), 0) + udp_payload
            ih = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(iu), r.randrange(65536), 0, inner_ttl, 17, 0,
                             bytes(4), bytes(4))
            return T.add(bytes([typ, code]) + bytes(6) + ih + iu, kind=K_ICMPERR, proto=1, csoff=2,
                         dyn=max(36, a1[0] + a1[1]), inner=1, a1=a1)

        self.t_time_exc = icmp_err(11, 0, 1, probe)
        self.t_port_unr = icmp_err(3, 3, 3, probe)
        self.dead_q = []
        for nm in r.sample(self.names, 20):
            qb = dns_query(nm, 1)
            self.dead_q.append((dns(qb), icmp_err(3, 3, 64, qb, a1=(36, 2))))
        self.big_ping = []
        for n in (2992, 4000, 8000):
            for typ in (8, 0):
                pay = struct.pack("!II", EPOCH, 0) + r.randbytes(n)
                msg = bytes([typ, 0, 0, 0]) + struct.pack("!HH", 0x4D2, 1) + pay
                c = 0xFFFF - fold(ones_sum(msg))
                msg = msg[:2] + struct.pack("!H", c) + msg[4:]
                self.big_ping.append(self._fragments(msg, 1))
        # ---- other L2/L3
        arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + bytes(20)
        self.t_arp = (T.add(arp, kind=K_ARP, l3=L3_ARP),
                      T.add(arp[:6] + b"\x00\x02" + bytes(20), kind=K_ARP, l3=L3_ARP, arptha=1))
        bpdu = b"\x42\x42\x03" + struct.pack("!HBBB", 0, 0, 0, 0) + struct.pack("!H", 0x8000) \
            + bytes.fromhex("021aaabbcc01") + struct.pack("!I", 0) + struct.pack("!H", 0x8000) \
            + bytes.fromhex("021aaabbcc01") + struct.pack("!HHHHH", 0x8001, 0, 20 * 256, 2 * 256, 15 * 256)
        self.t_stp = T.add(bpdu, kind=K_NONE, l3=L3_LLC)
        self.t_igmp = []
        for g in self.igmp_grp:
            body = bytes([0x16, 0]) + bytes(2) + self.H.addr[g]
            self.t_igmp.append((T.add(body, kind=K_NONE, proto=2, csoff=2, ttl=1, ipopt=1),
                                T.add(body, kind=K_NONE, proto=2, csoff=2, ttl=1)))
        self.t_ns = []
        for tgt, grp in self.ns_targets:
            body = bytes([135, 0]) + bytes(6) + self.H.addr[tgt] + b"\x01\x01" + self.H.mac[tgt]
            self.t_ns.append((T.add(body, kind=K_NONE, proto=58, csoff=2, pseudo=1, ttl=255), grp))
        self.t_esp = T.add(bytes(8) + r.randbytes(1400), kind=K_NONE, proto=50, hdr=8, a1=(4, 4), a2=(0, 4))
        T.freeze()

    def _fragments(self, dgram: bytes, proto: int) -> list[int]:
        """IPv4 fragments of one datagram, 1480 bytes each (RFC 791 offsets in 8-byte units)."""
        out = []
        step = 1480
        for k in range(0, len(dgram), step):
            more = 0x2000 if k + step < len(dgram) else 0
            first_udp = k == 0 and proto == 17  # ports and the DNS id (from the row's ack) patched
            out.append(self.T.add(dgram[k:k + step], kind=K_FRAG1U if first_udp else K_FRAG, proto=proto,
                                  frag=more | (k // 8), a2=(8, 2) if first_udp else (-1, 0)))
        return out

    # ---- row emission --------------------------------------------------------
    def row(self, ts: int, tm: int, pl: int, s: int, d: int, sp: int = 0, dp: int = 0, seq: int = 0,
            ack: int = 0, fl: int = 0, aux: int = 0) -> None:
        self.rows.extend((ts, tm, pl, s, d, sp, dp, seq, ack, fl, aux))

    def eport(self) -> int:
        return 32768 + int(self.r.random() * 28232)

    def rtt_for(self, server: int) -> int:
        if self.H.local[server]:
            return 150 + int(self.r.random() * 900)
        return int(4000 + self.r.lognormvariate(math.log(25000), 0.7))

    # ---- TCP flows -----------------------------------------------------------
    def conv(self, t: int, c: int, s: int, sport: int, v6: bool = False) -> Conv:
        return Conv(self, t, c, s, self.eport(), sport, self.rtt_for(s), v6)

    def flow_tls(self, t: int, v6: bool = False) -> None:
        r = self.r
        if v6:
            c, s = self.pick(self.v6c), self.pick(self.v6s)
        else:
            c, s = self.pick(self.v4c), self.pick(self.v4s)
        cv = self.conv(t, c, s, 443, v6)
        cv.handshake()
        ch = r.choice(self.t_ch)
        cv.p(0, PA, ch, self.T.plmax[ch], dt=60)
        cv.p(1, ACK, self.t_ack, 0, dt=cv.rtt)
        cv.bulk(1, r.randrange(2800, 6500), r.choice(self.t_tls_sh), self.t_tlsapp)
        cv.p(0, PA, r.choice(self.t_tls_fin), r.randrange(64, 90), dt=cv.rtt // 2 + 200)
        for _ in range(min(int(r.paretovariate(1.6)), 40)):
            if r.random() < 0.5:
                cv.p(0, PA, r.choice(self.t_tlsapp), r.randrange(60, 1100), dt=int(r.expovariate(1 / 30000)))
            else:  # upload
                cv.bulk(0, int(r.lognormvariate(math.log(2500), 1.2)), 0, self.t_tlsapp, gap=20000)
            size = min(int(r.lognormvariate(math.log(6000), 1.5)), 3_000_000)
            cv.bulk(1, size, 0, self.t_tlsapp)
        cv.close(r.random())

    def flow_http(self, t: int) -> None:
        r = self.r
        c, s = self.pick(self.v4c), self.pick(self.v4s)
        cv = self.conv(t, c, s, 80)
        cv.handshake()
        for _ in range(min(int(r.paretovariate(1.8)), 30)):
            rq = r.choice(self.t_http)
            cv.p(0, PA, rq, self.T.plmax[rq], dt=100 + int(r.expovariate(1 / 20000)))
            resp, size = r.choice(self.t_http_resp)
            cv.bulk(1, size, resp, self.t_rand)
        cv.close(r.random())

    def flow_tcp_other(self, t: int) -> None:
        r = self.r
        k = r.random()
        if k < 0.15:  # inbound SSH attempts from the internet to a local server
            c, s, port = r.choice(self.ssh_bots), self.pick(self.lsrv), 22
        elif k < 0.55:
            c, s = self.pick(self.v4c), self.pick(self.lsrv)
            port = r.choice([22, 22, 445, 3389, 5432, 3306, 143, 8080])
        else:
            c, s = self.pick(self.v4c), self.pick(self.v4s)
            port = r.choice([22, 25, 143, 993, 8443, 5222, 9418])
        cv = self.conv(t, c, s, port)
        cv.handshake()
        if port in self.t_banner:
            bc, bs = self.t_banner[port]
            cv.p(1, PA, bs, self.T.plmax[bs], dt=cv.rtt // 2 + 300)
            cv.p(0, PA, bc, self.T.plmax[bc], dt=400)
        n = 4 + int(r.paretovariate(1.1) * 6)
        for _ in range(min(n, 400)):  # interactive: small segments, each acked or answered
            d = 0 if r.random() < 0.55 else 1
            cv.p(d, PA, r.choice(self.t_rand), r.choice([36, 36, 52, 68, 100, 140, 300]),
                 dt=int(r.expovariate(1 / 150000)))
            if r.random() < 0.6:
                cv.p(1 - d, ACK, self.t_ack, 0, dt=cv.rtt // 2)
        if r.random() < 0.2:
            cv.bulk(1, int(r.lognormvariate(math.log(30000), 1.3)), 0, self.t_rand)
        cv.close(r.random() * 0.8 + (0.2 if k < 0.15 else 0.0))

    def flow_tcp_fail(self, t: int) -> None:
        r = self.r
        c = self.pick(self.v4c)
        if r.random() < 0.5:  # unresponsive: SYN then retries at 1, 3, 7 s (RFC 6298 backoff)
            s = self.pick(self.v4s)
            cv = self.conv(t, c, s, r.choice([443, 443, 80, 8443, 8080, 22]))
            s0 = cv.seq[0]
            cv.p(0, SYN, self.t_syn, 0)
            for i in range(r.randrange(1, 4)):
                cv.p(0, SYN, self.t_syn, 0, dt=1_000_000 << i, seq=s0)
        else:  # closed port: RST-ACK
            s = self.pick(self.lsrv) if r.random() < 0.5 else self.pick(self.v4s)
            cv = self.conv(t, c, s, r.choice([8080, 8443, 9000, 5000, 3000, 27017]))
            cv.p(0, SYN, self.t_syn, 0)
            cv.p(1, RST | ACK, self.t_rst, 0, dt=cv.rtt)
            if r.random() < 0.5:
                s0 = cv.seq[0] - 1
                cv.p(0, SYN, self.t_syn, 0, dt=1_000_000, seq=s0)
                cv.p(1, RST | ACK, self.t_rst, 0, dt=cv.rtt)

    def flow_scan(self, t: int) -> None:
        r = self.r
        tgt = self.pick(self.lsrv) if r.random() < 0.5 else self.pick(self.v4c)
        sc = self.scanner
        sport = self.eport()
        rtt = 30000 + int(r.random() * 40000)
        ports = [*range(1, 1025), 1433, 1521, 3306, 3389, 5432, 5900, 6379, 8080, 8443, 9200, 27017]
        r.shuffle(ports)
        open_ports = {22, 80, 443, 3389}
        row = self.row
        for p in ports[: r.randrange(150, 1000)]:
            seq = int(r.random() * M32)
            row(t, self.t_scan, 0, sc, tgt, sport, p, seq, 0, SYN, rtt)
            if p in open_ports:
                isn = int(r.random() * M32)
                row(t + rtt, self.t_syn, 0, tgt, sc, p, sport, isn, seq + 1 & M32, SYN | ACK, rtt)
                row(t + rtt + 60, self.t_rst, 0, sc, tgt, sport, p, seq + 1 & M32, 0, RST, rtt)
            elif r.random() < 0.93:
                row(t + rtt, self.t_rst, 0, tgt, sc, p, sport, 0, seq + 1 & M32, RST | ACK, rtt)
            t += 80 + int(r.random() * 400)

    # ---- DNS -----------------------------------------------------------------
    def flow_dns(self, t: int, v6: bool = False) -> None:
        r = self.r
        if v6:
            c, res = self.pick(self.v6c), self.res6
        else:
            c = r.choice(self.tunnel) if r.random() < 0.08 else self.pick(self.v4c)
            res = self.pick(self.res4)
        rtt = self.rtt_for(res) // 3 + 200
        if c in self.tunnel:
            keys = [(r.choice(self.tunnel_names), 16)]
            nx = 0.02
        else:
            nm = r.choice(self.names)
            keys = [(nm, 1), (nm, 28)] if r.random() < 0.5 else [(nm, 1 if r.random() < 0.7 else 28)]
            nx = 0.1 if nm[0] in "ms" else 0.03
        for key in keys:
            sport, qid = self.eport(), int(r.random() * 65536)
            q, (ok, bad) = self.dnsq[key], self.dnsr[key]
            self.row(t, q, 0, c, res, sport, 53, qid)
            if r.random() < 0.03:  # lost: retry after 1 s with a new id
                t += 1_000_000
                qid = int(r.random() * 65536)
                self.row(t, q, 0, c, res, sport, 53, qid)
            self.row(t + rtt, bad if r.random() < nx else ok, 0, res, c, 53, sport, qid)
            t += 30

    def flow_dns_dead(self, t: int) -> None:
        r = self.r
        c = self.pick(self.v4c)
        q, err = r.choice(self.dead_q)
        sport = self.eport()
        for _ in range(r.randrange(1, 4)):
            qid = int(r.random() * 65536)
            self.row(t, q, 0, c, self.dead_res, sport, 53, qid)
            self.row(t + 400, err, 0, self.dead_res, c, sport, 53, qid, 0, 0, self.dead_res)
            t += 1_000_000

    def flow_dns_big(self, t: int) -> None:
        r = self.r
        c, res = self.pick(self.v4c), self.pick(self.res4)
        q, frags = r.choice(self.big_dns)
        sport, qid = self.eport(), int(r.random() * 65536)
        self.row(t, q, 0, c, res, sport, 53, qid)
        t += self.rtt_for(res) // 3 + 300
        ipid = int(r.random() * 65536)
        for i, f in enumerate(frags):
            self.row(t + i * 12, f, 0, res, c, 53, sport, ipid, qid)

    # ---- other UDP -----------------------------------------------------------
    def flow_quic(self, t: int) -> None:
        r = self.r
        v6 = r.random() < 0.15
        c, s = (self.pick(self.v6c), self.pick(self.v6s)) if v6 else (self.pick(self.v4c), self.pick(self.v4s))
        sport, rtt = self.eport(), self.rtt_for(s)
        cid = int(r.random() * M32)
        qs = r.choice(self.t_quic_s)
        row = self.row
        pn = [0, 0]  # packet numbers per direction (client, server)

        def send(ts: int, tm: int, pl: int, from_client: bool) -> None:
            k = 0 if from_client else 1
            if from_client:
                row(ts, tm, pl, c, s, sport, 443, cid, pn[k])
            else:
                row(ts, tm, pl, s, c, 443, sport, cid, pn[k])
            pn[k] += 1

        send(t, r.choice(self.t_quic_ci), 0, True)
        t += rtt
        for _ in range(r.randrange(1, 4)):
            send(t, r.choice(self.t_quic_si), 0, False)
            t += 40
        send(t + rtt // 2, qs, r.randrange(30, 90), True)
        n = min(int(r.paretovariate(1.1) * 12), 2000)
        for i in range(n):
            t += 20 + int(r.random() * 200)
            send(t, qs, 1200 + int(r.random() * 141), False)
            if i & 1:
                send(t + rtt // 2, qs, 24 + int(r.random() * 30), True)
        send(t + rtt, qs, 30, True)

    def flow_udp_other(self, t: int) -> None:
        r = self.r
        k = r.random()
        row = self.row
        if k < 0.3:  # NTP
            c, srv = self.pick(self.v4c), r.choice(self.ntp_srv)
            sport = 123 if r.random() < 0.4 else self.eport()
            rtt = self.rtt_for(srv)
            for _ in range(r.randrange(1, 5)):
                row(t, self.t_ntp[0], 0, c, srv, sport, 123)
                row(t + rtt, self.t_ntp[1], 0, srv, c, 123, sport)
                t += 2_000_000
        elif k < 0.55:  # syslog burst from a local host
            c = self.pick(self.lsrv) if r.random() < 0.5 else self.pick(self.v4c)
            sport = 514 if r.random() < 0.5 else self.eport()
            for _ in range(r.randrange(1, 40)):
                row(t, r.choice(self.t_syslog), 0, c, self.syslog_srv, sport, 514)
                t += int(r.expovariate(1 / 20000))
        elif k < 0.8:  # RTP call, 20 ms packets both ways
            c, s = self.pick(self.v4c), self.pick(self.v4s)
            pc, ps = 2 * r.randrange(8192, 16383), 2 * r.randrange(8192, 16383)
            tm = r.choice(self.t_rtp)
            sq, ssrc = int(r.random() * 65536), int(r.random() * M32)
            for i in range(r.randrange(50, 400)):
                row(t, tm, 0, c, s, pc, ps, sq + i & 0xFFFF, i * 160 & M32)
                row(t + 300 + int(r.random() * 2000), tm, 0, s, c, ps, pc, sq + i + 7 & 0xFFFF, ssrc + i * 160 & M32)
                t += 20000
        else:  # traceroute: 3 UDP probes per TTL, ICMP time exceeded then port unreachable
            c, s = self.pick(self.v4c), self.pick(self.v4s)
            sport = self.eport()
            hops = r.randrange(4, 12)
            for ttl in range(1, hops + 1):
                for j in range(3):
                    dport = 33434 + (ttl - 1) * 3 + j
                    row(t, self.t_probe, 0, c, s, sport, dport, 0, 0, 0, ttl)
                    if ttl < hops:
                        rt = self.routers[min(ttl - 1, len(self.routers) - 1)]
                        row(t + 400 * ttl, self.t_time_exc, 0, rt, c, sport, dport, 0, 0, 0, s)
                    else:
                        row(t + 400 * ttl, self.t_port_unr, 0, s, c, sport, dport, 0, 0, 0, s)
                    t += 2000

    # ---- ICMP ----------------------------------------------------------------
    def flow_ping(self, t: int, v6: bool = False) -> None:
        r = self.r
        c, s = (self.pick(self.v6c), self.pick(self.v6s)) if v6 else (self.pick(self.v4c), self.pick(self.v4s))
        req, rep = self.t_echo6 if v6 else self.t_echo4
        ident, rtt = int(r.random() * 65536), self.rtt_for(s)
        for seq in range(1, r.randrange(3, 30)):
            self.row(t, req, 0, c, s, ident, seq)
            if r.random() < 0.95:
                self.row(t + rtt, rep, 0, s, c, ident, seq)
            t += 1_000_000

    def flow_ping_big(self, t: int) -> None:
        r = self.r
        c, s = self.pick(self.v4c), self.pick(self.v4s)
        k = r.randrange(3) * 2
        req, rep = self.big_ping[k], self.big_ping[k + 1]
        rtt = self.rtt_for(s)
        for _ in range(r.randrange(2, 8)):
            for frags, a, b, dt in ((req, c, s, 0), (rep, s, c, rtt)):
                ipid = int(r.random() * 65536)
                for i, f in enumerate(frags):
                    self.row(t + dt + i * 15, f, 0, a, b, 0, 0, ipid)
            t += 1_000_000

    # ---- the rest ------------------------------------------------------------
    def flow_arp(self, t: int) -> None:
        """ARP who-has (broadcast) and is-at."""
        a, b = self.pick(self.v4c), self.pick(self.v4c)
        self.row(t, self.t_arp[0], 0, a, self.bcast, aux=b)
        self.row(t + 150, self.t_arp[1], 0, b, a, aux=a)

    def flow_l2misc(self, t: int) -> None:
        r = self.r
        k = r.random()
        row = self.row
        if k < 0.2:  # STP configuration BPDUs every 2 s
            for i in range(r.randrange(5, 40)):
                row(t + i * 2_000_000, self.t_stp, 0, self.stp_sw, self.stp_grp)
        elif k < 0.6:  # IGMPv2 membership report, 80% with Router Alert
            i = r.randrange(len(self.igmp_grp))
            row(t, self.t_igmp[i][0 if r.random() < 0.8 else 1], 0, self.pick(self.v4c), self.igmp_grp[i])
        else:  # ICMPv6 neighbour solicitation to the solicited-node group
            tm, grp = r.choice(self.t_ns)
            row(t, tm, 0, self.pick(self.v6c), grp)

    def flow_esp(self, t: int) -> None:
        """A burst of an IPsec ESP tunnel between two gateways."""
        r = self.r
        a, b = self.esp
        spi = int(r.random() * M32)
        n = [0, 0]
        for _ in range(r.randrange(20, 300)):
            pl = r.choice([72, 112, 392, 1372])
            k = int(r.random() * 2)
            n[k] += 1
            if k:
                self.row(t, self.t_esp, pl, a, b, seq=n[k], ack=spi)
            else:
                self.row(t, self.t_esp, pl, b, a, seq=n[k], ack=spi ^ 0x5A5A)
            t += int(r.random() * 50000) + 100

    # ---- driver --------------------------------------------------------------
    def families(self):
        return {
            "tls4": self.flow_tls, "tls6": lambda t: self.flow_tls(t, True), "http": self.flow_http,
            "tcp_other": self.flow_tcp_other, "tcp_fail": self.flow_tcp_fail, "scan": self.flow_scan,
            "dns4": self.flow_dns, "dns6": lambda t: self.flow_dns(t, True), "dns_dead": self.flow_dns_dead,
            "dns_big": self.flow_dns_big, "quic": self.flow_quic, "udp_other": self.flow_udp_other,
            "ping4": self.flow_ping, "ping6": lambda t: self.flow_ping(t, True),
            "ping_big": self.flow_ping_big, "arp": self.flow_arp, "l2misc": self.flow_l2misc,
            "esp": self.flow_esp,
        }

    def windows(self):
        """Yield (n, NCOL) int64 arrays of rows in time order, one window at a time, forever."""
        fam = self.families()
        names = list(SHARES)
        funcs = [fam[k] for k in names]
        share = [SHARES[k] for k in names]
        made = [0] * len(names)
        heap = [(0.0, i) for i in range(len(names))]
        carry = np.zeros((0, NCOL), np.int64)
        t0 = 0
        rnd = self.r.random
        while True:
            budget = self.pps * WINDOW_US // 1_000_000
            self.rows = []
            rows = self.rows
            while len(rows) < budget * NCOL:  # start flows until this window's share is reached
                _, i = heapq.heappop(heap)
                before = len(rows)
                funcs[i](t0 + int(rnd() * WINDOW_US))
                made[i] += (len(rows) - before) // NCOL
                heapq.heappush(heap, (made[i] / share[i], i))
            new = np.fromiter(rows, np.int64, len(rows)).reshape(-1, NCOL)
            self.rows = []
            allr = np.concatenate((carry, new))
            allr = allr[np.argsort(allr[:, 0], kind="stable")]
            cut = int(np.searchsorted(allr[:, 0], t0 + WINDOW_US))
            yield allr[:cut]
            carry = allr[cut:]
            t0 += WINDOW_US


class Conv:
    """One TCP connection: rows for both directions with consistent seq/ack numbers."""

    __slots__ = ("c", "cp", "g", "mss", "rtt", "s", "seq", "sp", "t", "tsyn")

    def __init__(self, g: Generator, t: int, c: int, s: int, cp: int, sp: int, rtt: int, v6: bool) -> None:
        self.g, self.t, self.c, self.s, self.cp, self.sp, self.rtt = g, t, c, s, cp, sp, rtt
        self.seq = [int(g.r.random() * M32), int(g.r.random() * M32)]
        self.mss = 1428 if v6 else 1448
        self.tsyn = g.t_syn6 if v6 else g.t_syn

    def p(self, d: int, fl: int, tm: int, pl: int, dt: int = 0, seq: int | None = None,
          ack: int | None = None) -> None:
        self.t += dt
        q = self.seq
        if seq is None:
            seq = q[d]
            q[d] = (seq + pl + (1 if fl & 3 else 0)) & M32
        if ack is None:
            ack = q[1 - d] if fl & ACK else 0
        if d == 0:
            self.g.rows.extend((self.t, tm, pl, self.c, self.s, self.cp, self.sp, seq, ack, fl, self.rtt))
        else:
            self.g.rows.extend((self.t, tm, pl, self.s, self.c, self.sp, self.cp, seq, ack, fl, self.rtt))

    def handshake(self) -> None:
        tsyn = self.tsyn
        if self.g.r.random() < 0.1:  # ECN setup (RFC 3168): SYN+ECE+CWR, SYN-ACK+ECE
            self.p(0, SYN | ECE | CWR, tsyn, 0)
            self.p(1, SYN | ACK | ECE, tsyn, 0, dt=self.rtt)
        else:
            self.p(0, SYN, tsyn, 0)
            self.p(1, SYN | ACK, tsyn, 0, dt=self.rtt)
        self.p(0, ACK, self.g.t_ack, 0, dt=60)

    def bulk(self, d: int, size: int, first: int, tms: list[int], gap: int = 0) -> None:
        """Send size bytes from side d in MSS segments with a delayed ACK every second
        segment.  In about 4% of transfers one segment is lost past the tap: each later
        segment draws a duplicate ACK with a SACK block (RFC 2018); the third one (or a
        timeout when nothing follows) triggers the retransmission, then a cumulative ACK."""
        g = self.g
        rnd = g.r.random
        mss = self.mss
        size = max(size, 1)
        nseg = (size + mss - 1) // mss
        lost = int(rnd() * nseg) if rnd() < 0.04 else -1
        tm = tms[int(rnd() * len(tms))]
        tack, tsack = g.t_ack, g.t_sack
        self.t += gap + self.rtt // 2
        cwnd = 10
        hole = -1
        hole_n = hole_t = ndup = 0
        for i in range(nseg):
            n = mss if i < nseg - 1 else size - mss * (nseg - 1)
            fl = PA if i == nseg - 1 else ACK
            t = first if (i == 0 and first) else tm
            if i and i % cwnd == 0:  # next flight after an RTT
                self.t += self.rtt
                cwnd = min(cwnd * 2, 64)
            s0 = self.seq[d]
            self.p(d, fl, t, n, dt=5 + int(rnd() * 100))
            if i == lost:
                hole, hole_n, hole_t, ndup = s0, n, t, 0
                if i == nseg - 1:  # nothing follows: retransmission timeout
                    self.p(d, fl, t, n, dt=max(200_000, 2 * self.rtt), seq=s0)
                    self.p(1 - d, ACK, tack, 0, dt=self.rtt // 2)
                continue
            if hole >= 0:
                self.p(1 - d, ACK, tsack, (self.seq[d] - hole) & M32, dt=20 + int(rnd() * 100),
                       seq=self.seq[1 - d], ack=hole)
                ndup += 1
                if ndup == 3 or i == nseg - 1:
                    self.p(d, ACK, hole_t, hole_n, dt=self.rtt // 2, seq=hole)
                    self.p(1 - d, ACK, tack, 0, dt=self.rtt // 2)
                    hole = -1
                continue
            if i & 1 or i == nseg - 1:
                self.p(1 - d, ACK, tack, 0, dt=20 + int(rnd() * 150))

    def close(self, u: float) -> None:
        g = self.g
        if u < 0.8:
            self.p(0, FIN | ACK, g.t_ack, 0, dt=100 + int(g.r.random() * 500000))
            self.p(1, FIN | ACK, g.t_ack, 0, dt=self.rtt)
            self.p(0, ACK, g.t_ack, 0, dt=60)
        elif u < 0.9:
            self.p(0, RST | ACK, g.t_rst, 0, dt=100 + int(g.r.random() * 100000))
        elif u < 0.97:
            self.p(1, RST, g.t_rst, 0, dt=100 + int(g.r.random() * 100000))
        # else: left open (still alive when the capture ends, or idle)


# --------------------------------------------------------------------------- writer
def put(buf: np.ndarray, pos: np.ndarray, val: np.ndarray | int, w: int) -> None:
    """Big-endian store of w-byte integers at byte positions pos."""
    for k in range(w):
        buf[pos + k] = (val >> (8 * (w - 1 - k))) & 0xFF


def fold_arr(x: np.ndarray) -> np.ndarray:
    for _ in range(3):
        x = (x & 0xFFFF) + (x >> 16)
    return x


AR = np.arange(64, dtype=np.int64)


class Writer:
    def __init__(self, g: Generator, f) -> None:
        self.g, self.f = g, f
        self.buf = np.zeros(1 << 24, np.uint8)
        self.tmv = memoryview(g.T.blob)
        self.stats = dict(packets=0, bytes=0, vlan=0, ipv4=0, ipv6=0, arp=0, other_l2=0, tcp=0, udp=0,
                          icmp=0, other_ip=0, fragments=0, syn=0, synack=0, dns_queries=0, max_frame=0)
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

    def write(self, R: np.ndarray) -> None:
        n = len(R)
        if n == 0:
            return
        g, T, H = self.g, self.g.T, self.g.H
        ts, tm, pl, s, d, sp, dp, seq, ack, fl, aux = (R[:, i] for i in range(NCOL))
        kind = T.t_kind[tm]
        l3k = T.t_l3[tm]
        v6 = H.v6[s] & (l3k == L3_IP)
        v4 = (l3k == L3_IP) & ~v6
        vl = H.vlan_a[s]
        vl = np.where(vl > 0, vl, H.vlan_a[d])
        hasv = vl > 0
        l2len = 14 + 4 * hasv
        ipopt = T.t_ipopt[tm]
        l3hl = np.where(v4, 20 + 4 * ipopt, np.where(v6, 40, 0))
        seglen = np.where(T.t_var[tm] == 1, T.t_hdr[tm] + pl, T.t_len[tm])
        flen = np.maximum(60, l2len + l3hl + seglen)
        reclen = 16 + flen
        end = np.cumsum(reclen)
        pos = end - reclen
        total = int(end[-1])
        if total > len(self.buf):
            self.buf = np.zeros(total * 2, np.uint8)
        buf = self.buf
        buf[:total] = 0
        fr = pos + 16
        l3 = fr + l2len
        l4 = l3 + l3hl
        # pcap record headers (little-endian u32: sec, usec, caplen, len)
        rh = np.empty((n, 4), "<u4")
        rh[:, 0] = EPOCH + ts // 1_000_000
        rh[:, 1] = ts % 1_000_000
        rh[:, 2] = flen
        rh[:, 3] = flen
        buf[pos[:, None] + AR[:16]] = rh.view(np.uint8).reshape(n, 16)
        # bodies from templates
        mv = memoryview(buf)
        tmv = self.tmv
        for p, o, ln in zip(l4.tolist(), T.t_off[tm].tolist(), seglen.tolist(), strict=True):
            mv[p:p + ln] = tmv[o:o + ln]
        # Ethernet II / 802.1Q / 802.3 length
        buf[fr[:, None] + AR[:6]] = H.l2mac[d]
        buf[fr[:, None] + AR[6:12]] = H.l2mac[s]
        iv = np.flatnonzero(hasv)
        put(buf, fr[iv] + 12, 0x8100, 2)
        put(buf, fr[iv] + 14, vl[iv], 2)
        etype = np.where(v4, 0x0800, np.where(v6, 0x86DD, np.where(l3k == L3_ARP, 0x0806, seglen)))
        put(buf, l3 - 2, etype, 2)
        proto = T.t_proto[tm]
        tt = T.t_ttl[tm]
        ttl = np.where(tt > 0, tt, np.where(tt == -1, aux, H.ttl_a[s]))
        h = (ts * 0x9E3779B1 + s * 0x85EBCA6B + seq) >> 11
        # IPv4 header (RFC 791), checksum from the fields' word sums
        i4 = np.flatnonzero(v4)
        if len(i4):
            a, s4, d4 = l3[i4], s[i4], d[i4]
            k4 = kind[i4]
            isfrag = (k4 == K_FRAG1U) | (k4 == K_FRAG)
            ipid = np.where(isfrag, seq[i4], h[i4]) & 0xFFFF
            b0 = 0x45 + ipopt[i4]
            tot = l3hl[i4] + seglen[i4]
            ff = T.t_frag[tm[i4]]
            tp = (ttl[i4] << 8) | proto[i4]
            buf[a] = b0
            put(buf, a + 2, tot, 2)
            put(buf, a + 4, ipid, 2)
            put(buf, a + 6, ff, 2)
            put(buf, a + 8, tp, 2)
            buf[a[:, None] + 12 + AR[:4]] = H.a16[s4, :4]
            buf[a[:, None] + 16 + AR[:4]] = H.a16[d4, :4]
            io = np.flatnonzero(ipopt[i4])
            buf[a[io] + 20] = 0x94
            buf[a[io] + 21] = 0x04
            cs = (b0 << 8) + tot + ipid + ff + tp + H.asum[s4] + H.asum[d4] + 0x9404 * ipopt[i4]
            put(buf, a + 10, 0xFFFF - fold_arr(cs), 2)
        i6 = np.flatnonzero(v6)
        if len(i6):  # IPv6 header (RFC 8200), flow label from the 5-tuple
            a = l3[i6]
            flow = (sp[i6] * 40503 + dp[i6] * 2654435 + s[i6] * 97 + d[i6]) & 0xFFFFF
            put(buf, a, 0x60000000 | flow, 4)
            put(buf, a + 4, seglen[i6], 2)
            buf[a + 6] = proto[i6]
            buf[a + 7] = ttl[i6]
            buf[a[:, None] + 8 + AR[:16]] = H.a16[s[i6]]
            buf[a[:, None] + 24 + AR[:16]] = H.a16[d[i6]]
        # transport fields
        it = np.flatnonzero(kind == K_TCP)
        if len(it):
            a = l4[it]
            put(buf, a, sp[it], 2)
            put(buf, a + 2, dp[it], 2)
            put(buf, a + 4, seq[it], 4)
            put(buf, a + 6 + 2, ack[it], 4)
            f_ = fl[it]
            buf[a + 13] = f_
            win = np.where(f_ & SYN, np.where(f_ & ACK, 65160, 64240), np.where(f_ & RST, 0, H.win[s[it]]))
            win = np.where(tm[it] == g.t_scan, 1024, win)
            put(buf, a + 14, win, 2)
            tso = T.t_tsopt[tm[it]]
            j = np.flatnonzero(tso >= 0)
            if len(j):
                ij = it[j]
                b = a[j] + tso[j]
                put(buf, b, (H.tsbase[s[ij]] + ts[ij] // 1000) & M32, 4)
                ecr = np.where(fl[ij] & ACK, (H.tsbase[d[ij]] + (ts[ij] - aux[ij] // 2) // 1000) & M32, 0)
                put(buf, b + 4, ecr, 4)
            j = np.flatnonzero(T.t_sack[tm[it]] >= 0)
            if len(j):
                ij = it[j]
                b = a[j] + T.t_sack[tm[ij]]
                put(buf, b, (ack[ij] + np.where(v6[ij], 1428, 1448)) & M32, 4)
                put(buf, b + 4, (ack[ij] + pl[ij]) & M32, 4)
        iu = np.flatnonzero((kind == K_UDP) | (kind == K_FRAG1U))
        if len(iu):
            a = l4[iu]
            put(buf, a, sp[iu], 2)
            put(buf, a + 2, dp[iu], 2)
            ju = np.flatnonzero(kind[iu] == K_UDP)
            put(buf, a[ju] + 4, seglen[iu[ju]], 2)
        ie = np.flatnonzero(kind == K_ECHO)
        if len(ie):
            put(buf, l4[ie] + 4, sp[ie], 2)
            put(buf, l4[ie] + 6, dp[ie], 2)
        ii = np.flatnonzero(kind == K_ICMPERR)
        if len(ii):  # quoted IPv4 header: src = the erring packet's sender (our receiver)
            a = l4[ii] + 8
            buf[a[:, None] + 12 + AR[:4]] = H.a16[d[ii], :4]
            buf[a[:, None] + 16 + AR[:4]] = H.a16[aux[ii], :4]
            put(buf, a + 20, sp[ii], 2)
            put(buf, a + 22, dp[ii], 2)
            cs = T.t_isum[tm[ii]] + H.asum[d[ii]] + H.asum[aux[ii]]
            put(buf, a + 10, 0xFFFF - fold_arr(cs), 2)
        ia = np.flatnonzero(kind == K_ARP)
        if len(ia):
            a = l3[ia]
            buf[a[:, None] + 8 + AR[:6]] = H.realmac[s[ia]]
            buf[a[:, None] + 14 + AR[:4]] = H.a16[s[ia], :4]
            ja = np.flatnonzero(T.t_arptha[tm[ia]])
            buf[a[ja, None] + 18 + AR[:6]] = H.realmac[aux[ia[ja]]]
            buf[a[:, None] + 24 + AR[:4]] = H.a16[aux[ia], :4]
        for col, off_a, w_a in ((seq, T.t_a1off, T.t_a1w), (ack, T.t_a2off, T.t_a2w)):
            off = off_a[tm]
            for w in (2, 4):
                j = np.flatnonzero((off >= 0) & (w_a[tm] == w))
                if len(j):
                    put(buf, l4[j] + off[j], col[j] & ((1 << (8 * w)) - 1), w)
        # L4 checksums: patched leading bytes summed here, the rest precomputed per template
        csoff = T.t_csoff[tm]
        ic = np.flatnonzero(csoff >= 0)
        if len(ic):
            tc = tm[ic]
            dyn = T.t_dyn[tc]
            D = int(dyn.max())
            ssum = np.zeros(len(ic), np.int64)
            if D:
                by = buf[l4[ic][:, None] + AR[:D]].astype(np.int64)
                by[AR[:D][None, :] >= dyn[:, None]] = 0
                ssum = (by[:, 0::2] * 256 + by[:, 1::2]).sum(axis=1)
            sl = seglen[ic]
            ssum += T.rtab[T.t_rbase[tc] + sl - dyn]
            ps = T.t_pseudo[tc] == 1
            ssum += np.where(ps, H.asum[s[ic]] + H.asum[d[ic]] + proto[ic] + sl, 0)
            c = 0xFFFF - fold_arr(ssum)
            c = np.where((c == 0) & (proto[ic] == 17), 0xFFFF, c)
            put(buf, l4[ic] + csoff[ic], c, 2)
        self.f.write(mv[:total])
        st = self.stats
        st["packets"] += n
        st["bytes"] += int(flen.sum())
        st["vlan"] += int(hasv.sum())
        st["ipv4"] += int(v4.sum())
        st["ipv6"] += int(v6.sum())
        st["arp"] += int((l3k == L3_ARP).sum())
        st["other_l2"] += int((l3k == L3_LLC).sum())
        ip = v4 | v6
        st["tcp"] += int((ip & (proto == 6)).sum())
        st["udp"] += int((ip & (proto == 17)).sum())
        st["icmp"] += int((ip & ((proto == 1) | (proto == 58))).sum())
        st["other_ip"] += int((ip & (proto != 6) & (proto != 17) & (proto != 1) & (proto != 58)).sum())
        st["fragments"] += int(((kind == K_FRAG) | (kind == K_FRAG1U)).sum())
        tcp = kind == K_TCP
        st["syn"] += int((tcp & ((fl & 0x12) == SYN)).sum())
        st["synack"] += int((tcp & ((fl & 0x12) == 0x12)).sum())
        st["dns_queries"] += int(((kind == K_UDP) & (dp == 53)).sum())
        st["max_frame"] = max(st["max_frame"], int(flen.max()))


def generate(packets: int, out: str, seed: int, pps: int = 15000) -> dict[str, int]:
    g = Generator(seed, pps)
    left = packets
    with open(out, "wb", buffering=0) as f:
        w = Writer(g, f)
        for rows in g.windows():
            if left <= 0:
                break
            rows = rows[:left]
            w.write(rows)
            left -= len(rows)
    return w.stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--out", required=True, help="output .pcap path")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pps", type=int, default=15000, help="average packets per second of capture time")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    st = generate(a.packets, a.out, a.seed, a.pps)
    dt = time.perf_counter() - t0
    if not a.quiet:
        n = max(st["packets"], 1)
        print(f"wrote {a.out}: {st['packets']} packets, {(24 + 16 * n + st['bytes']) / 1e6:.1f} MB "
              f"in {dt:.1f} s ({n / dt:,.0f} packets/s)", file=sys.stderr)
        shares = ("vlan", "ipv4", "ipv6", "arp", "other_l2", "tcp", "udp", "icmp", "other_ip", "fragments")
        print("  " + ", ".join(f"{k} {100 * st[k] / n:.1f}%" for k in shares), file=sys.stderr)
        print(f"  syn {st['syn']}, syn-ack {st['synack']}, dns queries {st['dns_queries']}, "
              f"largest frame {st['max_frame']} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
