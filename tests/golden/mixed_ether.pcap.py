"""Golden capture: mixed Ethernet traffic -> mixed_ether.pcap + mixed_ether.expected.json.

Untagged, 802.1Q and QinQ (802.1ad outer + 802.1Q inner) frames; IPv4 with
options; IPv6 with hop-by-hop + destination-options headers; a TCP handshake,
data and FIN exchange; an ECN-setup SYN (0xC2, RFC 3168 §6.1.1); DNS query and
answer; ICMP and ICMPv6 echo; ICMP/ICMPv6 port-unreachable errors quoting an
IP/UDP packet (the quoted packet is not traffic: its addresses and ports must
not show up); an IPv4 and an IPv6 UDP datagram in two fragments each (only the
first carries the UDP header; non-first fragments stop at ip/ipv6); ARP; an
802.3/LLC spanning-tree BPDU; frames under 60 bytes padded by Ethernet, whose
IP total length, not the frame, bounds the payload; pre-standard QinQ (TPID
0x9100) and a tagged ARP; IP-in-IP and 6in4 tunnels (the inner header is not
traffic); LLDP and an unregistered EtherType; the NS flag bit.

Run: python mixed_ether.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import ARP, LLC, STP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.packet import Packet, Padding, Raw
from scapy.utils import checksum
from truth import Capture, Interface, output_dir

MAC_A, MAC_B, MAC_R = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:fe"
A, B, DNS_SRV, ROUTER, FAR = "10.0.0.1", "10.0.0.2", "10.0.0.53", "192.0.2.1", "198.51.100.7"
MCAST = "224.0.0.22"
A6, B6, R6, FAR6 = "2001:db8::1", "2001:db8::2", "2001:db8::fe", "2001:db8::99"
ETH_MIN = 60  # IEEE 802.3 minimum frame without FCS: shorter frames are padded


def eth(src: str = MAC_A, dst: str = MAC_B) -> Ether:
    return Ether(src=src, dst=dst)


def padded(pkt: Packet) -> Packet:
    """Append Ethernet padding up to the 60-byte minimum (the NIC does this on the wire)."""
    short = ETH_MIN - len(pkt)
    return pkt / Padding(b"\0" * short) if short > 0 else pkt


cap = Capture(
    name="mixed_ether.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=1, snaplen=65535)],
)

# --- TCP: handshake, one request/response, FIN exchange (untagged) -------------
sa, sb, web = 40000, 1000, 80
req = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
tcp_exchange = [  # (from A?, flags, seq, ack, payload)
    (True, 0x02, sa, 0, b""),
    (False, 0x12, sb, sa + 1, b""),
    (True, 0x10, sa + 1, sb + 1, b""),
    (True, 0x18, sa + 1, sb + 1, req),
    (False, 0x18, sb + 1, sa + 1 + len(req), resp),
    (True, 0x11, sa + 1 + len(req), sb + 1 + len(resp), b""),
    (False, 0x11, sb + 1 + len(resp), sa + 2 + len(req), b""),
    (True, 0x10, sa + 2 + len(req), sb + 2 + len(resp), b""),
]
for ip_id, (from_a, flags, seq, ack, data) in enumerate(tcp_exchange, 100):
    s, d = (A, B) if from_a else (B, A)
    sp, dp = (41000, web) if from_a else (web, 41000)
    pkt = eth() / IP(src=s, dst=d, id=ip_id) / TCP(sport=sp, dport=dp, flags=flags, seq=seq,
                                                    ack=ack, window=64240) / Raw(data)
    cap.add(padded(pkt), "ip:tcp", src=s, dst=d, tcp=(sp, dp, flags))

# --- ECN-setup SYN / SYN-ACK inside QinQ (802.1ad S-tag 100, 802.1Q C-tag 20) ---
for s, d, sp, dp, flags in ((A, B, 41001, 443, 0xC2), (B, A, 443, 41001, 0x52)):
    pkt = (eth() / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IP(src=s, dst=d, id=200 + flags)
           / TCP(sport=sp, dport=dp, flags=flags, seq=7, ack=0 if flags == 0xC2 else 8))
    cap.add(padded(pkt), "vlan:vlan:ip:tcp", src=s, dst=d, tcp=(sp, dp, flags))

# --- DNS on 802.1Q VLAN 10 --------------------------------------------------------
q = DNS(id=0x4242, rd=1, qd=DNSQR(qname="example.com", qtype="A"))
ans = DNS(id=0x4242, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.com", qtype="A"),
          an=DNSRR(rrname="example.com", type="A", ttl=300, rdata="93.184.216.34"))
for s, d, sp, dp, msg in ((A, DNS_SRV, 53000, 53, q), (DNS_SRV, A, 53, 53000, ans)):
    pkt = eth() / Dot1Q(vlan=10) / IP(src=s, dst=d, id=300 + sp % 7) / UDP(sport=sp, dport=dp) / msg
    cap.add(padded(pkt), "vlan:ip:udp", src=s, dst=d, udp=(sp, dp))

# --- ICMP echo --------------------------------------------------------------------
for s, d, icmp_type in ((A, B, 8), (B, A, 0)):
    pkt = eth() / IP(src=s, dst=d, id=400 + icmp_type) / ICMP(type=icmp_type, id=7, seq=1) / Raw(
        bytes(range(32)))
    cap.add(pkt, "ip:icmp", src=s, dst=d)

# --- IPv4 options: IGMPv2 report with Router Alert, UDP with Record Route ---------
igmp = bytearray(b"\x16\x00\x00\x00" + bytes(map(int, MCAST.split("."))))  # RFC 2236 report
igmp[2:4] = checksum(bytes(igmp)).to_bytes(2, "big")
pkt = (Ether(src=MAC_A, dst="01:00:5e:00:00:16")
       / IP(src=A, dst=MCAST, ttl=1, proto=2, id=500, options=[IPOption_Router_Alert()])
       / Raw(bytes(igmp)))
cap.add(padded(pkt), "ip:igmp", src=A, dst=MCAST)
pkt = (eth() / IP(src=A, dst=DNS_SRV, id=501, options=[IPOption_RR(routers=[ROUTER, B])])
       / UDP(sport=5000, dport=5001) / Raw(b"options!"))
cap.add(padded(pkt), "ip:udp", src=A, dst=DNS_SRV, udp=(5000, 5001))

# --- ICMP errors quoting IP/UDP: only the outer header is traffic -----------------
quoted = IP(src=A, dst=FAR, id=600, ttl=1) / UDP(sport=40002, dport=33434) / Raw(b"traceroute")
pkt = eth(MAC_R, MAC_A) / IP(src=ROUTER, dst=A, id=601) / ICMP(type=3, code=3) / quoted
cap.add(pkt, "ip:icmp", src=ROUTER, dst=A)
quoted6 = IPv6(src=A6, dst=FAR6, hlim=1) / UDP(sport=40003, dport=33435) / Raw(b"trace6")
pkt = eth(MAC_R, MAC_A) / IPv6(src=R6, dst=A6) / ICMPv6DestUnreach(code=4) / quoted6
cap.add(pkt, "ipv6:icmpv6", src=R6, dst=A6)

# --- ICMPv6 echo --------------------------------------------------------------------
cap.add(eth() / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=9, seq=1, data=b"ping6"),
        "ipv6:icmpv6", src=A6, dst=B6)
cap.add(eth(MAC_B, MAC_A) / IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=9, seq=1, data=b"ping6"),
        "ipv6:icmpv6", src=B6, dst=A6)

# --- IPv6 with hop-by-hop and destination-options headers -------------------------
pkt = (eth() / IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
       / UDP(sport=6000, dport=6001) / Raw(b"extension headers"))
cap.add(pkt, "ipv6:udp", src=A6, dst=B6, udp=(6000, 6001))

# --- IPv4 UDP datagram in two fragments ---------------------------------------------
dgram = bytes(IP(src=A, dst=B) / UDP(sport=7000, dport=7001) / Raw(bytes(range(256)) * 4))[20:]
first, rest = dgram[:504], dgram[504:]  # 504 = 63 * 8: fragment offsets count 8-octet units
pkt = eth() / IP(src=A, dst=B, id=0x1234, flags="MF", frag=0, proto=17) / Raw(first)
cap.add(pkt, "ip:udp", src=A, dst=B, udp=(7000, 7001), fragment=True)
pkt = eth() / IP(src=A, dst=B, id=0x1234, frag=len(first) // 8, proto=17) / Raw(rest)
cap.add(pkt, "ip", src=A, dst=B, fragment=True)

# --- IPv6 UDP datagram in two fragments (RFC 8200 §4.5) -----------------------------
dgram6 = bytes(IPv6(src=A6, dst=B6) / UDP(sport=8000, dport=8001) / Raw(bytes(range(200)) * 3))[40:]
first, rest = dgram6[:304], dgram6[304:]
pkt = (eth() / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0xABCD)
       / Raw(first))
cap.add(pkt, "ipv6:udp", src=A6, dst=B6, udp=(8000, 8001), fragment=True)
pkt = (eth() / IPv6(src=A6, dst=B6)
       / IPv6ExtHdrFragment(nh=17, offset=len(first) // 8, m=0, id=0xABCD) / Raw(rest))
cap.add(pkt, "ipv6", src=A6, dst=B6, fragment=True)

# --- ARP and an 802.3/LLC spanning-tree BPDU (no IP) --------------------------------
cap.add(padded(Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc=A, pdst=B)),
        "arp")
cap.add(padded(eth(MAC_B, MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=B, hwdst=MAC_A, pdst=A)), "arp")
cap.add(padded(Dot3(src=MAC_R, dst="01:80:c2:00:00:00") / LLC() / STP(rootmac=MAC_R,
                                                                      bridgemac=MAC_R)), "llc")

# --- a one-byte TCP segment and an empty UDP datagram, both padded to 60 bytes -------
pkt = eth() / IP(src=A, dst=B, id=700) / TCP(sport=41002, dport=23, flags=0x18, seq=1, ack=1) / Raw(
    b"x")
cap.add(padded(pkt), "ip:tcp", src=A, dst=B, tcp=(41002, 23, 0x18))
pkt = eth() / IP(src=A, dst=B, id=701) / UDP(sport=9000, dport=9001)
cap.add(padded(pkt), "ip:udp", src=A, dst=B, udp=(9000, 9001))

# --- more tag stacks: pre-standard QinQ (TPID 0x9100) and a tagged ARP ---------------
pkt = (Ether(src=MAC_A, dst=MAC_B, type=0x9100) / Dot1Q(vlan=300) / Dot1Q(vlan=30)
       / IP(src=A, dst=B, id=800) / UDP(sport=9100, dport=9101) / Raw(b"qinq"))
cap.add(padded(pkt), "vlan:vlan:ip:udp", src=A, dst=B, udp=(9100, 9101))
cap.add(padded(Ether(src=MAC_B, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=10)
               / ARP(op=1, hwsrc=MAC_B, psrc=B, pdst=DNS_SRV)), "vlan:arp")

# --- tunnels stop at the tunnel protocol: the inner header is not traffic ---------------
inner = IP(src="172.31.0.1", dst="172.31.0.2", id=900) / UDP(sport=4789, dport=4790) / Raw(b"in")
cap.add(eth() / IP(src=A, dst=B, id=901, proto=4) / inner, "ip:ip", src=A, dst=B)  # IP-in-IP
inner6 = IPv6(src="2001:db8:66::1", dst="2001:db8:66::2") / UDP(sport=4791, dport=4792)
cap.add(eth() / IP(src=A, dst=B, id=902, proto=41) / inner6, "ip:ipv6", src=A, dst=B)  # 6in4

# --- EtherTypes without IP: LLDP and an unregistered one ----------------------------
lldp = bytes.fromhex("0207040200000000fe") + bytes.fromhex("040703020000000000fe") + b"\0\0"
cap.add(padded(Ether(src=MAC_R, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(lldp)), "lldp")
cap.add(padded(Ether(src=MAC_R, dst=MAC_A, type=0x88B5) / Raw(b"local experimental")),
        "ethertype-0x88b5")

# --- the ninth TCP flag bit: NS (RFC 3540, historic) with ACK -----------------------
pkt = eth() / IP(src=B, dst=A, id=903) / TCP(sport=web, dport=41000, flags=0x110, seq=1, ack=1)
cap.add(padded(pkt), "ip:tcp", src=B, dst=A, tcp=(web, 41000, 0x110))

if __name__ == "__main__":
    cap.write(output_dir(__file__))
