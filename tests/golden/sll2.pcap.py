"""Golden capture: Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276) -> sll2.pcap.

What ``tcpdump -i any`` writes on libpcap >= 1.10: a 20-byte pseudo-header
with protocol first, then interface index, ARPHRD type, packet type and
link-layer address (tcpdump.org LINKTYPE_LINUX_SLL2).  IPv4 TCP and UDP over
two interfaces, IPv6 ICMPv6 and ARP.  netsift names the link node "sll" for
both cooked versions, as Wireshark's protocol hierarchy does.

Run: python sll2.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, CookedLinuxV2
from truth import Capture, Interface, output_dir

HOST, WEB, NTP, GW = "10.3.0.1", "10.3.0.80", "10.3.0.123", "10.3.0.254"
HOST6, PEER6 = "fd00:3::1", "fd00:3::2"
MAC = b"\x02\x00\x00\x00\x04\x01\x00\x00"
OUTGOING, HOST_BOUND = 4, 0


def sll2(ifindex: int, pkttype: int, proto: int) -> CookedLinuxV2:
    return CookedLinuxV2(proto=proto, ifindex=ifindex, lladdrtype=1, pkttype=pkttype,
                         lladdrlen=6, src=MAC)


cap = Capture(
    name="sll2.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=276, snaplen=262144)],
)
for i, (s, d, sp, dp, flags, way) in enumerate((
        (HOST, WEB, 53000, 8080, 0x02, OUTGOING),
        (WEB, HOST, 8080, 53000, 0x12, HOST_BOUND),
        (HOST, WEB, 53000, 8080, 0x10, OUTGOING),
        (HOST, WEB, 53000, 8080, 0x04, OUTGOING))):
    cap.add(sll2(2, way, 0x0800) / IP(src=s, dst=d, id=30 + i)
            / TCP(sport=sp, dport=dp, flags=flags, seq=7 + i), "ip:tcp", src=s, dst=d,
            tcp=(sp, dp, flags))
for i, (s, d, sp, dp, way) in enumerate(((HOST, NTP, 123, 123, OUTGOING),
                                         (NTP, HOST, 123, 123, HOST_BOUND))):
    cap.add(sll2(3, way, 0x0800) / IP(src=s, dst=d, id=40 + i) / UDP(sport=sp, dport=dp)
            / bytes([0x23 + i]) / bytes(47), "ip:udp", src=s, dst=d, udp=(sp, dp))
cap.add(sll2(2, OUTGOING, 0x86DD) / IPv6(src=HOST6, dst=PEER6) / ICMPv6EchoRequest(id=3, seq=1),
        "ipv6:icmpv6", src=HOST6, dst=PEER6)
cap.add(sll2(2, OUTGOING, 0x0806) / ARP(op=1, hwsrc="02:00:00:00:04:01", psrc=HOST, pdst=GW),
        "arp")

if __name__ == "__main__":
    cap.write(output_dir(__file__))
