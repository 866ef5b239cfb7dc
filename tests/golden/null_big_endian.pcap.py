"""Golden capture: BSD loopback written by a big-endian host -> null_big_endian.pcap.

A big-endian pcap file (magic a1 b2 c3 d4 in file order, as a PowerPC Mac or
SPARC wrote them) whose LINKTYPE_NULL headers hold the address family in that
host's byte order: 00 00 00 02 for AF_INET, 00 00 00 1e for AF_INET6 (macOS).
tcpdump.org: the family is "in host byte order" of the writer, so a reader must
accept either order (netsift.decode_fast._null_family, Wireshark packet-null.c).

Run: python null_big_endian.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from truth import Capture, Interface, output_dir

LO, LO6 = "127.0.0.1", "::1"
AF_INET, AF_INET6_DARWIN = 2, 30

cap = Capture(
    name="null_big_endian.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=0, snaplen=65535)],
    byte_order=">",
)
for i in range(2):
    cap.add(struct.pack(">I", AF_INET) + bytes(IP(src=LO, dst=LO, id=200 + i)
                                               / UDP(sport=7000 + i, dport=53) / bytes(16)),
            "ip:udp", src=LO, dst=LO, udp=(7000 + i, 53))
cap.add(struct.pack(">I", AF_INET6_DARWIN) + bytes(IPv6(src=LO6, dst=LO6)
                                                   / ICMPv6EchoRequest(id=1, seq=1)),
        "ipv6:icmpv6", src=LO6, dst=LO6)
cap.add(struct.pack(">I", AF_INET6_DARWIN) + bytes(IPv6(src=LO6, dst=LO6)
                                                   / ICMPv6EchoReply(id=1, seq=1)),
        "ipv6:icmpv6", src=LO6, dst=LO6)
cap.extra_facts["inputs.0.byte_order"] = "big"

if __name__ == "__main__":
    cap.write(output_dir(__file__))
