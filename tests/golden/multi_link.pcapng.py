"""Golden capture: one pcapng, two interfaces of different link types -> multi_link.pcapng.

Interface 0 "eth0" is Ethernet with microsecond timestamps; interface 1 "tun0"
is raw IP (LINKTYPE_RAW) with nanosecond timestamps (if_tsresol 9), as
``dumpcap -i eth0 -i tun0`` writes them; packets of the two interleave.  An
Interface Statistics Block reports 3 packets dropped by eth0's interface
(isb_ifdrop): the capture is incomplete, verdict "degraded".

Run: python multi_link.pcapng.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from truth import Capture, Interface, output_dir

LAN, GW, PUBLIC = "192.168.7.10", "192.168.7.1", "203.0.113.7"
TUN, TUN_PEER, TUN6, TUN6_PEER = "10.8.0.2", "10.8.0.1", "fd00:8::2", "fd00:8::1"
ETH, TUN_IF = 0, 1

cap = Capture(
    name="multi_link.pcapng",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=1, name="eth0", tsresol=6, received=13, dropped=3),
                Interface(link_type=101, name="tun0", tsresol=9)],
    step_ns=1_000_123,  # odd nanoseconds: the ns interface keeps them, the us one must not
)


def add_eth(pkt: IP, s: str, d: str, **declared: object) -> None:
    """Ethernet frames carry the VPN's encrypted UDP; timestamps rounded to the microsecond."""
    ts = (cap.frames[-1].ts_ns + cap.step_ns) // 1000 * 1000 if cap.frames else cap.start_ns
    cap.add(Ether(src="02:00:00:00:07:0a", dst="02:00:00:00:07:01") / pkt, "ip:udp",
            ts_ns=ts, iface=ETH, src=s, dst=d, **declared)


for i in range(4):
    out = i % 2 == 0
    s, d, sp, dp = (LAN, PUBLIC, 40000, 1194) if out else (PUBLIC, LAN, 1194, 40000)
    add_eth(IP(src=s, dst=d, id=90 + i) / UDP(sport=sp, dport=dp) / bytes(80 + i), s, d,
            udp=(sp, dp))
    # the tunnelled packet it carries, seen decrypted on tun0
    ts, td, tsp, tdp, flags = ((TUN, TUN_PEER, 41000, 80, 0x18) if out
                               else (TUN_PEER, TUN, 80, 41000, 0x10))
    cap.add(IP(src=ts, dst=td, id=100 + i) / TCP(sport=tsp, dport=tdp, flags=flags, seq=i)
            / (b"GET / HTTP/1.0\r\n\r\n" if flags == 0x18 else b""),
            "ip:tcp", iface=TUN_IF, src=ts, dst=td, tcp=(tsp, tdp, flags))
cap.add(IPv6(src=TUN6, dst=TUN6_PEER) / UDP(sport=5353, dport=5353) / bytes(20),
        "ipv6:udp", iface=TUN_IF, src=TUN6, dst=TUN6_PEER, udp=(5353, 5353))
add_eth(IP(src=LAN, dst=GW, id=99) / UDP(sport=68, dport=67) / bytes(240), LAN, GW, udp=(68, 67))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
