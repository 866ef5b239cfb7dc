"""Sampled checksum verification: exact on crafted packets, equal to tshark's on real ones."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

import netsift
from netsift.capture import CaptureReader
from netsift.checksums import eligible, verify
from netsift.decode_fast import decode

TSHARK = shutil.which("tshark")
# Explicit MACs: Scapy would otherwise resolve the destination MAC on the network.
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _write(path: Path, packets: list[Packet]) -> Path:
    for i, p in enumerate(packets):
        p.time = 1_700_000_000 + i * 0.001
    wrpcap(str(path), packets)
    return path


def _flags(path: Path) -> dict[int, tuple[bool, bool]]:
    """frame number -> (bad IPv4 header, bad TCP/UDP) for every checked frame."""
    out: dict[int, tuple[bool, bool]] = {}
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            c = decode(batch)
            rows, bad_ip, bad_l4 = verify(c, batch, eligible(c))
            for r, a, b in zip(rows.tolist(), bad_ip.tolist(), bad_l4.tolist(), strict=True):
                out[int(c.frame[r])] = (a, b)
    return out


def _packets() -> list[Packet]:
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return [
        e / IP(src="192.0.2.1", dst="192.0.2.2") / TCP(sport=1234, dport=80, flags="S", options=[("MSS", 1460)]),
        e / IP(src="192.0.2.2", dst="192.0.2.1", options=b"\x01\x01\x01\x00") / TCP(sport=80, dport=1234, flags="SA"),
        e / IP(src="192.0.2.1", dst="192.0.2.3") / UDP(sport=5000, dport=53) / Raw(b"odd-length!"),
        e / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1, dport=2) / Raw(b"x" * 33),
        e / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2) / Raw(b"y" * 10),
        e / IP(src="192.0.2.1", dst="192.0.2.9") / UDP(sport=7, dport=9, chksum=0) / Raw(b"no checksum"),
    ]


def test_correct_checksums_pass(tmp_path: Path) -> None:
    flags = _flags(_write(tmp_path / "ok.pcap", _packets()))
    # Frame 6 (UDP over IPv4 with checksum 0: "not computed") is not checked.
    assert sorted(flags) == [1, 2, 3, 4, 5]
    assert all(v == (False, False) for v in flags.values())


def test_each_corrupted_field_is_found(tmp_path: Path) -> None:
    pkts = [p.__class__(bytes(p)) for p in _packets()]  # freeze computed checksums
    pkts[0][TCP].chksum ^= 0x0101
    pkts[1][IP].chksum ^= 0x0001
    pkts[2][UDP].chksum ^= 0x8000
    pkts[4][UDP].chksum = (pkts[4][UDP].chksum + 1) & 0xFFFF or 1
    flags = _flags(_write(tmp_path / "bad.pcap", pkts))
    assert flags == {1: (False, True), 2: (True, False), 3: (False, True), 4: (False, False),
                     5: (False, True)}


def _exchange(n: int, zero_from: str | None) -> list[Packet]:
    out = []
    for i in range(n):
        for src, dst, sport, dport in (("192.0.2.10", "198.51.100.1", 40000, 443),
                                       ("198.51.100.1", "192.0.2.10", 443, 40000)):
            p = ETH / IP(src=src, dst=dst, id=i) / TCP(sport=sport, dport=dport, seq=i, flags="A")
            p = p.__class__(bytes(p))
            if src == zero_from:
                p[TCP].chksum = 0  # what a capture on the sending host sees with TX offload
            out.append(p)
    return out


def test_offload_on_the_capture_host_is_named(tmp_path: Path) -> None:
    report = netsift.analyze(str(_write(tmp_path / "offload.pcap", _exchange(30, "192.0.2.10"))))
    sums = report["quality"]["checksums"]
    assert sums["offload_suspected"] is True
    assert sums["offloading_senders"] == ["192.0.2.10"]
    assert sums["bad_transport"] == 30 and sums["sampled"] == 60
    codes = {r["code"]: r["level"] for r in report["quality"]["reasons"]}
    assert codes == {"checksum_offload": "info"}
    assert report["quality"]["verdict"] == "good"


def test_scattered_bad_checksums_degrade(tmp_path: Path) -> None:
    pkts = []
    for i in range(30):
        p = ETH / IP(src=f"203.0.113.{i}", dst="192.0.2.1") / UDP(sport=9, dport=9) / Raw(b"z")
        p = p.__class__(bytes(p))
        if i % 3 == 0:
            p[UDP].chksum ^= 0x00FF
        pkts.append(p)
    report = netsift.analyze(str(_write(tmp_path / "corrupt.pcap", pkts)))
    codes = {r["code"]: r for r in report["quality"]["reasons"]}
    assert "checksum_offload" not in codes
    assert codes["bad_checksums"]["level"] == "degraded"
    assert codes["bad_checksums"]["evidence"]["sampled"] == 30
    assert report["quality"]["checksums"]["bad_transport"] == 10


@pytest.mark.corpus
@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_checksum_verdicts_match_tshark(corpus_dir: Path) -> None:
    names = [
        "chrissanders-packets/inconsistent_printer.pcapng",
        "chrissanders-packets/arppoison.pcapng",
        "chrissanders-packets/http_ip4and6.pcapng",
        "lwerdna-filesamples/simple_http_sll2.pcap",
        "dpkt/examples/data/http.pcap",
    ]
    compared = 0
    for name in names:
        path = corpus_dir / name
        if not path.exists():
            continue
        proc = subprocess.run(
            [str(TSHARK), "-r", str(path), "-n", "-o", "ip.check_checksum:TRUE",
             "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
             "-T", "fields", "-e", "frame.number", "-e", "ip.checksum.status",
             "-e", "tcp.checksum.status", "-e", "udp.checksum.status"],
            capture_output=True, text=True, timeout=120, check=True,
        )
        theirs = {}
        for line in proc.stdout.splitlines():
            frame, ip_s, tcp_s, udp_s = ([*line.split("\t"), "", "", ""])[:4]
            # status 0 = bad, 1 = good; take the outer header's value
            ip_bad = ip_s.split(",")[0] == "0"
            l4_bad = (tcp_s or udp_s).split(",")[0] == "0"
            theirs[int(frame)] = (ip_bad, l4_bad)
        ours = _flags(path)
        assert ours, name
        for frame, flags in ours.items():
            assert theirs[frame] == flags, (name, frame, flags, theirs[frame])
            compared += 1
    assert compared > 200
