"""The scan detector: port scans and address sweeps from failed attempts (Zeek's rule),
nmap's passive port states, its thresholds, merge and the corpus."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from scapy.utils import wrpcap

import netsift.pipeline as pipeline
from netsift.detect import Detectors, FinishContext, detector_classes
from netsift.detect.config import config_from_dict
from netsift.detect.scan import (
    _T0,
    ScanDetector,
    ScanThresholds,
    _build_busy_client,
    _probe,
    _tcp,
)
from netsift.errors import UsageError
from netsift.pipeline import analyze

SCANNER = "10.0.0.5"


def scan_findings(path: Path, config_path: str | None = None) -> list[dict[str, Any]]:
    report = analyze(str(path), config_path=config_path)
    return [f for f in report.data["findings"]["items"] if f["detector"] == "scan"]


def write(tmp_path: Path, packets: list[Any], name: str = "c.pcap") -> Path:
    path = tmp_path / name
    wrpcap(str(path), packets)
    return path


def vertical(n_ports: int, answers: dict[int, str] | None = None, step: float = 0.01,
             src: str = SCANNER, dst: str = "10.0.0.9") -> list[Any]:  # fmt: skip
    out: list[Any] = []
    t = _T0
    for i, port in enumerate(range(1000, 1000 + n_ports)):
        _probe(out, src, dst, 40000 + i, port, (answers or {}).get(port, "closed"), t)
        t += step
    return out


def horizontal(n_hosts: int, port: int = 445, answer: str = "silent", step: float = 0.01) -> list[Any]:
    out: list[Any] = []
    t = _T0
    for i in range(n_hosts):
        _probe(out, SCANNER, f"10.1.{i // 250}.{1 + i % 250}", 40000 + i, port, answer, t)
        t += step
    return out


# --- crafted captures ---------------------------------------------------------------


def test_syn_scan_port_states_follow_nmap(tmp_path: Path) -> None:
    answers = {1003: "open", 1007: "open", 1010: "silent", 1011: "silent", 1012: "silent"}
    findings = scan_findings(write(tmp_path, vertical(30, answers)))
    assert [(f["code"], f["severity"]) for f in findings] == [("tcp_vertical_scan", "medium")]
    f = findings[0]
    ev = f["evidence"]
    assert ev["states"] == {"open": 2, "closed": 25, "filtered": 3}
    assert ev["open"] == [1003, 1007]
    assert ev["ports_probed"] == 30 and ev["most_in_window"] == 30
    assert ev["destination_port_range"] == [1000, 1029]
    assert f["sources"] == [SCANNER] and f["destinations"] == ["10.0.0.9"]
    assert f["technique"]["id"] == "T1046"
    assert f["thresholds"]["vertical_min_ports"] == 15
    frames = f["packets"][0]["frames"]
    assert frames == sorted(frames) and len(frames) == 30 and frames[0] == 1
    assert f["packets_total"] == 30
    assert "30 ports of 10.0.0.9" in f["summary"]


def test_vertical_threshold_edge(tmp_path: Path) -> None:
    assert scan_findings(write(tmp_path, vertical(14), "a.pcap")) == []
    assert [f["code"] for f in scan_findings(write(tmp_path, vertical(15), "b.pcap"))] == ["tcp_vertical_scan"]


def test_breadth_sets_severity(tmp_path: Path) -> None:
    assert [f["severity"] for f in scan_findings(write(tmp_path, vertical(100), "a.pcap"))] == ["high"]
    assert [f["severity"] for f in scan_findings(write(tmp_path, vertical(99), "b.pcap"))] == ["medium"]


def test_address_sweep(tmp_path: Path) -> None:
    assert scan_findings(write(tmp_path, horizontal(24), "a.pcap")) == []
    findings = scan_findings(write(tmp_path, horizontal(25), "b.pcap"))
    assert [(f["code"], f["severity"]) for f in findings] == [("tcp_horizontal_scan", "medium")]
    assert findings[0]["evidence"]["states"] == {"open": 0, "closed": 0, "filtered": 25}
    assert findings[0]["destinations_total"] == 25
    assert findings[0]["evidence"]["targets"][0]["port"] == 445
    big = scan_findings(write(tmp_path, horizontal(256, answer="closed"), "c.pcap"))
    assert [(f["code"], f["severity"]) for f in big] == [("tcp_horizontal_scan", "high")]
    assert len(big[0]["destinations"]) == 20 and big[0]["destinations_total"] == 256


def test_slow_scan_outside_the_window_is_not_counted(tmp_path: Path) -> None:
    # 20 ports, one every 30 s: at most 11 in any 300 s window
    path = write(tmp_path, vertical(20, step=30.0))
    assert scan_findings(path) == []
    toml = tmp_path / "netsift.toml"
    toml.write_text("[detectors.scan]\nwindow_s = 600.0\n")
    findings = scan_findings(path, config_path=str(toml))
    assert [f["code"] for f in findings] == ["tcp_vertical_scan"]
    assert findings[0]["evidence"]["most_in_window"] == 20


def test_connect_scan_counts_and_completed_connections_do_not(tmp_path: Path) -> None:
    out: list[Any] = []
    t = _T0
    for i, port in enumerate(range(2000, 2020)):
        sport = 41000 + i
        out.append(_tcp(SCANNER, "10.0.0.9", sport, port, "S", t, seq=10))
        out.append(_tcp("10.0.0.9", SCANNER, port, sport, "SA", t + 0.001, seq=50, ack=11, back=True))
        out.append(_tcp(SCANNER, "10.0.0.9", sport, port, "A", t + 0.002, seq=11, ack=51))
        if i < 15:  # connect scan: the scanner resets the established connection
            out.append(_tcp(SCANNER, "10.0.0.9", sport, port, "RA", t + 0.003, seq=11, ack=51))
        else:  # an orderly close without data: not a failed attempt (Zeek)
            out.append(_tcp(SCANNER, "10.0.0.9", sport, port, "FA", t + 0.003, seq=11, ack=51))
            out.append(_tcp("10.0.0.9", SCANNER, port, sport, "FA", t + 0.004, seq=51, ack=12, back=True))
            out.append(_tcp(SCANNER, "10.0.0.9", sport, port, "A", t + 0.005, seq=12, ack=52))
        t += 0.01
    findings = scan_findings(write(tmp_path, out))
    assert [f["code"] for f in findings] == ["tcp_vertical_scan"]
    assert findings[0]["evidence"]["states"] == {"open": 15, "closed": 0, "filtered": 0}
    # one port fewer scanned by RST: below the threshold
    short = [p for p in out if not (p["TCP"].dport == 2014 or p["TCP"].sport == 2014)]
    assert scan_findings(write(tmp_path, short, "b.pcap")) == []


def test_busy_client_and_data_connections_are_quiet(tmp_path: Path) -> None:
    assert scan_findings(write(tmp_path, _build_busy_client())) == []


def test_syn_flood_to_one_port_is_not_a_scan(tmp_path: Path) -> None:
    rng = random.Random(7)
    out = [_tcp("203.0.113.9", "10.0.0.80", rng.randrange(1024, 65536), 80, "S", _T0 + i * 0.001,
                seq=rng.randrange(1 << 32)) for i in range(3000)]  # fmt: skip
    assert scan_findings(write(tmp_path, out)) == []


def test_udp_scan_traceroute_and_multicast(tmp_path: Path) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    def udp(dst: str, dport: int, t: float) -> Any:
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=SCANNER, dst=dst) / UDP(
            sport=50000, dport=dport)
        p.time = t
        return p

    probes = [udp("10.0.0.9", 100 + i, _T0 + i) for i in range(20)]
    findings = scan_findings(write(tmp_path, probes, "a.pcap"))
    assert [(f["code"], f["severity"]) for f in findings] == [("udp_vertical_scan", "low")]
    assert findings[0]["evidence"]["states"] == {"open|filtered": 20}
    traceroute = [udp("10.0.0.9", 33434 + i, _T0 + i * 0.1) for i in range(90)]
    multicast = [udp(f"239.1.1.{i}", 5000, _T0 + i * 0.1) for i in range(40)]
    assert scan_findings(write(tmp_path, traceroute + multicast, "b.pcap")) == []
    toml = tmp_path / "netsift.toml"
    toml.write_text("[detectors.scan]\nudp = false\n")
    assert scan_findings(tmp_path / "a.pcap", config_path=str(toml)) == []


def test_icmp_unreachables_are_shown_beside_the_scan(tmp_path: Path) -> None:
    from netsift.detect.scan import _build_udp_scan

    findings = scan_findings(write(tmp_path, _build_udp_scan()))
    assert findings[0]["evidence"]["icmp_unreachable_to_source"] == {"icmp 3/3": 40}


def test_allow_sources_and_caps(tmp_path: Path) -> None:
    a = vertical(20, src="10.0.0.5")
    b = vertical(20, src="10.0.0.6")
    path = write(tmp_path, sorted(a + b, key=lambda p: p.time))
    assert sorted(f["sources"] for f in scan_findings(path)) == [["10.0.0.5"], ["10.0.0.6"]]
    toml = tmp_path / "allow.toml"
    toml.write_text('[detectors.scan]\nallow_sources = ["10.0.0.4/31"]\n')
    assert [f["sources"] for f in scan_findings(path, config_path=str(toml))] == [["10.0.0.6"]]
    toml.write_text("[detectors.scan]\nmax_probes = 30\n")
    findings = scan_findings(path, config_path=str(toml))
    assert sum(f["evidence"]["probes"] for f in findings) == 30
    for f in findings:
        cap = f["evidence"]["cap_reached"]
        assert cap["max_probes"] == 30 and cap["probes_dropped_flows"] == 10


def test_threshold_validation() -> None:
    with pytest.raises(ValueError, match="vertical_min_ports"):
        ScanThresholds(vertical_min_ports=1)
    with pytest.raises(ValueError, match="window_s"):
        ScanThresholds(window_s=0.0)
    with pytest.raises(ValueError, match="udp_ignore_ports"):
        ScanThresholds(udp_ignore_ports=(5,))
    with pytest.raises(ValueError, match="allow_sources"):
        ScanThresholds(allow_sources=("not-an-ip",))
    with pytest.raises(UsageError, match=r"detectors\.scan"):
        config_from_dict({"detectors": {"scan": {"horizontal_high_hosts": 3}}}, detector_classes())


# --- samples (netsift selftest) ------------------------------------------------------


# --- config through Detectors ---------------------------------------------------------


class _Recorder(ScanDetector):
    seen: ClassVar[list[Any]] = []

    def flows(self, records: list[Any]) -> None:
        _Recorder.seen.extend(records)
        super().flows(records)


def recorded_flows(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[Any]:
    _Recorder.seen = []
    monkeypatch.setattr(pipeline.Detectors, "from_file",
                        classmethod(lambda cls, p: Detectors(classes={"scan": _Recorder})))  # fmt: skip
    analyze(str(path))
    return list(_Recorder.seen)


def run(records: list[Any], thresholds: ScanThresholds | None = None) -> list[dict[str, Any]]:
    d = ScanDetector(thresholds)
    d.flows(records)
    return [f.to_json() for f in d.finish(FinishContext({}, None, []))]


def test_config_override_changes_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = recorded_flows(monkeypatch, write(tmp_path, vertical(10)))
    classes = {"scan": ScanDetector}
    quiet = Detectors(config_from_dict({}, classes), classes)
    quiet.flows(records)
    assert quiet.finish(FinishContext({}, None, [])) == []
    loud = Detectors(config_from_dict({"detectors": {"scan": {"vertical_min_ports": 10}}}, classes), classes)
    loud.flows(records)
    assert [f.code for f in loud.finish(FinishContext({}, None, []))] == ["tcp_vertical_scan"]


# --- merge -----------------------------------------------------------------------------


def test_merge_of_a_split_run_equals_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from netsift.detect.scan import _build_scans, _build_udp_scan

    packets = _build_scans() + _build_udp_scan() + vertical(40, {1001: "open"}, src="10.0.0.77")
    packets.sort(key=lambda p: p.time)
    records = recorded_flows(monkeypatch, write(tmp_path, packets))
    assert len(records) > 300
    whole = run(records)
    assert {f["code"] for f in whole} == {"tcp_vertical_scan", "tcp_horizontal_scan", "udp_vertical_scan"}
    n = len(records)
    for chosen in (set(range(n // 2)), set(range(0, n, 2))):
        split = [r for i, r in enumerate(records) if i in chosen]
        rest = [r for i, r in enumerate(records) if i not in chosen]
        a, b = ScanDetector(), ScanDetector()
        a.flows(split)
        b.flows(rest)
        a.merge(b)
        assert [f.to_json() for f in a.finish(FinishContext({}, None, []))] == whole
        b2, a2 = ScanDetector(), ScanDetector()  # the other way round
        b2.flows(rest)
        a2.flows(split)
        b2.merge(a2)
        assert [f.to_json() for f in b2.finish(FinishContext({}, None, []))] == whole


# --- the corpus --------------------------------------------------------------------------

#: Ordinary traffic: the scan detector must report nothing high or critical here.
NEGATIVE_GLOBS = (
    "chrissanders-packets/*.pcap*",
    "arkime/tests/pcap/*.pcap",
    "foxio-ja4/pcap/*",
    "zeek/testing/btest/Traces/*.pcap",
    "zeek/testing/btest/Traces/tcp/*.pcap",
)


@pytest.mark.corpus
def test_real_scan_capture_states(corpus_dir: Path, tmp_path: Path) -> None:
    """nDPI's tcp_scan.pcapng: nmap connect probes to 80/443 (open), SYNs to 445/3389 refused
    (closed, nDPI: "Connection refused (server)"), and FIN/NULL/Xmas probes (not counted).
    It has only four SYN probes, below Zeek's 15; with the threshold at 4 it must fire."""
    path = corpus_dir / "ndpi/tests/cfgs/default/pcap/tcp_scan.pcapng"
    assert scan_findings(path) == []
    toml = tmp_path / "low.toml"
    toml.write_text("[detectors.scan]\nvertical_min_ports = 4\n")
    findings = scan_findings(path, config_path=str(toml))
    assert [f["code"] for f in findings] == ["tcp_vertical_scan"]
    ev = findings[0]["evidence"]
    assert findings[0]["sources"] == ["192.168.1.178"] and findings[0]["destinations"] == ["192.168.1.2"]
    assert ev["states"] == {"open": 2, "closed": 2, "filtered": 0}
    assert ev["open"] == [80, 443]


@pytest.mark.corpus
def test_corpus_ordinary_traffic_has_no_high_finding(corpus_dir: Path) -> None:
    paths = sorted({p for g in NEGATIVE_GLOBS for p in corpus_dir.glob(g)
                    if p.is_file() and p.stat().st_size < 4_000_000})  # fmt: skip
    assert len(paths) > 150
    started = time.monotonic()
    table: list[tuple[str, str]] = []
    bad = []
    for p in paths:
        try:
            findings = scan_findings(p)
        except Exception:  # unreadable captures are other tests' business
            continue
        if findings:
            table.append((str(p.relative_to(corpus_dir)), ", ".join(f"{f['code']}:{f['severity']}" for f in findings)))
        bad += [(p.name, f["summary"]) for f in findings if f["severity"] in ("high", "critical")]
    print(f"\n{len(paths)} ordinary captures in {time.monotonic() - started:.1f} s; scan findings:")
    for name, codes in table or [("(none)", "")]:
        print(f"  {name} -> {codes}")
    assert bad == []
