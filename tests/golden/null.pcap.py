"""Golden capture: BSD loopback (LINKTYPE_NULL, 0) -> null.pcap.

Each packet starts with a 4-byte address family in the *writer's* byte order
(tcpdump.org LINKTYPE_NULL): AF_INET is 2 everywhere, AF_INET6 is 24
(NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).  A little-endian file (as
x86/ARM hosts write) with AF_INET and all three AF_INET6 values; paths start
at "null".  null_big_endian.pcap has the big-endian writer's case.

Run: python null.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from truth import Capture, Interface, output_dir

LO, LO6 = "127.0.0.1", "::1"
AF_INET, AF_INET6_BSD, AF_INET6_FREEBSD, AF_INET6_DARWIN = 2, 24, 28, 30

cap = Capture(
    name="null.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=0, snaplen=262144)],
)
for i, flags in enumerate((0x02, 0x12, 0x10, 0x18)):
    sp, dp = (54000, 5432) if i != 1 else (5432, 54000)
    cap.add(struct.pack("<I", AF_INET)
            + bytes(IP(src=LO, dst=LO, id=50 + i) / TCP(sport=sp, dport=dp, flags=flags, seq=i)
                    / (b"query" if flags == 0x18 else b"")),
            "ip:tcp", src=LO, dst=LO, tcp=(sp, dp, flags))
cap.add(struct.pack("<I", AF_INET) + bytes(IP(src=LO, dst=LO, id=60) / UDP(sport=8125, dport=8126)
                                             / b"metric:1|c"),
        "ip:udp", src=LO, dst=LO, udp=(8125, 8126))
for i, family in enumerate((AF_INET6_BSD, AF_INET6_FREEBSD, AF_INET6_DARWIN)):
    echo = ICMPv6EchoRequest if i % 2 == 0 else ICMPv6EchoReply
    cap.add(struct.pack("<I", family) + bytes(IPv6(src=LO6, dst=LO6) / echo(id=4, seq=i)),
            "ipv6:icmpv6", src=LO6, dst=LO6)
cap.add(struct.pack("<I", AF_INET6_DARWIN) + bytes(IPv6(src=LO6, dst=LO6)
                                                    / UDP(sport=5353, dport=5353) / bytes(12)),
        "ipv6:udp", src=LO6, dst=LO6, udp=(5353, 5353))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
