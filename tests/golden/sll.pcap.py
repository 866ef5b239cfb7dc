"""Golden capture: Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113) -> sll.pcap.

What ``tcpdump -i any`` writes on older libpcap: a 16-byte pseudo-header with
packet type, ARPHRD type, link-layer address and protocol (tcpdump.org
LINKTYPE_LINUX_SLL).  IPv4 TCP (both directions, outgoing and incoming), IPv4
ICMP, IPv6 UDP DNS and ARP; paths start at "sll".

Run: python sll.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux
from truth import Capture, Interface, output_dir

HOST, PEER, GW = "10.2.0.1", "10.2.0.2", "10.2.0.254"
HOST6, RES6 = "fd00::1", "fd00::53"
MAC = b"\x02\x00\x00\x00\x03\x01\x00\x00"  # 8-byte field, 6 bytes used
OUTGOING, HOST_BOUND = 4, 0  # sll_pkttype (PACKET_OUTGOING, PACKET_HOST)


def sll(pkttype: int, proto: int) -> CookedLinux:
    return CookedLinux(pkttype=pkttype, lladdrtype=1, lladdrlen=6, src=MAC, proto=proto)


cap = Capture(
    name="sll.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=113, snaplen=262144)],
)
for i, (s, d, sp, dp, flags, way) in enumerate((
        (HOST, PEER, 52000, 443, 0x02, OUTGOING),
        (PEER, HOST, 443, 52000, 0x12, HOST_BOUND),
        (HOST, PEER, 52000, 443, 0x10, OUTGOING),
        (HOST, PEER, 52000, 443, 0x18, OUTGOING))):
    cap.add(sll(way, 0x0800) / IP(src=s, dst=d, id=10 + i)
            / TCP(sport=sp, dport=dp, flags=flags, seq=1 + i) / (b"hello" if flags == 0x18 else b""),
            "ip:tcp", src=s, dst=d, tcp=(sp, dp, flags))
cap.add(sll(OUTGOING, 0x0800) / IP(src=HOST, dst=GW, id=20) / ICMP(id=1, seq=1) / b"ping",
        "ip:icmp", src=HOST, dst=GW)
cap.add(sll(OUTGOING, 0x86DD) / IPv6(src=HOST6, dst=RES6) / UDP(sport=53001, dport=53)
        / DNS(id=5, rd=1, qd=DNSQR(qname="example.org", qtype="AAAA")),
        "ipv6:udp", src=HOST6, dst=RES6, udp=(53001, 53))
cap.add(sll(OUTGOING, 0x0806) / ARP(op=1, hwsrc="02:00:00:00:03:01", psrc=HOST, pdst=GW), "arp")

if __name__ == "__main__":
    cap.write(output_dir(__file__))
