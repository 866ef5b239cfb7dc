"""Write examples/sample.pcap: a small, realistic office-LAN capture for the quick start.

Run from the repository root with the project's environment:

    .venv/bin/python examples/sample.pcap.py

Deterministic (fixed seed and timestamps).  Contents: DNS lookups and answers,
HTTP requests, TLS ClientHello-shaped handshakes on 443, a VLAN-tagged trunk
segment, IPv6 traffic, ICMP echo and a port-unreachable error, an IP
datagram split into fragments, ARP, and a short SYN sweep from one host.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

OUT = Path(__file__).with_name("sample.pcap")
START = 1_700_000_000.0
rng = random.Random(7)

GATEWAY_MAC = "00:00:5e:00:53:01"
CLIENTS = [f"192.0.2.{i}" for i in range(10, 16)]
DNS_SERVER = "192.0.2.53"
WEB = ["198.51.100.20", "198.51.100.21", "203.0.113.80"]
SITES = ["intranet.example", "mail.example", "updates.example.net", "cdn.example.org"]


def mac(ip: str) -> str:
    last = int(ip.rsplit(".", 1)[1])
    return f"02:00:00:00:00:{last:02x}"


def tls_client_hello(sni: str) -> bytes:
    """A minimal TLS 1.2 record carrying a ClientHello with an SNI extension."""
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = (
        b"\x03\x03" + bytes(rng.getrandbits(8) for _ in range(32)) + b"\x00"
        + struct.pack("!H", 4) + b"\x13\x01\xc0\x2f" + b"\x01\x00"
        + struct.pack("!H", len(sni_ext)) + sni_ext
    )
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tcp_session(client: str, server: str, dport: int, request: bytes, response: bytes,
                t: float) -> list[tuple[float, Packet]]:
    sport = rng.randint(40000, 60000)
    cs, ss = rng.getrandbits(32), rng.getrandbits(32)
    c2s = Ether(src=mac(client), dst=GATEWAY_MAC) / IP(src=client, dst=server)
    s2c = Ether(src=GATEWAY_MAC, dst=mac(client)) / IP(src=server, dst=client)
    rtt = rng.uniform(0.004, 0.03)
    pkts = [
        (t, c2s / TCP(sport=sport, dport=dport, flags="S", seq=cs)),
        (t + rtt, s2c / TCP(sport=dport, dport=sport, flags="SA", seq=ss, ack=cs + 1)),
        (t + rtt + 0.0002, c2s / TCP(sport=sport, dport=dport, flags="A", seq=cs + 1, ack=ss + 1)),
        (t + rtt + 0.0004, c2s / TCP(sport=sport, dport=dport, flags="PA", seq=cs + 1, ack=ss + 1)
         / Raw(request)),
        (t + 2 * rtt, s2c / TCP(sport=dport, dport=sport, flags="PA", seq=ss + 1,
                                ack=cs + 1 + len(request)) / Raw(response)),
        (t + 2 * rtt + 0.001, c2s / TCP(sport=sport, dport=dport, flags="FA",
                                        seq=cs + 1 + len(request), ack=ss + 1 + len(response))),
        (t + 3 * rtt, s2c / TCP(sport=dport, dport=sport, flags="FA", seq=ss + 1 + len(response),
                                ack=cs + 2 + len(request))),
        (t + 3 * rtt + 0.0002, c2s / TCP(sport=sport, dport=dport, flags="A",
                                         seq=cs + 2 + len(request), ack=ss + 2 + len(response))),
    ]
    return pkts


def build() -> list[tuple[float, Packet]]:
    out: list[tuple[float, Packet]] = []
    t = START
    for i in range(40):
        client = rng.choice(CLIENTS)
        site = rng.choice(SITES)
        server = rng.choice(WEB)
        qid = rng.getrandbits(16)
        q = Ether(src=mac(client), dst=GATEWAY_MAC) / IP(src=client, dst=DNS_SERVER) / UDP(
            sport=rng.randint(1024, 65535), dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=site))
        a = Ether(src=GATEWAY_MAC, dst=mac(client)) / IP(src=DNS_SERVER, dst=client) / UDP(
            sport=53, dport=q[UDP].sport) / DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=site),
                                                an=DNSRR(rrname=site, rdata=server, ttl=300))
        out += [(t, q), (t + 0.002, a)]
        if i % 3 == 0:
            req = f"GET /index{i}.html HTTP/1.1\r\nHost: {site}\r\nUser-Agent: sample/1.0\r\n\r\n"
            resp = b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + b"x" * 600
            out += tcp_session(client, server, 80, req.encode(), resp, t + 0.01)
        else:
            out += tcp_session(client, server, 443, tls_client_hello(site), b"\x16\x03\x03" +
                               bytes(rng.getrandbits(8) for _ in range(900)), t + 0.01)
        t += rng.uniform(0.2, 0.8)

    # A VLAN-tagged trunk segment (802.1Q, VLAN 20) carrying syslog.
    for _ in range(12):
        out.append((t, Ether(src="02:00:00:00:01:01", dst=GATEWAY_MAC) / Dot1Q(vlan=20)
                    / IP(src="192.0.2.200", dst="192.0.2.5") / UDP(sport=514, dport=514)
                    / Raw(b"<134>app: login ok user=alice")))
        t += 0.05
    # IPv6: ICMPv6 echo and a TCP session.
    for k in range(4):
        out.append((t, Ether(src=mac(CLIENTS[0]), dst=GATEWAY_MAC)
                    / IPv6(src="2001:db8::10", dst="2001:db8::1") / ICMPv6EchoRequest(seq=k)))
        t += 0.01
    sess = tcp_session("192.0.2.11", "198.51.100.21", 22, b"SSH-2.0-OpenSSH_9.6\r\n",
                       b"SSH-2.0-OpenSSH_9.2\r\n", t)
    for ts, p in sess:
        ip4 = p[IP]
        out.append((ts, Ether(src=p.src, dst=p.dst) / IPv6(
            src="2001:db8::11" if ip4.src == "192.0.2.11" else "2001:db8::21",
            dst="2001:db8::21" if ip4.src == "192.0.2.11" else "2001:db8::11") / ip4.payload))
    t += 0.5
    # ICMP: echo, and a port-unreachable quoting the UDP datagram that caused it.
    probe = IP(src="192.0.2.12", dst="198.51.100.20") / UDP(sport=33434, dport=33435) / Raw(b"p" * 16)
    out.append((t, Ether(src=mac("192.0.2.12"), dst=GATEWAY_MAC) / probe))
    out.append((t + 0.01, Ether(src=GATEWAY_MAC, dst=mac("192.0.2.12"))
                / IP(src="198.51.100.20", dst="192.0.2.12") / ICMP(type=3, code=3) / probe))
    for k in range(3):
        out.append((t + 0.1 * k, Ether(src=mac("192.0.2.13"), dst=GATEWAY_MAC)
                    / IP(src="192.0.2.13", dst="198.51.100.20") / ICMP(seq=k) / Raw(b"a" * 56)))
    t += 1
    # A large UDP datagram split into three fragments.
    big = IP(src="192.0.2.14", dst="198.51.100.20", id=4242) / UDP(sport=5000, dport=5001) / Raw(
        bytes(rng.getrandbits(8) for _ in range(3000)))
    for k, frag in enumerate(fragment(big, fragsize=1200)):
        out.append((t + 0.0001 * k, Ether(src=mac("192.0.2.14"), dst=GATEWAY_MAC) / frag))
    t += 0.2
    # ARP who-has / is-at.
    out.append((t, Ether(src=mac("192.0.2.15"), dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, psrc="192.0.2.15", pdst="192.0.2.1", hwsrc=mac("192.0.2.15"))))
    out.append((t + 0.001, Ether(src=GATEWAY_MAC, dst=mac("192.0.2.15"))
                / ARP(op=2, psrc="192.0.2.1", pdst="192.0.2.15", hwsrc=GATEWAY_MAC)))
    t += 0.5
    # A short SYN sweep of one server's low ports from one host, answered by RSTs.
    for port in range(20, 60):
        syn = Ether(src=mac("192.0.2.99"), dst=GATEWAY_MAC) / IP(src="192.0.2.99", dst=WEB[2]) / TCP(
            sport=61000, dport=port, flags="S", seq=1000)
        rst = Ether(src=GATEWAY_MAC, dst=mac("192.0.2.99")) / IP(src=WEB[2], dst="192.0.2.99") / TCP(
            sport=port, dport=61000, flags="RA", seq=0, ack=1001)
        out += [(t, syn), (t + 0.0005, rst)]
        t += 0.002
    return out


def main() -> None:
    packets = []
    for ts, pkt in sorted(build(), key=lambda x: x[0]):
        if IP in pkt and pkt[IP].id == 1:  # Scapy's default: real stacks vary the IP ID
            pkt[IP].id = rng.getrandbits(16)
        pkt.time = ts
        packets.append(pkt)
    wrpcap(str(OUT), packets)
    print(f"wrote {OUT} ({len(packets)} packets)")


if __name__ == "__main__":
    main()
