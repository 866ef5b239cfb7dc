"""The ``scapy`` decoder: the reference engine, one Scapy dissection per header.

It fills exactly the columns of :mod:`netsift.decode_fast` (their meaning is
in :mod:`netsift.columns`), but every header field is read from a Scapy layer
rather than from byte offsets, so the differential test compares two
independent readings of the same bytes.  Per-packet Python: slow by design,
and the engine of record when the two disagree.

Each header is dissected on its own (``stop_dissection_after``) with the Scapy
class the column contract names for it.  Which class follows which header is
the contract's dispatch (the tables below), not Scapy's ``bind_layers``: those
differ on points the contract fixes (QinQ TPIDs 0x9100/0x9200, BSD loopback
families, ICMP inside IPv6) and change with whichever Scapy modules happen to
be loaded.  What Scapy cannot say — whether snaplen cut a header, where a
header starts — comes from header lengths: the fixed sizes below (from the
specs) and the length fields Scapy dissected (IHL, data offset, Hdr Ext Len).
A transport header is dissected from the datagram's own bytes, padding cut
off, as Scapy's ``IP.extract_padding`` does.

Scapy is imported lazily and only from ``scapy.layers.*`` (``scapy.all`` costs
most of a second and is not needed to dissect).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from .capture import RecordBatch
from .columns import (
    ANOMALY_BIT,
    ETH_LLC_MAX,
    L2_ETHERNET,
    L2_NONE,
    L2_NULL,
    L2_RAW,
    L2_SLL,
    L2_SLL2,
    LINK_TYPES,
    PacketColumns,
)

# --- fixed header sizes (bytes) ---------------------------------------------------
#: link layer -> (Scapy class, header bytes); raw IP has no link header
LINK_HEADERS = {
    L2_ETHERNET: ("Ether", 14),  # IEEE 802.3: destination, source, EtherType/length
    L2_SLL: ("CookedLinux", 16),  # tcpdump.org LINKTYPE_LINUX_SLL
    L2_SLL2: ("CookedLinuxV2", 20),  # tcpdump.org LINKTYPE_LINUX_SLL2
    L2_NULL: ("LoopbackOpenBSD", 4),  # tcpdump.org LINKTYPE_NULL / LINKTYPE_LOOP: a family
}
VLAN_TAG_BYTES = 4  # IEEE 802.1Q: TCI + EtherType
IPV4_MIN_HEADER = 20  # RFC 791 §3.1, IHL = 5
IPV6_HEADER = 40  # RFC 8200 §3
IPV6_EXT_MIN = 8  # RFC 8200 §4: every extension header is a multiple of 8 octets
TCP_MIN_HEADER = 20  # RFC 9293 §3.1, data offset = 5
UDP_HEADER = 8  # RFC 768
ICMP_HEADER = 8  # RFC 792 / RFC 4443 §2.1: type, code, checksum + 4-octet rest of header

# --- dispatch tables (the contract's, see module doc) ------------------------------
#: 802.1Q, 802.1ad and the pre-standard QinQ TPIDs -> Scapy class name
VLAN_TPID_CLASSES = {0x8100: "Dot1Q", 0x88A8: "Dot1AD", 0x9100: "Dot1Q", 0x9200: "Dot1Q"}
MAX_VLAN_TAGS = 8
#: LINKTYPE_LOOP writes the family in network byte order; LINKTYPE_NULL in the
#: writer's host order, so either order may appear.
LINKTYPE_LOOP = 108
#: Wireshark packet-null.c: a little-endian value with its upper half set and
#: below this is an IRIX snoop header (family in the upper 16 bits) ...
NULL_IRIX_LIMIT = 0x0006_0000
#: ... and one whose low byte is zero and below this is a byte-swapped 16-bit family.
NULL_SWAPPED_FAMILY_LIMIT = 0x0600
#: A PPP frame's address and control octets (RFC 1662 §3.1), seen in place of a family.
PPP_ADDRESS_CONTROL = 0xFF03
#: LINKTYPE_IPV4 / LINKTYPE_IPV6: the link type says the version
RAW_LINK_ETHERTYPE = {228: 0x0800, 229: 0x86DD}
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
#: IPv6 extension headers followed (RFC 8200 §4, RFC 4302 AH, RFC 6275 mobility,
#: RFC 7401 HIP, RFC 5533 shim6) -> Scapy class name.  HIP and shim6 have no
#: Scapy class; they use RFC 8200 §4.8's generic layout, which is the
#: Destination Options header's.
IPV6_EXT_CLASSES = {
    0: "IPv6ExtHdrHopByHop",
    43: "IPv6ExtHdrRouting",
    44: "IPv6ExtHdrFragment",
    51: "AH",
    60: "IPv6ExtHdrDestOpt",
    135: "MIP6MH_Generic",
    139: "IPv6ExtHdrDestOpt",
    140: "IPv6ExtHdrDestOpt",
}
IPV6_HOP_BY_HOP = 0
IPV6_FRAGMENT = 44
IPV6_AH = 51
MAX_IPV6_EXT = 8
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58

_V4_MAPPED_PREFIX = "::ffff:"
_LOW64 = (1 << 64) - 1


@dataclass(frozen=True)
class _Scapy:
    """The Scapy layer classes used here, loaded on first decode."""

    cls: dict[str, Any]
    #: every class dissected here: Scapy stops after the first one it completes
    stop: tuple[Any, ...]
    #: BSD address family -> protocol name, Scapy's table (from Wireshark's packet-null.c)
    loopback_types: dict[int, str]


@cache
def _scapy() -> _Scapy:
    from scapy.layers import inet, inet6, ipsec, l2

    names = {
        l2: ("Ether", "Dot3", "Dot1Q", "Dot1AD", "CookedLinux", "CookedLinuxV2", "LoopbackOpenBSD"),
        inet: ("IP", "TCP", "UDP", "ICMP"),
        inet6: (
            "IPv6",
            "IPv6ExtHdrHopByHop",
            "IPv6ExtHdrRouting",
            "IPv6ExtHdrFragment",
            "IPv6ExtHdrDestOpt",
            "MIP6MH_Generic",
            "ICMPv6Unknown",
        ),
        ipsec: ("AH",),
    }
    cls = {name: getattr(module, name) for module, group in names.items() for name in group}
    return _Scapy(cls=cls, stop=tuple(cls.values()), loopback_types=dict(l2.LOOPBACK_TYPES))


@dataclass
class _Frame:
    """One record being decoded: its bytes and what is known so far."""

    data: bytes
    #: offset just past the frame on the wire: max(wirelen, caplen)
    wire_end: int
    anomalies: int = 0

    @property
    def cap(self) -> int:
        return len(self.data)

    def flag(self, name: str) -> None:
        self.anomalies |= ANOMALY_BIT[name]


def _layer(
    s: _Scapy, name: str, f: _Frame, off: int, size: int, fallback: str = "", end: int | None = None
) -> Any:
    """Dissect the header at ``off`` with Scapy class ``name``; None when fewer than ``size`` bytes.

    The header sees the captured bytes up to ``end`` (the end of the IP
    datagram, for a transport header: what follows is padding, as Scapy's own
    ``IP.extract_padding`` has it).  Scapy raises on bytes its field table
    cannot hold (a malformed option list, a message body shorter than its type
    needs); the fixed part is then read alone, or with ``fallback``'s layout,
    so that the fields the columns need still come from Scapy.
    """
    stop = f.cap if end is None else min(f.cap, end)
    if stop - off < size:
        return None
    for cls_name, data in ((name, f.data[off:stop]), (fallback or name, f.data[off : off + size])):
        try:
            return s.cls[cls_name](data, stop_dissection_after=s.stop)
        except Exception:  # Scapy's dissectors raise assorted errors on hostile bytes
            continue
    return None


def _header_len(layer: Any) -> int:
    """Bytes Scapy consumed for this layer's own header (payload and padding excluded)."""
    return len(layer) - len(layer.payload)


def decode(batch: RecordBatch) -> PacketColumns:
    """Decode every record of ``batch`` with Scapy (same columns as ``decode_fast.decode``)."""
    s = _scapy()
    n = len(batch)
    c = PacketColumns.empty(n)
    for i in range(n):
        caplen = int(batch.caplen[i])
        wirelen = int(batch.wirelen[i])
        link_type = int(batch.link_type[i])
        c.frame[i] = batch.first_frame + i
        c.ts_ns[i] = batch.ts_ns[i]
        c.caplen[i] = caplen
        c.wirelen[i] = wirelen
        c.link_type[i] = link_type
        f = _Frame(batch.packet_bytes(i), max(wirelen, caplen))
        _decode_frame(s, c, i, f, link_type)
        c.anomalies[i] = f.anomalies
    return c


def _decode_frame(s: _Scapy, c: PacketColumns, i: int, f: _Frame, link_type: int) -> None:
    eth_type, l3 = _link(s, c, i, f, link_type)
    if l3 < 0:
        return
    c.l3_off[i] = l3
    if eth_type == ETHERTYPE_IPV4:
        l4, ip_end = _ipv4(s, c, i, f, l3)
    elif eth_type == ETHERTYPE_IPV6:
        l4, ip_end = _ipv6(s, c, i, f, l3)
    else:
        return
    if l4 >= 0:
        _transport(s, c, i, f, l4, ip_end)


# --- link layer ---------------------------------------------------------------------
def _link(s: _Scapy, c: PacketColumns, i: int, f: _Frame, link_type: int) -> tuple[int, int]:
    """Fill the link columns; return (ethertype, offset of the network header or -1)."""
    code = LINK_TYPES.get(link_type, (L2_NONE, ""))[0]
    if code == L2_NONE:
        f.flag("unsupported_link_type")
        return 0, -1
    c.l2[i] = code
    if code == L2_RAW:
        # No link header, but a record without a single byte has no IP version either.
        if f.cap < 1:
            f.flag("truncated_link_header")
            return 0, -1
        eth_type, l3 = _raw_ip_version(s, f, link_type), 0
        c.eth_type[i] = eth_type
        return eth_type, l3
    name, size = LINK_HEADERS[code]
    hdr = _layer(s, name, f, 0, size)
    if hdr is None:
        f.flag("truncated_link_header")
        return 0, -1
    l3 = _header_len(hdr)
    if code == L2_ETHERNET:
        # Scapy returns Dot3 (field ``len``) when the EtherType field is an 802.3 length.
        eth_type = int(hdr.type if isinstance(hdr, s.cls["Ether"]) else hdr.len)
        c.eth_type[i] = eth_type
        return _vlan_tags(s, c, i, f, eth_type, l3)
    eth_type = (
        int(hdr.proto) if code in (L2_SLL, L2_SLL2) else _loopback(s, int(hdr.type), link_type)
    )
    c.eth_type[i] = eth_type
    return eth_type, l3


def _loopback(s: _Scapy, big: int, link_type: int) -> int:
    """Ethertype of a NULL/LOOP header, resolved as Wireshark's packet-null.c does.

    ``big`` is the 32-bit value as Scapy's ``LoopbackOpenBSD`` reads it, in
    network order.  Scapy's ``Loopback`` keeps only the first octet (a
    little-endian family below 256), too little for Wireshark's heuristics,
    so the little-endian reading is the big-endian one byte-swapped.
    """
    value = big
    if link_type != LINKTYPE_LOOP:  # LINKTYPE_LOOP is network byte order; NULL the writer's
        little = int.from_bytes(big.to_bytes(4, "big"), "little")
        if little > 0xFFFF:
            if little < NULL_IRIX_LIMIT:  # IRIX snoop: a 16-bit family in the upper half
                value = little >> 16
            # otherwise the writer was big-endian, and ``value`` is already right
        elif little & 0xFF == 0 and little < NULL_SWAPPED_FAMILY_LIMIT:
            value = big >> 16  # a 16-bit family written byte-swapped
        else:
            value = little
    if big >> 16 == PPP_ADDRESS_CONTROL:  # FF 03: a PPP frame, not a family
        return 0
    if value > ETH_LLC_MAX:  # old Linux libpcap wrote an EtherType here
        return value & 0xFFFF
    family = s.loopback_types.get(value, "")
    return {"IPv4": ETHERTYPE_IPV4, "IPv6": ETHERTYPE_IPV6}.get(family, 0)


def _raw_ip_version(s: _Scapy, f: _Frame, link_type: int) -> int:
    if link_type in RAW_LINK_ETHERTYPE:
        return RAW_LINK_ETHERTYPE[link_type]
    # LINKTYPE_RAW: the version nibble says which.  It is IP's first field; read
    # it with Scapy's field alone, as a record this short cannot be dissected whole.
    version_field = s.cls["IP"].fields_desc[0]
    _, version = version_field.getfield(None, (f.data[:1], 0))
    return {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version, 0)


def _vlan_tags(
    s: _Scapy, c: PacketColumns, i: int, f: _Frame, eth_type: int, l3: int
) -> tuple[int, int]:
    depth = 0
    while eth_type in VLAN_TPID_CLASSES:
        tag = _layer(s, VLAN_TPID_CLASSES[eth_type], f, l3, VLAN_TAG_BYTES)
        if tag is None:
            f.flag("truncated_link_header")
            c.eth_type[i] = 0
            return 0, -1
        if depth == MAX_VLAN_TAGS:
            f.flag("vlan_stack_too_deep")
            return eth_type, -1
        if depth == 0:
            c.vlan_outer[i] = tag.vlan
        elif depth == 1:
            c.vlan_inner[i] = tag.vlan
        eth_type = int(tag.type)
        c.eth_type[i] = eth_type
        l3 += _header_len(tag)
        depth += 1
        c.vlan_depth[i] = depth
    return eth_type, l3


# --- network layer ------------------------------------------------------------------
def _ip_length(c: PacketColumns, i: int, f: _Frame, l3: int, total: int, zero: bool) -> int:
    """Store ``ip_len``, flag a length past the frame; return the wire end of the datagram.

    A zero length (TSO, or an IPv6 jumbogram) means "to the end of the frame".
    """
    avail = f.wire_end - l3
    if total > avail:
        f.flag("ip_length_exceeds_frame")
    c.ip_len[i] = avail if zero else total
    return l3 + (avail if zero else min(total, avail))


def _ipv4(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l3: int) -> tuple[int, int]:
    """Fill the IPv4 columns; return (offset of the transport header or -1, datagram end)."""
    ip = _layer(s, "IP", f, l3, IPV4_MIN_HEADER)
    if ip is None:
        f.flag("truncated_ip_header")
        return -1, 0
    if ip.version != 4:
        f.flag("bad_ip_version")
        return -1, 0
    ihl = int(ip.ihl) * 4
    if ihl < IPV4_MIN_HEADER:
        f.flag("bad_ip_header_length")
        return -1, 0
    c.ip_version[i] = 4
    c.ip_id[i] = ip.id
    c.ip_df[i] = bool(ip.flags.DF)
    c.frag_mf[i] = bool(ip.flags.MF)
    frag_offset = int(ip.frag) * 8
    c.frag_offset[i] = frag_offset
    c.is_fragment[i] = bool(ip.flags.MF) or frag_offset > 0
    c.ip_ttl[i] = ip.ttl
    c.ip_proto[i] = ip.proto
    c.ip_src_hi[i], c.ip_src_lo[i] = _split(_V4_MAPPED_PREFIX + ip.src)
    c.ip_dst_hi[i], c.ip_dst_lo[i] = _split(_V4_MAPPED_PREFIX + ip.dst)
    c.ip_hdr_len[i] = ihl
    total = int(ip.len)
    zero = total == 0
    if zero:
        f.flag("ip_length_zero")
    bad_total = total < ihl and not zero
    if bad_total:
        f.flag("bad_ip_total_length")
    ip_end = _ip_length(c, i, f, l3, total, zero)
    if l3 + ihl > f.cap:
        f.flag("truncated_ip_header")
        return -1, ip_end
    if bad_total or frag_offset > 0:  # non-first fragments carry no transport header
        return -1, ip_end
    return l3 + ihl, ip_end


def _ipv6(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l3: int) -> tuple[int, int]:
    """Fill the IPv6 columns, walking extension headers; return (L4 offset or -1, datagram end)."""
    ip6 = _layer(s, "IPv6", f, l3, IPV6_HEADER)
    if ip6 is None:
        f.flag("truncated_ip_header")
        return -1, 0
    if ip6.version != 6:
        f.flag("bad_ip_version")
        return -1, 0
    c.ip_version[i] = 6
    c.ip_src_hi[i], c.ip_src_lo[i] = _split(ip6.src)
    c.ip_dst_hi[i], c.ip_dst_lo[i] = _split(ip6.dst)
    c.ip_ttl[i] = ip6.hlim
    plen = int(ip6.plen)
    ip_end = _ip_length(c, i, f, l3, IPV6_HEADER + plen, plen == 0)

    nh = int(ip6.nh)
    # Zero is legitimate only in a jumbogram, whose length sits in a Hop-by-Hop
    # header right after this one (RFC 2675 §3): Scapy's own jumbogram test.
    if plen == 0 and nh != IPV6_HOP_BY_HOP:
        f.flag("ip_length_zero")
    pos = l3 + _header_len(ip6)
    cut = False
    too_long = False
    frag_offset = 0
    hops = 0
    while nh in IPV6_EXT_CLASSES:
        if hops == MAX_IPV6_EXT:
            f.flag("ipv6_extension_chain_too_long")  # not cut: we stop following it
            too_long = True
            break
        ext = _layer(s, IPV6_EXT_CLASSES[nh], f, pos, IPV6_EXT_MIN, fallback="IPv6ExtHdrDestOpt")
        if ext is None:
            cut = True
            break
        hops += 1
        if nh == IPV6_FRAGMENT:
            frag_offset = int(ext.offset) * 8
            c.frag_offset[i] = frag_offset
            c.frag_mf[i] = bool(ext.m)
            c.ip_id[i] = ext.id
            c.is_fragment[i] = True
            hlen = _header_len(ext)
        elif nh == IPV6_AH:
            # RFC 4302 §2.2: 32-bit words minus 2.  An AH too short for Scapy's
            # class was read with the generic layout: the same octet is "len".
            words = ext.payloadlen if isinstance(ext, s.cls["AH"]) else ext.len
            hlen = (int(words) + 2) * 4
        else:
            hlen = (int(ext.len) + 1) * 8  # RFC 8200 §4.3: 8-octet units, not counting the first 8
        nh = int(ext.nh)
        pos += hlen
        if pos > f.cap:
            cut = True
            break
    c.ip_proto[i] = nh
    c.ip_hdr_len[i] = pos - l3
    if cut:
        f.flag("truncated_ip_header")
        return -1, ip_end
    if too_long or frag_offset > 0:
        return -1, ip_end
    return pos, ip_end


# --- transport layer ----------------------------------------------------------------
def _transport(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l4: int, ip_end: int) -> None:
    proto = int(c.ip_proto[i])
    if proto == IPPROTO_TCP:
        _tcp(s, c, i, f, l4, ip_end)
    elif proto == IPPROTO_UDP:
        _udp(s, c, i, f, l4, ip_end)
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        _icmp(s, c, i, f, l4, ip_end, proto)


def _tcp(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l4: int, ip_end: int) -> None:
    tcp = _layer(s, "TCP", f, l4, TCP_MIN_HEADER, end=ip_end)
    if tcp is None:
        f.flag("truncated_transport_header")
        return
    c.l4_off[i] = l4
    c.sport[i] = tcp.sport
    c.dport[i] = tcp.dport
    c.tcp_seq[i] = tcp.seq
    c.tcp_ack[i] = tcp.ack
    c.tcp_flags[i] = int(tcp.flags)
    c.tcp_window[i] = tcp.window
    data_offset = int(tcp.dataofs) * 4
    payload_len = ip_end - (l4 + data_offset)
    if data_offset < TCP_MIN_HEADER or payload_len < 0:
        f.flag("bad_tcp_header_length")
        return
    c.payload_off[i] = l4 + data_offset
    c.payload_len[i] = payload_len


def _udp(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l4: int, ip_end: int) -> None:
    udp = _layer(s, "UDP", f, l4, UDP_HEADER, end=ip_end)
    if udp is None:
        f.flag("truncated_transport_header")
        return
    c.l4_off[i] = l4
    c.sport[i] = udp.sport
    c.dport[i] = udp.dport
    room = ip_end - l4
    length = int(udp.len)
    fragment = bool(c.is_fragment[i])
    # A first fragment's UDP length covers the whole datagram: not checkable here.
    bad = (length < UDP_HEADER or length > room) and not fragment
    if bad:
        f.flag("bad_udp_length")
    c.payload_off[i] = l4 + UDP_HEADER
    c.payload_len[i] = max((room if bad or fragment else length) - UDP_HEADER, 0)


def _icmp(s: _Scapy, c: PacketColumns, i: int, f: _Frame, l4: int, ip_end: int, proto: int) -> None:
    # ICMPv6Unknown is Scapy's catch-all for RFC 4443 §2.1's general format, whose
    # first word (type, code, checksum) is also RFC 792's; it reads messages too
    # short for their type-specific class.
    name = "ICMP" if proto == IPPROTO_ICMP else "ICMPv6Unknown"
    icmp = _layer(s, name, f, l4, ICMP_HEADER, fallback="ICMPv6Unknown", end=ip_end)
    if icmp is None:
        f.flag("truncated_transport_header")
        return
    c.l4_off[i] = l4
    c.icmp_type[i] = icmp.type
    c.icmp_code[i] = icmp.code
    # What follows the 8-byte header (echo data, a quoted datagram) is payload.
    c.payload_off[i] = l4 + ICMP_HEADER
    c.payload_len[i] = max(ip_end - l4 - ICMP_HEADER, 0)


def _split(address: str) -> tuple[np.uint64, np.uint64]:
    """An IPv6 address (or IPv4-mapped one) as its big-endian (high, low) 64-bit halves."""
    value = int(ipaddress.IPv6Address(address))
    return np.uint64(value >> 64), np.uint64(value & _LOW64)
