"""The pcapng writer: files that tshark and netsift's own reader read back exactly."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from netsift.capture import CaptureReader
from netsift.pcapng_writer import PcapngWriter

TS0 = 1_700_000_000_123_456_789


def _frames() -> list[bytes]:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return [
        bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S")),
        bytes(eth / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=53, dport=5353) / (b"x" * 3)),
    ]


def _write(path: str) -> None:
    frames = _frames()
    raw_ip = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2))
    with PcapngWriter.open(path, application="netsift test") as w:
        e = w.add_interface(1, 262144, name="veth0", bpf_filter="tcp or udp")
        r = w.add_interface(101, 65535, name="tun0", description="raw IP")
        w.write_packet(e, TS0, frames[0], comment="first <packet>")
        w.write_packet(r, TS0 + 1_000, raw_ip)
        w.write_packet(e, TS0 + 2_000, frames[1][:34], wirelen=len(frames[1]))
        w.write_stats(e, TS0 + 3_000, received=5, dropped=2, os_dropped=1, start_ns=TS0, end_ns=TS0 + 3_000)


def test_reader_reads_back_everything(tmp_path):
    path = str(tmp_path / "w.pcapng")
    _write(path)
    reader = CaptureReader(path)
    with reader:
        batches = list(reader.batches())
    assert reader.info.format == "pcapng"
    assert not reader.warnings
    n = sum(len(b) for b in batches)
    assert n == 3
    b = batches[0]
    assert [int(t) for t in b.ts_ns] == [TS0, TS0 + 1_000, TS0 + 2_000]
    assert [int(x) for x in b.link_type] == [1, 101, 1]
    assert [int(x) for x in b.iface] == [0, 1, 0]
    assert b.packet_bytes(0) == _frames()[0]
    assert [int(x) for x in b.caplen][2] == 34
    assert [int(x) for x in b.wirelen][2] == len(_frames()[1])
    itf = reader.info.interfaces[0]
    assert itf.dropped_by_interface == 2 and itf.dropped_by_os == 1


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_reads_it(tmp_path):
    path = str(tmp_path / "w.pcapng")
    _write(path)
    out = subprocess.run(
        ["tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len",
         "-e", "frame.cap_len", "-e", "frame.interface_name", "-e", "frame.comment", "-e", "ip.src"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()
    rows = [line.split("\t") for line in out]
    assert [r[0] for r in rows] == ["1700000000.123456789", "1700000000.123457789", "1700000000.123458789"]
    assert rows[0][3] == "veth0" and rows[1][3] == "tun0"
    assert rows[0][4] == "first <packet>"
    assert rows[2][1] == str(len(_frames()[1])) and rows[2][2] == "34"
    assert [r[5] for r in rows] == ["10.0.0.1", "192.0.2.1", "10.0.0.2"]
    stats = subprocess.run(["capinfos", "-M", path], capture_output=True, text=True, timeout=60)
    assert "Number of packets" in stats.stdout


def test_unknown_interface_is_refused(tmp_path):
    with PcapngWriter.open(str(tmp_path / "x.pcapng")) as w, pytest.raises(ValueError):
        w.write_packet(0, 0, b"")
