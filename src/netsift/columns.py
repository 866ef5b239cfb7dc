"""The decoded-packet columns both decoders fill, and the anomaly codes they may set.

One row per captured record.  Both engines (``fast`` and ``scapy``) produce a
:class:`PacketColumns` with exactly these fields and meanings; the differential
test compares them column by column.  Conventions:

- Offsets (``l3_off``, ``l4_off``, ``payload_off``) are relative to the first
  captured byte of the packet; ``-1`` means "not present".
- IP addresses are 128-bit values split in two big-endian halves; IPv4
  addresses are stored IPv4-mapped (``::ffff:a.b.c.d``) so one pair of columns
  serves both families.
- Lengths that come from headers (``ip_len``, ``payload_len``) are wire
  lengths, independent of snaplen; what was *captured* of the payload is
  ``min(payload_len, caplen - payload_off)``.
- Only the outermost IP header and the transport header that follows it are
  decoded.  ICMP errors quote an inner IP header: it is never counted as
  traffic.  Tunnels (GRE, IP-in-IP, ...) stop at the outer protocol.
- Non-first fragments carry no transport header: their L4 columns stay empty.
- A header's fields are read only when its whole fixed part was captured;
  otherwise a ``truncated_*`` code is set and its columns stay empty.  A cut
  variable part (IPv4 options, IPv6 extension headers) sets
  ``truncated_ip_header`` and decoding stops there.  The ICMP/ICMPv6 header
  is 8 bytes (RFC 792, RFC 4443 §2.1), TCP's 20, UDP's 8.
- A transport header must also lie inside the IP datagram (its total or
  payload length, bounded by the frame): bytes after the datagram are link
  padding, and a header running into them is ``truncated_transport_header``,
  never ports read from padding.  Beyond the fixed part, a TCP data offset or
  UDP length past the datagram is ``bad_tcp_header_length`` / ``bad_udp_length``.
- A zero IP length means "to the end of the frame" (``ip_len`` is then the
  frame's remaining wire length): IPv4 TSO captures, IPv6 TSO captures and
  jumbograms.  ``ip_length_zero`` marks it, except for an IPv6 jumbogram,
  recognised (as Scapy does) by a Hop-by-Hop header right after the IPv6
  header, where RFC 2675 puts the Jumbo Payload option.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

# --- link layers -----------------------------------------------------------------
L2_NONE = 0  # unsupported link type
L2_ETHERNET = 1
L2_SLL = 2
L2_SLL2 = 3
L2_RAW = 4
L2_NULL = 5

#: pcap/pcapng LINKTYPE_* values (tcpdump.org link-layer header types) -> our L2 code
LINK_TYPES: dict[int, tuple[int, str]] = {
    0: (L2_NULL, "null"),  # BSD loopback, host-byte-order family
    1: (L2_ETHERNET, "ether"),
    12: (L2_RAW, "raw"),  # DLT_RAW on most BSDs, written as-is by some tools
    14: (L2_RAW, "raw"),  # DLT_RAW on OpenBSD
    101: (L2_RAW, "raw"),  # LINKTYPE_RAW
    108: (L2_NULL, "loop"),  # OpenBSD loopback, network-byte-order family
    113: (L2_SLL, "linux-sll"),
    228: (L2_RAW, "rawip4"),  # LINKTYPE_IPV4
    229: (L2_RAW, "rawip6"),  # LINKTYPE_IPV6
    276: (L2_SLL2, "linux-sll2"),
}

#: Names for link types we count but do not decode (Wireshark's short names).
OTHER_LINK_TYPE_NAMES: dict[int, str] = {
    9: "ppp",
    10: "fddi",
    50: "ppp-hdlc",
    104: "chdlc",
    105: "ieee-802-11",
    107: "frelay",
    119: "prism",
    127: "ieee-802-11-radiotap",
    139: "mtp2",
    143: "docsis",
    147: "user0",
    163: "ieee-802-11-avs",
    189: "usb-linux",
    192: "ppi",
    195: "ieee-802-15-4",
    220: "usb-linux-mmapped",
    239: "nflog",
    249: "usbpcap",
    252: "wireshark-upper-pdu",
}


def link_type_name(link_type: int) -> str:
    if link_type in LINK_TYPES:
        return LINK_TYPES[link_type][1]
    return OTHER_LINK_TYPE_NAMES.get(link_type, f"linktype-{link_type}")


# --- anomaly codes (bit positions are internal; the names are the API) -----------
#: Stable snake_case anomaly names, in bit order.  Never reorder; append only.
ANOMALY_CODES: tuple[str, ...] = (
    "unsupported_link_type",  # link type counted, not decoded
    "truncated_link_header",  # fewer captured bytes than the link-layer header
    "truncated_ip_header",  # IP header (incl. IPv4 options / IPv6 ext headers) cut
    "bad_ip_version",  # version nibble disagrees with the ethertype / link type
    "bad_ip_header_length",  # IPv4 IHL < 5
    "bad_ip_total_length",  # IPv4 total length < header length
    "ip_length_exceeds_frame",  # IP says more bytes than the frame carried on the wire
    "ip_length_zero",  # IPv4 total length 0 (TSO) or IPv6 payload length 0 without a Hop-by-Hop header
    "truncated_transport_header",  # TCP/UDP/ICMP fixed header cut by snaplen or by the IP length
    "bad_tcp_header_length",  # TCP data offset < 5 or past the IP payload
    "bad_udp_length",  # UDP length < 8 or past the IP payload
    "ipv6_extension_chain_too_long",  # more extension headers than we follow (not a cut; no L4)
    "vlan_stack_too_deep",  # more VLAN tags than we follow
)
ANOMALY_BIT: dict[str, int] = {name: 1 << i for i, name in enumerate(ANOMALY_CODES)}


def anomaly_names(mask: int) -> list[str]:
    return [name for name, bit in ANOMALY_BIT.items() if mask & bit]


# --- IP protocol names used in the protocol hierarchy (Wireshark filter names) ---
IP_PROTO_NAMES: dict[int, str] = {
    1: "icmp",
    2: "igmp",
    4: "ip",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    132: "sctp",
}

ETHERTYPE_NAMES: dict[int, str] = {
    0x0800: "ip",
    0x86DD: "ipv6",
    0x0806: "arp",
    0x8035: "rarp",
    0x8847: "mpls",
    0x8848: "mpls",
    0x8863: "pppoed",
    0x8864: "pppoes",
    0x88CC: "lldp",
    0x888E: "eapol",
    0x88F7: "ptp",
    0x8809: "slow",
    0x88E5: "macsec",
    0x9000: "loop",
}

#: ``eth_type`` values below this are IEEE 802.3 lengths: an LLC header follows.
ETH_LLC_MAX = 1500


@dataclass
class PacketColumns:
    """Decoded fields, one array element per captured record (see module doc)."""

    frame: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.int64]
    wirelen: npt.NDArray[np.int64]
    link_type: npt.NDArray[np.int32]
    l2: npt.NDArray[np.uint8]
    eth_type: npt.NDArray[np.uint16]
    vlan_depth: npt.NDArray[np.uint8]
    vlan_outer: npt.NDArray[np.uint16]
    vlan_inner: npt.NDArray[np.uint16]
    l3_off: npt.NDArray[np.int32]
    ip_version: npt.NDArray[np.uint8]
    ip_src_hi: npt.NDArray[np.uint64]
    ip_src_lo: npt.NDArray[np.uint64]
    ip_dst_hi: npt.NDArray[np.uint64]
    ip_dst_lo: npt.NDArray[np.uint64]
    ip_proto: npt.NDArray[np.uint8]
    ip_ttl: npt.NDArray[np.uint8]
    ip_id: npt.NDArray[np.uint32]
    ip_len: npt.NDArray[np.int32]
    ip_hdr_len: npt.NDArray[np.int32]
    ip_df: npt.NDArray[np.bool_]
    frag_mf: npt.NDArray[np.bool_]
    frag_offset: npt.NDArray[np.int32]
    is_fragment: npt.NDArray[np.bool_]
    l4_off: npt.NDArray[np.int32]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    tcp_flags: npt.NDArray[np.uint16]
    tcp_seq: npt.NDArray[np.uint32]
    tcp_ack: npt.NDArray[np.uint32]
    tcp_window: npt.NDArray[np.uint16]
    icmp_type: npt.NDArray[np.uint8]
    icmp_code: npt.NDArray[np.uint8]
    payload_off: npt.NDArray[np.int32]
    payload_len: npt.NDArray[np.int32]
    anomalies: npt.NDArray[np.uint32]

    @classmethod
    def empty(cls, n: int) -> PacketColumns:
        """Columns for ``n`` packets with every field at its 'absent' value."""
        values: dict[str, npt.NDArray[np.generic]] = {}
        for f in fields(cls):
            dtype = COLUMN_DTYPES[f.name]
            fill = -1 if f.name in _MINUS_ONE else 0
            values[f.name] = np.full(n, fill, dtype=dtype)
        return cls(**values)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def as_dict(self) -> dict[str, npt.NDArray[np.generic]]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def take(self, rows: npt.NDArray[np.int64]) -> PacketColumns:
        """The columns of ``rows`` only (frame numbers are kept)."""
        return PacketColumns(**{name: col[rows] for name, col in self.as_dict().items()})  # type: ignore[arg-type]


U64 = npt.NDArray[np.uint64]


def lower_first(sh: U64, sl: U64, dh: U64, dl: U64) -> tuple[npt.NDArray[np.bool_], U64, U64, U64, U64]:
    """Each row's two addresses as (hi, lo) halves, the lower first (tshark's conversation
    order): (source is the lower or equal, lower hi, lower lo, higher hi, higher lo)."""
    fwd = (sh < dh) | ((sh == dh) & (sl <= dl))
    return fwd, np.where(fwd, sh, dh), np.where(fwd, sl, dl), np.where(fwd, dh, sh), np.where(fwd, dl, sl)


COLUMN_DTYPES: dict[str, type[np.generic]] = {
    "frame": np.int64,
    "ts_ns": np.int64,
    "caplen": np.int64,
    "wirelen": np.int64,
    "link_type": np.int32,
    "l2": np.uint8,
    "eth_type": np.uint16,
    "vlan_depth": np.uint8,
    "vlan_outer": np.uint16,
    "vlan_inner": np.uint16,
    "l3_off": np.int32,
    "ip_version": np.uint8,
    "ip_src_hi": np.uint64,
    "ip_src_lo": np.uint64,
    "ip_dst_hi": np.uint64,
    "ip_dst_lo": np.uint64,
    "ip_proto": np.uint8,
    "ip_ttl": np.uint8,
    "ip_id": np.uint32,
    "ip_len": np.int32,
    "ip_hdr_len": np.int32,
    "ip_df": np.bool_,
    "frag_mf": np.bool_,
    "frag_offset": np.int32,
    "is_fragment": np.bool_,
    "l4_off": np.int32,
    "sport": np.uint16,
    "dport": np.uint16,
    "tcp_flags": np.uint16,
    "tcp_seq": np.uint32,
    "tcp_ack": np.uint32,
    "tcp_window": np.uint16,
    "icmp_type": np.uint8,
    "icmp_code": np.uint8,
    "payload_off": np.int32,
    "payload_len": np.int32,
    "anomalies": np.uint32,
}
_MINUS_ONE = {"l3_off", "l4_off", "payload_off"}

#: IPv4-mapped IPv6 prefix in the low half: ::ffff:0:0/96
V4_MAPPED = np.uint64(0xFFFF_0000_0000)


def ip_text(hi: int, lo: int) -> str:
    """An address held in the two 64-bit halves of the columns as text (IPv4-mapped → dotted quad)."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))
