"""Golden capture: one malformed packet per decoder anomaly code -> malformed.pcap.

Records are not cut by snaplen (captured length = wire length); the packets
themselves are damaged, each in one way, to set one anomaly code of
netsift.columns.ANOMALY_CODES (unsupported_link_type is in unsupported.pcap).
Decoding stops at the last good layer (docs/statistics.md): a packet counts
as a talker only when its IPv4/IPv6 addresses were readable, and ports only
when its transport header was.

Run: python malformed.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from truth import Capture, Interface, output_dir

A, B = "10.5.0.1", "10.5.0.2"
A6, B6 = "2001:db8:5::1", "2001:db8:5::2"
IPV4 = 0x0800
MAX_VLAN_TAGS = 8  # netsift follows 8 tags (decode_fast.MAX_VLAN_TAGS)
MAX_IPV6_EXT = 8  # ... and 8 IPv6 extension headers


def eth(ethertype: int | None = None) -> Ether:
    e = Ether(src="02:00:00:00:05:01", dst="02:00:00:00:05:02")
    if ethertype is not None:
        e.type = ethertype
    return e


def udp4(ip_id: int, sport: int, dport: int) -> bytes:
    """A valid IPv4/UDP datagram (20 + 8 + 12 bytes) to damage by hand."""
    return bytes(IP(src=A, dst=B, id=ip_id) / UDP(sport=sport, dport=dport) / Raw(b"twelve bytes"))


def with_total_length(datagram: bytes, total: int) -> bytes:
    return datagram[:2] + struct.pack(">H", total) + datagram[4:]


def stack(layers: list[Packet]) -> Packet:
    out = layers[0]
    for layer in layers[1:]:
        out = out / layer
    return out


cap = Capture(
    name="malformed.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=1, snaplen=65535)],
)

# --- link layer -----------------------------------------------------------------------
cap.add(bytes(eth(IPV4))[:12], "", anomalies=("truncated_link_header",))  # a 12-byte runt
# an 802.1Q TPID whose 4-byte tag is cut after 2 bytes: no VLAN node, no network layer
cap.add(bytes(eth() / Dot1Q(vlan=5) / IP(src=A, dst=B))[:16], "",
        anomalies=("truncated_link_header",))
tags = stack([Dot1Q(vlan=v) for v in range(1, MAX_VLAN_TAGS + 2)])  # one tag too many
cap.add(eth() / tags / IP(src=A, dst=B, id=1) / UDP(sport=1, dport=2), "vlan:" * 7 + "vlan",
        anomalies=("vlan_stack_too_deep",))

# --- IPv4 header -------------------------------------------------------------------------
cap.add(bytes(eth(IPV4)) + udp4(2, 3, 4)[:10], "ip",  # ends 10 bytes into the IPv4 header
        anomalies=("truncated_ip_header",))
cap.add(eth(IPV4) / IPv6(src=A6, dst=B6) / UDP(sport=5, dport=6), "ip",  # EtherType says IPv4
        anomalies=("bad_ip_version",))
cap.add(bytes(eth(IPV4)) + b"\x44" + udp4(3, 7, 8)[1:], "ip",  # IHL 4: below the minimum 5
        anomalies=("bad_ip_header_length",))
# total length 10 < the 20-byte header: addresses readable, no transport (decoding stops)
cap.add(bytes(eth(IPV4)) + with_total_length(udp4(4, 9, 10), 10), "ip", src=A, dst=B,
        anomalies=("bad_ip_total_length",))
# total length 1000 in a 54-byte frame: decoded up to what the frame holds
cap.add(bytes(eth(IPV4)) + with_total_length(udp4(5, 11, 12), 1000), "ip:udp", src=A, dst=B,
        udp=(11, 12), anomalies=("ip_length_exceeds_frame",))
# total length 0, as TCP segmentation offload leaves it: "to the end of the frame"
cap.add(bytes(eth(IPV4)) + with_total_length(udp4(6, 13, 14), 0), "ip:udp", src=A, dst=B,
        udp=(13, 14), anomalies=("ip_length_zero",))

# --- IPv6 header -------------------------------------------------------------------------
cap.add(eth() / IPv6(src=A6, dst=B6, plen=0) / UDP(sport=15, dport=16) / Raw(b"no jumbo"),
        "ipv6:udp", src=A6, dst=B6, udp=(15, 16), anomalies=("ip_length_zero",))
# One destination-options header more than netsift follows: nothing was cut, so only
# the chain anomaly is set; no transport header is decoded and the path stops at ipv6.
chain = stack([IPv6ExtHdrDestOpt() for _ in range(MAX_IPV6_EXT + 1)])
cap.add(eth() / IPv6(src=A6, dst=B6) / chain / UDP(sport=17, dport=18), "ipv6", src=A6, dst=B6,
        anomalies=("ipv6_extension_chain_too_long",))

# --- transport headers ---------------------------------------------------------------------
# TCP data offset 4 (< 5): ports and flags are read from the fixed header, payload is not
cap.add(eth() / IP(src=A, dst=B, id=7) / TCP(sport=19, dport=20, flags="A", dataofs=4),
        "ip:tcp", src=A, dst=B, tcp=(19, 20, 0x10), anomalies=("bad_tcp_header_length",))
cap.add(eth() / IP(src=A, dst=B, id=8) / UDP(sport=21, dport=22, len=4) / Raw(b"abcd"),
        "ip:udp", src=A, dst=B, udp=(21, 22), anomalies=("bad_udp_length",))
# the IPv4 datagram ends 6 bytes into the UDP header (the frame is not cut)
cap.add(bytes(eth(IPV4)) + with_total_length(udp4(9, 23, 24), 26)[:26], "ip:udp", src=A, dst=B,
        anomalies=("truncated_transport_header",))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
