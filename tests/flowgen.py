"""Crafted traffic for the flow-table tests: Scapy packets with explicit MACs and times,
a fast numpy writer for floods, and helpers that run a flow table over a capture."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from netsift.capture import CaptureReader, RecordBatch
from netsift.columns import PacketColumns
from netsift.decode_fast import decode
from netsift.flows import FlowConfig, FlowRecord, FlowTable

#: Capture time of the first crafted packet (2023-11-14T22:13:20Z).
T0 = 1_700_000_000
CLIENT_MAC = "02:00:00:00:00:01"
SERVER_MAC = "02:00:00:00:00:02"
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def at(pkt: Packet, t: float) -> Packet:
    """``pkt`` stamped ``t`` seconds after :data:`T0`."""
    pkt.time = T0 + t
    return pkt


def eth(src_is_client: bool = True) -> Ether:
    if src_is_client:
        return Ether(src=CLIENT_MAC, dst=SERVER_MAC)
    return Ether(src=SERVER_MAC, dst=CLIENT_MAC)


class Tcp:
    """One TCP conversation between a client and a server endpoint, packet by packet.

    ``c(...)`` builds a client→server segment, ``s(...)`` a server→client one;
    windows default to 8192 and no options are added, so every header is 20 bytes.
    """

    def __init__(
        self,
        client: str = CLIENT,
        server: str = SERVER,
        cport: int = 40000,
        sport: int = 80,
    ) -> None:
        self.client, self.server, self.cport, self.sport = client, server, cport, sport

    def c(
        self, t: float, flags: str, seq: int, ack: int = 0, data: bytes = b"", win: int = 8192
    ) -> Packet:
        p = (
            eth(True)
            / IP(src=self.client, dst=self.server)
            / TCP(sport=self.cport, dport=self.sport, flags=flags, seq=seq, ack=ack, window=win)
        )
        return at(p / Raw(data) if data else p, t)

    def s(
        self, t: float, flags: str, seq: int, ack: int = 0, data: bytes = b"", win: int = 8192
    ) -> Packet:
        p = (
            eth(False)
            / IP(src=self.server, dst=self.client)
            / TCP(sport=self.sport, dport=self.cport, flags=flags, seq=seq, ack=ack, window=win)
        )
        return at(p / Raw(data) if data else p, t)

    def handshake(self, t: float = 0.0, c_isn: int = 1000, s_isn: int = 5000) -> list[Packet]:
        """SYN, SYN-ACK, ACK at t, t+10 ms, t+20 ms."""
        return [
            self.c(t, "S", c_isn),
            self.s(t + 0.01, "SA", s_isn, c_isn + 1),
            self.c(t + 0.02, "A", c_isn + 1, s_isn + 1),
        ]


def udp(
    t: float, src: str, dst: str, sport: int, dport: int, data: bytes, to_server: bool = True
) -> Packet:
    return at(eth(to_server) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(data), t)


def icmp(
    t: float, src: str, dst: str, type_: int, ident: int, seq: int, to_server: bool = True
) -> Packet:
    return at(
        eth(to_server)
        / IP(src=src, dst=dst)
        / ICMP(type=type_, id=ident, seq=seq)
        / Raw(b"x" * 32),
        t,
    )


def write(path: Path, packets: Sequence[Packet]) -> Path:
    wrpcap(str(path), list(packets))
    return path


# --- running a flow table ----------------------------------------------------------


def decoded(path: Path) -> list[tuple[PacketColumns, RecordBatch]]:
    reader = CaptureReader(str(path))
    with reader:
        return [(decode(b), b) for b in reader.batches()]


def slice_batch(
    cols: PacketColumns, batch: RecordBatch, a: int, b: int
) -> tuple[PacketColumns, RecordBatch]:
    c = PacketColumns(**{k: v[a:b] for k, v in cols.as_dict().items()})  # type: ignore[arg-type]
    rb = RecordBatch(
        buf=batch.buf, off=batch.off[a:b], caplen=batch.caplen[a:b], wirelen=batch.wirelen[a:b],
        ts_ns=batch.ts_ns[a:b], link_type=batch.link_type[a:b], iface=batch.iface[a:b],
        first_frame=batch.first_frame + a, file_index=batch.file_index,
    )  # fmt: skip
    return c, rb


def run_table(path: Path, config: FlowConfig | None = None, table: Any = None) -> list[FlowRecord]:
    """Every record a flow table (the Python specification by default) makes of ``path``."""
    table = table if table is not None else FlowTable(config)
    out: list[FlowRecord] = []
    for cols, batch in decoded(path):
        table.update(cols, batch)
        out += table.drain()
    table.finish()
    return out + table.drain()


def one(records: Iterable[FlowRecord]) -> FlowRecord:
    recs = list(records)
    assert len(recs) == 1, recs
    return recs[0]


# --- fast flood writer -----------------------------------------------------------------

_REC = np.dtype(
    [
        ("ts_sec", "<u4"), ("ts_usec", "<u4"), ("caplen", "<u4"), ("wirelen", "<u4"),
        ("dst_mac", "u1", 6), ("src_mac", "u1", 6), ("ethertype", ">u2"),
        ("ver_ihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"), ("ip_id", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"),
        ("flags", "u1"), ("win", ">u2"), ("tcp_sum", ">u2"), ("urg", ">u2"),
    ]
)  # fmt: skip
assert _REC.itemsize == 16 + 54


def syn_flood(path: Path, n: int, seed: int = 7, duration_s: float = 2.0) -> Path:
    """``n`` SYNs to 10.0.0.2:80, each from a different source address (distinct 5-tuples).

    Written straight from a numpy record array (no per-packet Python), with valid IPv4
    header checksums; times spread evenly over ``duration_s`` (below Zeek's 5 s attempt
    delay, so no flow ends by attempt timeout).
    """
    rng = np.random.default_rng(seed)
    a = np.zeros(n, dtype=_REC)
    usec = (np.arange(n, dtype=np.int64) * int(duration_s * 1e6)) // max(n, 1)
    a["ts_sec"] = T0 + usec // 1_000_000
    a["ts_usec"] = usec % 1_000_000
    a["caplen"] = a["wirelen"] = 54
    a["dst_mac"] = np.frombuffer(bytes.fromhex("020000000002"), dtype=np.uint8)
    a["src_mac"] = np.frombuffer(bytes.fromhex("020000000001"), dtype=np.uint8)
    a["ethertype"] = 0x0800
    a["ver_ihl"] = 0x45
    a["ip_len"] = 40
    a["ip_id"] = rng.integers(0, 1 << 16, n)
    a["ttl"] = 64
    a["proto"] = 6
    # distinct sources: 11.0.0.0 + a random permutation of 0..n-1
    a["src"] = 0x0B000000 + rng.permutation(n).astype(np.uint32)
    a["dst"] = 0x0A000002
    a["sport"] = rng.integers(1024, 65536, n)
    a["dport"] = 80
    a["seq"] = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    a["off"] = 0x50
    a["flags"] = 0x02
    a["win"] = 1024
    # IPv4 header checksum over the ten 16-bit words (checksum word zero)
    words = (
        (0x4500) + 40 + a["ip_id"].astype(np.uint32) + 0 + ((64 << 8) | 6)
        + (a["src"] >> 16) + (a["src"] & 0xFFFF) + (0x0A000002 >> 16) + (0x0A000002 & 0xFFFF)
    ).astype(np.uint32)  # fmt: skip
    words = (words & 0xFFFF) + (words >> 16)
    words = (words & 0xFFFF) + (words >> 16)
    a["ip_sum"] = (~words) & 0xFFFF
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.write(a.tobytes())
    return path
