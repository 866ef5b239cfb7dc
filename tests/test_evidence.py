"""Evidence captures per finding (netsift.evidence.write_evidence): the right frames, byte for byte."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, rdpcap, wrpcap

import netsift
import netsift.evidence as evidence
from netsift.capture import CaptureReader
from netsift.detect import detector_classes
from netsift.errors import OutputError
from netsift.evidence import write_evidence

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.pcap"
HAVE_TSHARK = shutil.which("tshark") is not None
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")

MAC_A, MAC_B, MAC_C, MAC_D = "02:00:00:00:0a:01", "02:00:00:00:0a:02", "02:00:00:00:0a:03", "02:00:00:00:0a:04"
T0 = 1_700_100_000.0

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


# --- crafted traffic -----------------------------------------------------------------------------

def _dns_pair(i: int, t: float) -> list[Any]:
    """A DNS lookup and its answer between two other hosts (background traffic)."""
    name = f"host{i}.example.org"
    q = (Ether(src=MAC_C, dst=MAC_D) / IP(src="192.0.2.10", dst="192.0.2.53")
         / UDP(sport=30000 + i, dport=53) / DNS(id=i, rd=1, qd=DNSQR(qname=name)))
    r = (Ether(src=MAC_D, dst=MAC_C) / IP(src="192.0.2.53", dst="192.0.2.10")
         / UDP(sport=53, dport=30000 + i)
         / DNS(id=i, qr=1, aa=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=f"198.51.100.{i % 250 + 1}")))
    q.time, r.time = t, t + 0.002
    return [q, r]


def _probe(port: int, t: float, src: str, dst: str) -> list[Any]:
    """A SYN from ``src`` to a closed port of ``dst`` and its RST/ACK answer."""
    syn = Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / TCP(sport=41000 + port, dport=port, flags="S",
                                                                  seq=1000 + port)
    rst = Ether(src=MAC_B, dst=MAC_A) / IP(src=dst, dst=src) / TCP(sport=port, dport=41000 + port, flags="RA",
                                                                  seq=0, ack=1001 + port)
    syn.time, rst.time = t, t + 0.0004
    return [syn, rst]


def scan_capture(ports: range, t0: float = T0, src: str = "198.51.100.66", dst: str = "203.0.113.7") -> list[Any]:
    """Background DNS with a vertical TCP scan of ``ports`` of ``dst`` by ``src`` woven into it."""
    packets: list[Any] = []
    for k, port in enumerate(ports):
        if k % 3 == 0:
            packets += _dns_pair(k, t0 + k * 0.05)
        packets += _probe(port, t0 + k * 0.05 + 0.01, src, dst)
    return packets


def write_pcap(path: Path, packets: list[Any]) -> str:
    wrpcap(str(path), packets)
    return str(path)


def analyze(*paths: str) -> dict[str, Any]:
    return netsift.analyze(list(paths)).data


def finding(report: dict[str, Any], code: str) -> dict[str, Any]:
    items = [f for f in report["findings"]["items"] if f["code"] == code]
    assert len(items) == 1, [f["code"] for f in report["findings"]["items"]]
    return items[0]


# --- independent readers -------------------------------------------------------------------------

def scapy_frames(path: str) -> dict[int, bytes]:
    """Frame number → bytes, read by Scapy (not netsift's reader)."""
    return {i: bytes(p) for i, p in enumerate(rdpcap(path), start=1)}


def netsift_records(path: str) -> list[dict[str, Any]]:
    """Every record of an evidence capture, read back by netsift's reader."""
    out = []
    reader = CaptureReader(path)
    with reader:
        for b in reader.batches():
            for i in range(len(b)):
                itf = reader.info.interfaces[int(b.iface[i])]
                out.append({"data": b.packet_bytes(i), "ts_ns": int(b.ts_ns[i]), "wirelen": int(b.wirelen[i]),
                            "link_type": int(b.link_type[i]), "iface": itf.name})
    assert not reader.warnings
    return out


def source_records(path: str) -> dict[int, dict[str, Any]]:
    """Frame number → record of a source capture, read by netsift's reader."""
    out = {}
    reader = CaptureReader(path)
    with reader:
        for b in reader.batches():
            for i in range(len(b)):
                out[b.first_frame + i] = {"data": b.packet_bytes(i), "ts_ns": int(b.ts_ns[i]),
                                          "wirelen": int(b.wirelen[i]), "link_type": int(b.link_type[i])}
    return out


def tshark_json(path: str, frames: list[int] | None = None) -> list[dict[str, Any]]:
    """tshark's view of ``path`` (optionally only some frame numbers): number, raw bytes, comments."""
    cmd = ["tshark", "-r", path, "-T", "json", "-x"]
    if frames is not None:
        cmd += ["-Y", " || ".join(f"frame.number == {n}" for n in frames)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = []
    for pkt in json.loads(proc.stdout):
        layers = pkt["_source"]["layers"]
        comments = layers.get("pkt_comment", {}).get("frame.comment")
        if isinstance(comments, str):
            comments = [comments]
        out.append({
            "number": int(layers["frame"]["frame.number"]),
            "raw": bytes.fromhex(layers["frame_raw"][0]),
            "comments": comments or [],
            "interface": layers["frame"].get("frame.interface_id_tree", {}).get("frame.interface_name"),
        })
    return out


def comment_ref(comment: str) -> tuple[str, int]:
    """(file label, frame number) named by an evidence comment."""
    assert comment.startswith("netsift evidence: "), comment
    label, rest = comment[len("netsift evidence: "):].split(" frame ", 1)
    return label, int(rest.split(" ", 1)[0])


def check_evidence(summary: dict[str, Any], out: Path, report: dict[str, Any]) -> None:
    """Every finding's pcapng holds exactly its frames, byte for byte, in capture order."""
    sources: dict[str, dict[int, dict[str, Any]]] = {}
    by_id = {e["finding"]: e for e in summary["files"]}
    for item in report["findings"]["items"]:
        entry = by_id[item["id"]]
        wanted = [(ref["file"], n) for ref in item["packets"] for n in ref["frames"]]
        if not wanted:
            assert entry["pcap"] is None
            continue
        records = netsift_records(str(out / entry["pcap"]))
        assert len(records) == len(wanted) == entry["packets"]
        assert entry["missing"] == 0
        for (path, n), rec in zip(wanted, records, strict=True):
            src = sources.setdefault(path, source_records(path))[n]
            assert rec["data"] == src["data"]
            assert rec["ts_ns"] == src["ts_ns"]
            assert rec["wirelen"] == src["wirelen"]
            assert rec["link_type"] == src["link_type"]


# --- tests ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_report() -> dict[str, Any]:
    return analyze(os.path.relpath(SAMPLE))


def test_sample_scan_evidence_is_exactly_the_finding_frames(sample_report, tmp_path):
    item = finding(sample_report, "tcp_vertical_scan")
    frames = item["packets"][0]["frames"]
    assert len(frames) >= 15
    summary = write_evidence(sample_report, str(tmp_path / "ev"))
    out = tmp_path / "ev"
    entry = summary["files"][0]
    assert entry["pcap"] == f"medium-tcp_vertical_scan-{item['id']}.pcapng"
    assert entry["json"] == f"medium-tcp_vertical_scan-{item['id']}.json"
    assert (entry["packets"], entry["missing"]) == (len(frames), 0)
    check_evidence(summary, out, sample_report)
    # and against Scapy's reading of the original capture
    original = scapy_frames(str(SAMPLE))
    records = netsift_records(str(out / entry["pcap"]))
    assert [r["data"] for r in records] == [original[n] for n in frames]
    # every probe the finding names is a SYN from its source to its destination
    for rec in records:
        pkt = Ether(rec["data"])
        assert pkt[IP].src == item["sources"][0] and pkt[IP].dst == item["destinations"][0]
        assert pkt[TCP].flags == "S"
    assert sorted(os.listdir(out)) == sorted(["index.json", entry["pcap"], entry["json"]])


@needs_tshark
def test_tshark_reads_evidence_with_comments_and_agrees_on_frame_numbers(sample_report, tmp_path):
    summary = write_evidence(sample_report, str(tmp_path))
    entry = summary["files"][0]
    item = finding(sample_report, "tcp_vertical_scan")
    frames = item["packets"][0]["frames"]
    shown = tshark_json(str(tmp_path / entry["pcap"]))
    assert [p["number"] for p in shown] == list(range(1, len(frames) + 1))
    refs = [comment_ref(p["comments"][0]) for p in shown]
    assert refs == [("sample.pcap", n) for n in frames]
    assert all(p["comments"][0].endswith(f"(finding tcp_vertical_scan {item['id']})") for p in shown)
    assert {p["interface"] for p in shown} == {"sample.pcap"}
    # Wireshark's frame.number N of the original is the packet the comment names
    original = {p["number"]: p["raw"] for p in tshark_json(str(SAMPLE), frames)}
    assert sorted(original) == frames
    assert [p["raw"] for p in shown] == [original[n] for n in frames]


def test_json_stub_and_index_round_trip(sample_report, tmp_path):
    summary = write_evidence(sample_report, str(tmp_path))
    item = finding(sample_report, "tcp_vertical_scan")
    entry = summary["files"][0]
    stub = json.loads((tmp_path / entry["json"]).read_text(encoding="utf-8"))
    assert stub.pop("evidence_pcap") == entry["pcap"]
    assert stub.pop("source_files") == [ref["file"] for ref in item["packets"]]
    assert stub == item
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert index == summary
    assert index["findings"] == len(sample_report["findings"]["items"])
    assert index["packets"] == sum(e["packets"] for e in index["files"]) == len(item["packets"][0]["frames"])
    assert index["source_files"] == [str(os.path.relpath(SAMPLE))]
    # no temporary files left behind
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_gzip_input(tmp_path, sample_report):
    gz = tmp_path / "sample.pcap.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    report = analyze(str(gz))
    item = finding(report, "tcp_vertical_scan")
    summary = write_evidence(report, str(tmp_path / "ev"))
    check_evidence(summary, tmp_path / "ev", report)
    plain = netsift_records(str(tmp_path / "ev" / summary["files"][0]["pcap"]))
    original = scapy_frames(str(SAMPLE))
    assert [r["data"] for r in plain] == [original[n] for n in item["packets"][0]["frames"]]


def test_crafted_scan_among_background_traffic(tmp_path):
    packets = scan_capture(range(20, 45))
    path = write_pcap(tmp_path / "scan.pcap", packets)
    report = analyze(path)
    item = finding(report, "tcp_vertical_scan")
    frames = item["packets"][0]["frames"]
    # the probes are exactly the SYNs of the crafted scan (by Scapy's numbering of what was written)
    syns = [i for i, p in enumerate(packets, start=1) if TCP in p and p[TCP].flags == "S"]
    assert set(frames) <= set(syns) and len(frames) == min(len(syns), 50)
    summary = write_evidence(report, str(tmp_path / "ev"))
    check_evidence(summary, tmp_path / "ev", report)
    records = netsift_records(str(tmp_path / "ev" / summary["files"][0]["pcap"]))
    assert [r["data"] for r in records] == [bytes(packets[n - 1]) for n in frames]


def test_one_read_per_capture_for_all_findings(tmp_path, monkeypatch):
    # two scans from different sources in one file: two findings, one reading of the file
    first = scan_capture(range(20, 40))
    second = scan_capture(range(100, 120), T0 + 5, src="198.51.100.77")
    path = write_pcap(tmp_path / "two.pcap", first + second)
    report = analyze(path)
    scans = [f for f in report["findings"]["items"] if f["code"] == "tcp_vertical_scan"]
    assert {f["sources"][0] for f in scans} == {"198.51.100.66", "198.51.100.77"}
    opened: list[str] = []

    class Counting(CaptureReader):
        def __init__(self, p: str, *args: Any, **kwargs: Any) -> None:
            opened.append(p)
            super().__init__(p, *args, **kwargs)

    monkeypatch.setattr(evidence, "CaptureReader", Counting)
    summary = write_evidence(report, str(tmp_path / "ev"))
    assert opened == [path]
    assert summary["pcaps"] == len([f for f in report["findings"]["items"] if f["packets"]]) >= 2
    check_evidence(summary, tmp_path / "ev", report)


def test_fragment_evidence_frames_are_the_fragments(tmp_path):
    frag = detector_classes()["fragmentation"]
    samples = {s.name: s for s in frag.samples()}
    packets = samples["teardrop"].build()
    path = write_pcap(tmp_path / "teardrop.pcap", packets)
    report = analyze(path)
    item = finding(report, "teardrop")
    frames = item["packets"][0]["frames"]
    summary = write_evidence(report, str(tmp_path / "ev"))
    check_evidence(summary, tmp_path / "ev", report)
    records = netsift_records(str(tmp_path / "ev" / summary["files"][0]["pcap"]))
    assert len(records) == len(frames) >= 2
    for rec in records:
        ip = Ether(rec["data"])[IP] if rec["link_type"] == 1 else IP(rec["data"])
        assert ip.flags.MF or ip.frag > 0  # every evidence packet is a fragment


def test_finding_without_packets_gets_only_json(tmp_path):
    cq = detector_classes()["capture_quality"]
    samples = {s.name: s for s in cq.samples()}
    truncated = write_pcap(tmp_path / "snaplen64.pcap", samples["snaplen_64"].build())
    scan = write_pcap(tmp_path / "scan.pcap", scan_capture(range(20, 40)))
    report = analyze(truncated, scan)
    empty = finding(report, "capture_truncated")
    assert empty["packets"] == []
    summary = write_evidence(report, str(tmp_path / "ev"))
    entry = next(e for e in summary["files"] if e["finding"] == empty["id"])
    assert entry["pcap"] is None and entry["packets"] == 0 and entry["missing"] == 0
    assert "no evidence packets" in entry["note"]
    stub = json.loads((tmp_path / "ev" / entry["json"]).read_text(encoding="utf-8"))
    assert stub["evidence_pcap"] is None and stub["source_files"] == []
    names = os.listdir(tmp_path / "ev")
    assert not [n for n in names if n.startswith(f"low-capture_truncated-{empty['id']}") and n.endswith(".pcapng")]
    assert entry["json"] in names
    # the scan in the other file still gets its capture
    check_evidence(summary, tmp_path / "ev", report)


def test_two_captures_one_finding_frames_refer_to_each(tmp_path):
    # one scan split across two captures of the same link, analyzed together
    packets = scan_capture(range(20, 50))
    half = len(packets) // 2
    a = write_pcap(tmp_path / "part1.pcap", packets[:half])
    b = write_pcap(tmp_path / "part2.pcap", packets[half:])
    report = analyze(a, b)
    item = finding(report, "tcp_vertical_scan")
    assert [ref["file"] for ref in item["packets"]] == [a, b]
    summary = write_evidence(report, str(tmp_path / "ev"))
    entry = summary["files"][0]
    assert entry["source_files"] == [a, b] == summary["source_files"]
    check_evidence(summary, tmp_path / "ev", report)
    records = netsift_records(str(tmp_path / "ev" / entry["pcap"]))
    assert [r["iface"] for r in records] == (["part1.pcap"] * len(item["packets"][0]["frames"])
                                             + ["part2.pcap"] * len(item["packets"][1]["frames"]))
    expected = [scapy_frames(ref["file"])[n] for ref in item["packets"] for n in ref["frames"]]
    assert [r["data"] for r in records] == expected
    if HAVE_TSHARK:
        shown = tshark_json(str(tmp_path / "ev" / entry["pcap"]))
        refs = [comment_ref(p["comments"][0]) for p in shown]
        assert refs == [(os.path.basename(ref["file"]), n) for ref in item["packets"] for n in ref["frames"]]
        assert [p["interface"] for p in shown] == [r["iface"] for r in records]


def test_pcapng_input_with_several_interfaces_and_link_types(tmp_path):
    # the scan's SYNs alternate between an Ethernet interface and a raw-IPv4 tunnel;
    # the answers and background DNS come in on a second Ethernet interface
    path = str(tmp_path / "mixed.pcapng")
    written: list[Any] = []
    syns = 0
    for p in scan_capture(range(20, 44)):
        is_syn = TCP in p and p[TCP].flags == "S"
        syns += is_syn
        if is_syn and syns % 2 == 0:
            p2 = p[IP].copy()
            p2.time = p.time
            p2.sniffed_on = "tun0"
            p = p2
        else:
            p.sniffed_on = "eth0" if is_syn else "eth1"
        written.append(p)
    w = PcapNgWriter(path)
    for p in written:
        w.write(p)
    w.close()
    report = analyze(path)
    assert {lt["link_type"] for lt in report["inputs"][0]["link_types"]} >= {1, 228}
    item = finding(report, "tcp_vertical_scan")
    frames = item["packets"][0]["frames"]
    kinds = {Ether in written[n - 1] for n in frames}
    assert kinds == {True, False}  # evidence on both link types
    summary = write_evidence(report, str(tmp_path / "ev"))
    check_evidence(summary, tmp_path / "ev", report)
    records = netsift_records(str(tmp_path / "ev" / summary["files"][0]["pcap"]))
    assert [r["data"] for r in records] == [bytes(written[n - 1]) for n in frames]
    assert [r["link_type"] for r in records] == [1 if Ether in written[n - 1] else 228 for n in frames]
    if HAVE_TSHARK:
        shown = tshark_json(str(tmp_path / "ev" / summary["files"][0]["pcap"]))
        assert [p["raw"] for p in shown] == [r["data"] for r in records]
        assert [comment_ref(p["comments"][0]) for p in shown] == [("mixed.pcapng", n) for n in frames]
        original = {p["number"]: p["raw"] for p in tshark_json(path, frames)}
        assert [original[n] for n in frames] == [r["data"] for r in records]


def test_missing_input_file_counts_missing_frames_and_warns(tmp_path):
    a = write_pcap(tmp_path / "a.pcap", scan_capture(range(20, 40)))
    b = write_pcap(tmp_path / "b.pcap", scan_capture(range(1000, 1020), T0 + 60, src="198.51.100.88"))
    report = analyze(a, b)
    frames_b = sum(len(ref["frames"]) for f in report["findings"]["items"] for ref in f["packets"]
                   if ref["file"] == b)
    assert frames_b >= 15
    before = write_evidence(report, str(tmp_path / "ev"))  # while b.pcap is still there
    assert before["missing"] == 0 and before["pcaps"] == 2
    os.unlink(b)
    lines: list[str] = []
    summary = write_evidence(report, str(tmp_path / "ev"), warn=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"{b}: ") and f"{frames_b:,} of {frames_b:,}" in lines[0]
    assert summary["warnings"] == lines
    assert summary["missing"] == frames_b
    by_file = {tuple(e["source_files"]): e for e in summary["files"]}
    lost = by_file[(b,)]
    assert lost["pcap"] is None and lost["packets"] == 0 and lost["missing"] == frames_b
    assert "none of the finding's evidence frames" in lost["note"]
    kept = by_file[(a,)]
    assert kept["missing"] == 0 and kept["packets"] > 0
    assert (tmp_path / "ev" / lost["json"]).exists()
    # the earlier run's capture for that finding is gone: it would contradict the stub
    assert sorted(os.listdir(tmp_path / "ev")) == sorted(["index.json", kept["pcap"], kept["json"], lost["json"]])
    assert len(netsift_records(str(tmp_path / "ev" / kept["pcap"]))) == kept["packets"]


def test_shortened_input_file_counts_the_frames_past_its_end(tmp_path):
    packets = scan_capture(range(20, 45))
    path = write_pcap(tmp_path / "scan.pcap", packets)
    report = analyze(path)
    frames = finding(report, "tcp_vertical_scan")["packets"][0]["frames"]
    cut = frames[len(frames) // 2]  # keep the frames before this one
    write_pcap(tmp_path / "scan.pcap", packets[: cut - 1])
    lines: list[str] = []
    summary = write_evidence(report, str(tmp_path / "ev"), warn=lines.append)
    entry = summary["files"][0]
    kept = [n for n in frames if n < cut]
    assert (entry["packets"], entry["missing"]) == (len(kept), len(frames) - len(kept))
    assert entry["note"] == f"{len(frames) - len(kept)} of {len(frames)} evidence frames could not be read"
    assert len(lines) == 1 and f"has {cut - 1:,} frames" in lines[0] and "changed since the analysis" in lines[0]
    records = netsift_records(str(tmp_path / "ev" / entry["pcap"]))
    assert [r["data"] for r in records] == [bytes(packets[n - 1]) for n in kept]


def test_unwritable_evidence_dir_is_an_output_error(sample_report, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    with pytest.raises(OutputError, match="cannot be created"):
        write_evidence(sample_report, str(blocker))
    with pytest.raises(OutputError, match="cannot be created"):
        write_evidence(sample_report, str(blocker / "evidence"))
    # a missing directory is created, with its parents
    summary = write_evidence(sample_report, str(tmp_path / "x" / "y"))
    assert (tmp_path / "x" / "y" / "index.json").exists() and summary["dir"] == str(tmp_path / "x" / "y")


def test_names_are_sanitised_and_unique(tmp_path):
    path = write_pcap(tmp_path / "scan.pcap", scan_capture(range(20, 40)))
    report = analyze(path)
    item = finding(report, "tcp_vertical_scan")
    odd = json.loads(json.dumps(report))
    twin = dict(item, code="TCP Vertical/Scan ../x", severity="High")
    odd["findings"]["items"] = [twin, dict(twin)]
    summary = write_evidence(odd, str(tmp_path / "ev"))
    names = [e["pcap"] for e in summary["files"]]
    assert names == [f"high-tcp_vertical_scan_x-{item['id']}.pcapng", f"high-tcp_vertical_scan_x-{item['id']}-2.pcapng"]
    assert all(set(n[: -len(".pcapng")]) <= set("abcdefghijklmnopqrstuvwxyz0123456789_-") for n in names)
    assert sorted(os.listdir(tmp_path / "ev")) == sorted(
        ["index.json"] + names + [e["json"] for e in summary["files"]])


def test_report_without_findings(tmp_path):
    path = write_pcap(tmp_path / "dns.pcap", [p for i in range(10) for p in _dns_pair(i, T0 + i)])
    report = analyze(path)
    assert report["findings"]["items"] == []
    summary = write_evidence(report, str(tmp_path / "ev"))
    assert summary["findings"] == 0 and summary["files"] == [] and summary["source_files"] == []
    assert os.listdir(tmp_path / "ev") == ["index.json"]
