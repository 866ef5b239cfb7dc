"""The packet-field registry behind ``netsift packets``: Wireshark field names → column extractors.

A field is a :class:`Field`: its Wireshark name, a *kind* that says how its
values are typed and rendered, and an extractor.  An extractor takes one
decoded batch (:class:`~netsift.columns.PacketColumns` and the
:class:`~netsift.capture.RecordBatch` it came from) and returns
``(values, present)``: ``values`` a numpy array (or a list, for kinds whose
values are Python objects) with one element per packet, ``present`` a
boolean array; where ``present`` is false the value is absent and its
element is ignored.

Kinds and renderings (CSV follows ``tshark -T fields``; NDJSON and Parquet
carry typed values):

====== =============================== ============================ ==========
kind   values                          CSV                          NDJSON
====== =============================== ============================ ==========
int    integer array                   ``80``                       ``80``
hex    integer array                   ``0x0012`` (``hex_width``)   ``18``
bool   boolean array                   ``1`` / ``0``                ``true``
time   int64 nanoseconds since epoch   ``1700000000.016447000``     float s
ip     ``(n, 2)`` uint64 (hi, lo)      ``192.0.2.1`` / ``2001:db8::1`` string
str    list of ``str``                 the text                     string
====== =============================== ============================ ==========

Later modules add fields with :func:`register` (application fields such as
``dns.qname``); the filter language and the writers use the registry only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .capture import RecordBatch
from .columns import L2_ETHERNET, PacketColumns

Mask = npt.NDArray[np.bool_]
Values = Any  # numpy array, or a list for ``str`` fields
Extractor = Callable[[PacketColumns, RecordBatch], tuple[Values, Mask]]

KINDS = ("int", "hex", "bool", "time", "ip", "str")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    extract: Extractor
    description: str
    hex_width: int = 0
    #: for ``ip``-kind fields: the field of the other family a filter uses when
    #: the value it is compared with is of that family (``ip.src`` → ``ipv6.src``)
    other_family: str | None = None


#: name → :class:`Field`; extend with :func:`register`.
FIELDS: dict[str, Field] = {}

#: Filter-only names that stand for several fields (Wireshark's ``ip.addr``, ``tcp.port``):
#: a comparison holds when it holds for any of them (``!=``: for all that are present).
ALIASES: dict[str, tuple[str, ...]] = {}

#: Protocol names usable as presence tests in a filter: name → packets that carry it.
PROTOCOLS: dict[str, Callable[[PacketColumns, RecordBatch], Mask]] = {}


def register(field: Field) -> Field:
    """Add ``field`` to the registry (a name may be registered once)."""
    if field.kind not in KINDS:
        raise ValueError(f"{field.name}: unknown kind {field.kind!r}")
    if field.name in FIELDS or field.name in ALIASES or field.name in PROTOCOLS:
        raise ValueError(f"{field.name}: already registered")
    FIELDS[field.name] = field
    return field


def all_names() -> list[str]:
    """Every name a filter accepts (fields, aliases, protocols)."""
    return sorted({*FIELDS, *ALIASES, *PROTOCOLS})


# --- the packet masks fields are built on ---------------------------------------


def _v4(c: PacketColumns, b: RecordBatch) -> Mask:
    return np.asarray(c.ip_version == 4, dtype=np.bool_)


def _v6(c: PacketColumns, b: RecordBatch) -> Mask:
    return np.asarray(c.ip_version == 6, dtype=np.bool_)


def _l4(proto: int) -> Callable[[PacketColumns, RecordBatch], Mask]:
    def mask(c: PacketColumns, b: RecordBatch) -> Mask:
        return np.asarray((c.l4_off >= 0) & (c.ip_proto == proto), dtype=np.bool_)

    return mask


_tcp, _udp, _icmp, _icmp6 = _l4(6), _l4(17), _l4(1), _l4(58)


def _ports(c: PacketColumns, b: RecordBatch) -> Mask:
    return np.asarray((c.l4_off >= 0) & ((c.ip_proto == 6) | (c.ip_proto == 17)), dtype=np.bool_)


def _col(name: str, where: Callable[[PacketColumns, RecordBatch], Mask] | None = None) -> Extractor:
    def extract(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
        values = getattr(c, name)
        present = np.ones(len(c), dtype=np.bool_) if where is None else where(c, b)
        return values, present

    return extract


def _addr(hi: str, lo: str, where: Callable[[PacketColumns, RecordBatch], Mask]) -> Extractor:
    def extract(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
        return np.stack([getattr(c, hi), getattr(c, lo)], axis=1), where(c, b)

    return extract


def _eth_type(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
    # The Ethernet header's own type (0x8100 for a tagged frame), as tshark's eth.type.
    present = (c.l2 == L2_ETHERNET) & (c.caplen >= 14)
    values = np.zeros(len(c), dtype=np.int64)
    idx = np.nonzero(present)[0]
    if idx.shape[0]:
        at = b.off[idx] + 12
        values[idx] = (b.buf[at].astype(np.int64) << 8) | b.buf[at + 1]
    return values, present


def _udp_length(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
    present = _udp(c, b)
    values = np.zeros(len(c), dtype=np.int64)
    idx = np.nonzero(present)[0]
    if idx.shape[0]:  # the decoder sets l4_off only when the 8-byte header was captured
        at = b.off[idx] + c.l4_off[idx] + 4
        values[idx] = (b.buf[at].astype(np.int64) << 8) | b.buf[at + 1]
    return values, present


def _frag_offset(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
    return c.frag_offset // 8, _v4(c, b)  # tshark 4 prints the header's 8-byte units


def _flag(bit: int) -> Extractor:
    def extract(c: PacketColumns, b: RecordBatch) -> tuple[Values, Mask]:
        return (c.tcp_flags & bit) != 0, _tcp(c, b)

    return extract


def _either(tcp_col: str) -> Extractor:
    return _col(tcp_col, _ports)


def _builtin() -> None:
    add = register
    add(Field("frame.number", "int", _col("frame"), "1-based record number within its file"))
    add(Field("frame.time_epoch", "time", _col("ts_ns"), "capture time, seconds since 1970"))
    add(Field("frame.len", "int", _col("wirelen"), "length on the wire"))
    add(Field("frame.cap_len", "int", _col("caplen"), "captured length"))
    add(Field("eth.type", "hex", _eth_type, "Ethernet header type (0x8100 when tagged)", 4))
    add(Field("vlan.id", "int", _col("vlan_outer", lambda c, b: c.vlan_depth > 0),
              "outer 802.1Q/802.1ad VLAN id"))  # fmt: skip
    add(Field("ip.version", "int", _col("ip_version", lambda c, b: c.ip_version > 0),
              "4 or 6 (tshark fills it for both)"))  # fmt: skip
    add(Field("ipv6.version", "int", _col("ip_version", _v6), "6 for IPv6 rows"))
    add(Field("ip.src", "ip", _addr("ip_src_hi", "ip_src_lo", _v4), "IPv4 source", 0, "ipv6.src"))
    add(Field("ip.dst", "ip", _addr("ip_dst_hi", "ip_dst_lo", _v4), "IPv4 destination", 0,
              "ipv6.dst"))  # fmt: skip
    add(Field("ipv6.src", "ip", _addr("ip_src_hi", "ip_src_lo", _v6), "IPv6 source"))
    add(Field("ipv6.dst", "ip", _addr("ip_dst_hi", "ip_dst_lo", _v6), "IPv6 destination"))
    add(Field("ip.proto", "int", _col("ip_proto", _v4), "IPv4 protocol number"))
    add(Field("ip.ttl", "int", _col("ip_ttl", _v4), "IPv4 time to live"))
    add(Field("ipv6.hlim", "int", _col("ip_ttl", _v6), "IPv6 hop limit"))
    add(Field("ip.id", "hex", _col("ip_id", _v4), "IPv4 identification", 4))
    add(Field("ip.len", "int", _col("ip_len", _v4), "IPv4 total length"))
    add(Field("ip.flags.df", "bool", _col("ip_df", _v4), "IPv4 don't-fragment flag"))
    add(Field("ip.flags.mf", "bool", _col("frag_mf", _v4), "IPv4 more-fragments flag"))
    add(Field("ip.frag_offset", "int", _frag_offset, "IPv4 fragment offset (8-byte units)"))
    add(Field("tcp.srcport", "int", _col("sport", _tcp), "TCP source port"))
    add(Field("tcp.dstport", "int", _col("dport", _tcp), "TCP destination port"))
    add(Field("udp.srcport", "int", _col("sport", _udp), "UDP source port"))
    add(Field("udp.dstport", "int", _col("dport", _udp), "UDP destination port"))
    add(Field("src.port", "int", _either("sport"), "TCP or UDP source port"))
    add(Field("dst.port", "int", _either("dport"), "TCP or UDP destination port"))
    add(Field("tcp.flags", "hex", _col("tcp_flags", _tcp), "TCP flags (12 bits)", 4))
    for name, bit in (("fin", 0x01), ("syn", 0x02), ("reset", 0x04), ("push", 0x08),
                      ("ack", 0x10), ("urg", 0x20)):  # fmt: skip
        add(Field(f"tcp.flags.{name}", "bool", _flag(bit), f"TCP {name.upper()} flag"))
    add(Field("tcp.flags.rst", "bool", _flag(0x04), "TCP RST flag (Wireshark: tcp.flags.reset)"))
    add(Field("tcp.seq_raw", "int", _col("tcp_seq", _tcp), "TCP sequence number (absolute)"))
    add(Field("tcp.ack_raw", "int", _col("tcp_ack", _tcp), "TCP acknowledgment number (absolute)"))
    add(Field("tcp.window_size_value", "int", _col("tcp_window", _tcp), "TCP window (unscaled)"))
    add(Field("tcp.len", "int", _col("payload_len", _tcp), "TCP payload length"))
    add(Field("udp.length", "int", _udp_length, "UDP length field (header + payload)"))
    add(Field("icmp.type", "int", _col("icmp_type", _icmp), "ICMP type"))
    add(Field("icmp.code", "int", _col("icmp_code", _icmp), "ICMP code"))
    add(Field("icmpv6.type", "int", _col("icmp_type", _icmp6), "ICMPv6 type"))
    add(Field("icmpv6.code", "int", _col("icmp_code", _icmp6), "ICMPv6 code"))
    ALIASES.update({
        "ip.addr": ("ip.src", "ip.dst"),
        "ipv6.addr": ("ipv6.src", "ipv6.dst"),
        "tcp.port": ("tcp.srcport", "tcp.dstport"),
        "udp.port": ("udp.srcport", "udp.dstport"),
        "port": ("src.port", "dst.port"),
    })  # fmt: skip
    PROTOCOLS.update({
        "frame": lambda c, b: np.ones(len(c), dtype=np.bool_),
        "eth": lambda c, b: c.l2 == L2_ETHERNET,
        "vlan": lambda c, b: c.vlan_depth > 0,
        "arp": lambda c, b: (c.eth_type == 0x0806) & (c.ip_version == 0),
        "ip": _v4,
        "ipv6": _v6,
        "tcp": lambda c, b: (c.ip_proto == 6) & (c.ip_version > 0) & (c.frag_offset == 0),
        "udp": lambda c, b: (c.ip_proto == 17) & (c.ip_version > 0) & (c.frag_offset == 0),
        "icmp": lambda c, b: (c.ip_proto == 1) & (c.ip_version == 4) & (c.frag_offset == 0),
        "icmpv6": lambda c, b: (c.ip_proto == 58) & (c.ip_version == 6) & (c.frag_offset == 0),
    })  # fmt: skip


_builtin()


# --- rendering --------------------------------------------------------------------


def ip_strings(pairs: npt.NDArray[np.uint64]) -> list[str]:
    """Text of each ``(hi, lo)`` address (IPv4-mapped → dotted quad), computed once per distinct value."""
    if pairs.shape[0] == 0:
        return []
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    texts = []
    for hi, lo in uniq.tolist():
        if hi == 0 and (lo >> 32) == 0xFFFF:
            texts.append(str(ipaddress.IPv4Address(lo & 0xFFFFFFFF)))
        else:
            texts.append(str(ipaddress.IPv6Address((hi << 64) | lo)))
    return [texts[i] for i in inverse.reshape(-1).tolist()]


def render_text(field: Field, values: Values, present: Mask) -> list[str]:
    """CSV cells (tshark's ``-T fields`` text; absent → empty)."""
    kind = field.kind
    if kind == "str":
        return [v if p else "" for v, p in zip(values, present.tolist(), strict=True)]
    if kind == "ip":
        out = [""] * len(present)
        idx = np.nonzero(present)[0]
        for i, t in zip(idx.tolist(), ip_strings(values[idx]), strict=True):
            out[i] = t
        return out
    if kind == "time":
        ns = np.asarray(values, dtype=np.int64)
        sec, frac = np.divmod(ns, 1_000_000_000)
        cells = [f"{s}.{f:09d}" for s, f in zip(sec.tolist(), frac.tolist(), strict=True)]
    elif kind == "hex":
        fmt = f"0x{{:0{field.hex_width}x}}"
        cells = [fmt.format(v) for v in np.asarray(values).tolist()]
    elif kind == "bool":
        cells = ["1" if v else "0" for v in np.asarray(values).tolist()]
    else:
        cells = [str(v) for v in np.asarray(values).tolist()]
    if not present.all():
        for i in np.nonzero(~present)[0].tolist():
            cells[i] = ""
    return cells


def render_json(field: Field, values: Values, present: Mask) -> list[Any]:
    """Python values for NDJSON / Parquet (absent → ``None``)."""
    kind = field.kind
    if kind == "ip":
        texts = render_text(field, values, present)
        return [t if p else None for t, p in zip(texts, present.tolist(), strict=True)]
    if kind == "str":
        out = list(values)
    elif kind == "time":
        out = (np.asarray(values, dtype=np.int64) / 1e9).tolist()
    elif kind == "bool":
        out = np.asarray(values, dtype=np.bool_).tolist()
    else:
        out = np.asarray(values).astype(np.int64).tolist()
    return [v if p else None for v, p in zip(out, present.tolist(), strict=True)]
