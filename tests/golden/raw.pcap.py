"""Golden capture: raw IP (LINKTYPE_RAW, 101) -> raw.pcap.

No link-layer header: the IP version nibble says IPv4 or IPv6 (tcpdump.org
LINKTYPE_RAW), as tun devices and many VPN captures are written.  IPv4 TCP
and ICMP, IPv6 UDP and TCP.  Paths start at "raw".

Run: python raw.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from truth import Capture, Interface, output_dir

VPN, SRV = "172.16.0.2", "172.16.0.1"
VPN6, SRV6 = "fd00:10::2", "fd00:10::1"

cap = Capture(
    name="raw.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=101, snaplen=262144)],
)
for i, (s, d, sp, dp, flags) in enumerate(((VPN, SRV, 55000, 22, 0x02),
                                           (SRV, VPN, 22, 55000, 0x12),
                                           (VPN, SRV, 55000, 22, 0x10))):
    cap.add(IP(src=s, dst=d, id=70 + i) / TCP(sport=sp, dport=dp, flags=flags, seq=i),
            "ip:tcp", src=s, dst=d, tcp=(sp, dp, flags))
cap.add(IP(src=VPN, dst=SRV, id=80) / ICMP(id=2, seq=1) / bytes(56), "ip:icmp", src=VPN, dst=SRV)
cap.add(IPv6(src=VPN6, dst=SRV6) / UDP(sport=51820, dport=51820) / bytes(32),
        "ipv6:udp", src=VPN6, dst=SRV6, udp=(51820, 51820))
cap.add(IPv6(src=SRV6, dst=VPN6) / TCP(sport=443, dport=56000, flags=0x11, seq=9, ack=9),
        "ipv6:tcp", src=SRV6, dst=VPN6, tcp=(443, 56000, 0x11))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
