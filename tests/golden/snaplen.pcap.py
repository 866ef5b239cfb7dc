"""Golden capture: snaplen 68 -> snaplen.pcap + snaplen.expected.json.

Every record longer than 68 bytes is cut (caplen 68 < wire length), and the
script records what each cut hid, by netsift's classification (the lowest
layer hidden, stats._hidden_layers): DNS answers over UDP and TCP and in a
first fragment (DNS messages), TLS records on 443 (TLS records), HTTP on 80
(HTTP messages), other TCP payload, a UDP/443 datagram (TLS is a TCP rule), a
non-first fragment and ESP (other payload), IPv6+TCP cut inside the TCP
header and a SYN cut inside its TCP options (transport headers), IPv4 cut
inside 40 bytes of options and IPv6 cut inside its extension headers
(network headers: verdict "poor").  A pure ACK followed by an Ethernet
trailer is cut in the trailer only: the IP total length says the TCP payload
is empty, so nothing is hidden.

Run: python snaplen.pcap.py [OUTDIR]  (or tests/golden/regen.py for all).
"""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, PadN
from scapy.layers.l2 import Ether
from scapy.packet import Padding, Raw
from truth import Capture, Interface, output_dir

SNAPLEN = 68
C, RES, WEB, OTHER = "192.168.1.10", "192.168.1.1", "203.0.113.80", "198.51.100.9"
C6, WEB6 = "2001:db8:1::10", "2001:db8:1::80"


def eth() -> Ether:
    return Ether(src="02:00:00:00:01:0a", dst="02:00:00:00:01:01")


cap = Capture(
    name="snaplen.pcap",
    about=__doc__.split("\n\n")[1].replace("\n", " "),
    interfaces=[Interface(link_type=1, snaplen=SNAPLEN)],
    step_ns=2_000_000,
)

# --- DNS: a short query fits; answers are cut in the DNS message -------------------
query = DNS(id=1, rd=1, qd=DNSQR(qname="a.io"))
cap.add(eth() / IP(src=C, dst=RES, id=1) / UDP(sport=50000, dport=53) / query,
        "ip:udp", src=C, dst=RES, udp=(50000, 53))
answer = DNS(id=2, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com"),
             an=[DNSRR(rrname="www.example.com", ttl=60, rdata=f"93.184.216.{i}")
                 for i in range(3)])
cap.add(eth() / IP(src=RES, dst=C, id=2) / UDP(sport=53, dport=50000) / answer,
        "ip:udp", src=RES, dst=C, udp=(53, 50000), hidden="dns_messages")
answer6 = DNS(id=3, qr=1, qd=DNSQR(qname="www.example.com", qtype="AAAA"),
              an=DNSRR(rrname="www.example.com", type="AAAA", rdata="2001:db8::80"))
cap.add(eth() / IPv6(src=WEB6, dst=C6) / UDP(sport=53, dport=50010) / answer6,
        "ipv6:udp", src=WEB6, dst=C6, udp=(53, 50010), hidden="dns_messages")
wire_msg = bytes(answer)
cap.add(eth() / IP(src=RES, dst=C, id=3)
        / TCP(sport=53, dport=50006, flags="PA", seq=1, ack=1)
        / Raw(len(wire_msg).to_bytes(2, "big") + wire_msg),  # RFC 1035 §4.2.2 length prefix
        "ip:tcp", src=RES, dst=C, tcp=(53, 50006, 0x18), hidden="dns_messages")

# --- TLS records on 443 (a ClientHello-like record and a ServerHello-like one) -------
for s, d, sp, dp, hs_type in ((C, WEB, 50001, 443, 1), (WEB, C, 443, 50001, 2)):
    body = bytes([hs_type]) + (200).to_bytes(3, "big") + bytes(200)
    record = b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body  # RFC 8446 §5.1
    cap.add(eth() / IP(src=s, dst=d, id=10 + hs_type)
            / TCP(sport=sp, dport=dp, flags="PA", seq=100, ack=100) / Raw(record),
            "ip:tcp", src=s, dst=d, tcp=(sp, dp, 0x18), hidden="tls_records")

# --- HTTP on 80 ----------------------------------------------------------------------
http = (
    (C, WEB, 50002, 80, b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n"),
    (WEB, C, 80, 50002, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello"),
)
for i, (s, d, sp, dp, msg) in enumerate(http):
    cap.add(eth() / IP(src=s, dst=d, id=20 + i) / TCP(sport=sp, dport=dp, flags="PA", seq=5, ack=5)
            / Raw(msg), "ip:tcp", src=s, dst=d, tcp=(sp, dp, 0x18), hidden="http_messages")

# --- other payload: TCP to port 5000, and UDP to 443 (QUIC is not a TLS record) ------
cap.add(eth() / IP(src=C, dst=OTHER, id=30) / TCP(sport=50003, dport=5000, flags="PA")
        / Raw(b"\xab" * 100), "ip:tcp", src=C, dst=OTHER, tcp=(50003, 5000, 0x18),
        hidden="other_payload")
cap.add(eth() / IP(src=C, dst=WEB, id=31) / UDP(sport=50004, dport=443) / Raw(b"\xc3" * 300),
        "ip:udp", src=C, dst=WEB, udp=(50004, 443), hidden="other_payload")

# --- a pure ACK whose frame carries a 20-byte trailer after the IP datagram ----------
cap.add(eth() / IP(src=C, dst=WEB, id=32) / TCP(sport=50002, dport=80, flags="A", seq=6, ack=6)
        / Padding(b"\xee" * 20), "ip:tcp", src=C, dst=WEB, tcp=(50002, 80, 0x10), hidden="none")

# --- IPv6 + TCP cut inside the TCP header (14 of 20 bytes captured) -------------------
for i, (s, d, sp, dp) in enumerate(((C6, WEB6, 50005, 443), (WEB6, C6, 443, 50005))):
    cap.add(eth() / IPv6(src=s, dst=d) / TCP(sport=sp, dport=dp, flags="PA", seq=i, ack=i)
            / Raw(b"\x17\x03\x03" + bytes(97)),
            "ipv6:tcp", src=s, dst=d, hidden="transport_headers",
            anomalies=("truncated_transport_header",))

# --- IPv4 with a 60-byte header (40 bytes of Record Route) cut inside the options -----
# Decoding stops at the cut IP header (docs/statistics.md, and tshark's io,phs): no
# transport node, no ports, although the protocol field (6) was captured.
rr = IPOption_RR(routers=[f"10.9.0.{i}" for i in range(1, 10)])  # 3 + 9*4 = 39 bytes (+ EOL)
cap.add(eth() / IP(src=C, dst=WEB, id=40, options=[rr]) / TCP(sport=50007, dport=80, flags="S"),
        "ip", src=C, dst=WEB, hidden="network_headers", anomalies=("truncated_ip_header",))

# --- IPv6 whose extension-header chain is cut: hop-by-hop (8 bytes) fits, the 16-byte
# destination-options header does not.  The path stops at ipv6: the transport is unknown
# (and destination options, next header 60, are part of the IPv6 header, not a transport).
cap.add(eth() / IPv6(src=C6, dst=WEB6) / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt(options=[PadN(optdata=bytes(12))]) / UDP(sport=50008, dport=9)
        / Raw(bytes(20)),
        "ipv6", src=C6, dst=WEB6, hidden="network_headers",
        anomalies=("truncated_ip_header",))

# --- a SYN whose 40-byte TCP header (20 bytes of options) is cut inside the options.
# The fixed header is captured (ports, flags counted); the options are part of the TCP
# header (RFC 9293 §3.1, Data Offset), and a SYN carries no payload to hide.
syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
cap.add(eth() / IP(src=C, dst=WEB, id=50) / TCP(sport=50009, dport=443, flags="S",
                                                 options=syn_opts),
        "ip:tcp", src=C, dst=WEB, tcp=(50009, 443, 0x02), hidden="transport_headers")

# --- IP payload cut where no transport header is decoded: a non-first fragment and ESP
dgram = bytes(IP(src=RES, dst=C) / UDP(sport=53, dport=50011) / Raw(bytes(400)))[20:]
cap.add(eth() / IP(src=RES, dst=C, id=60, flags="MF", proto=17) / Raw(dgram[:208]),
        "ip:udp", src=RES, dst=C, udp=(53, 50011), fragment=True, hidden="dns_messages")
cap.add(eth() / IP(src=RES, dst=C, id=60, frag=26, proto=17) / Raw(dgram[208:]),
        "ip", src=RES, dst=C, fragment=True, hidden="other_payload")
cap.add(eth() / IP(src=C, dst=OTHER, id=61, proto=50) / Raw(bytes(8) + bytes(range(100))),
        "ip:esp", src=C, dst=OTHER, hidden="other_payload")

if __name__ == "__main__":
    cap.write(output_dir(__file__))
