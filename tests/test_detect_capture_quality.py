"""The capture_quality detector: capture defects that blind the other detectors, as findings."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

import netsift.pipeline
from netsift.detect import Detectors, FinishContext, detector_classes
from netsift.detect.capture_quality import CaptureQuality, CaptureQualityThresholds, http_session
from netsift.detect.config import config_from_dict
from netsift.errors import UsageError
from netsift.pipeline import analyze
from pcapgen import pcap_header, pcap_record

T0 = 1_700_000_000.0


def findings(path: Path, config_path: str | None = None) -> list[dict[str, Any]]:
    report = analyze(str(path), config_path=config_path)
    return [f for f in report["findings"]["items"] if f["detector"] == "capture_quality"]


def by_code(got: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in got}


def write(tmp_path: Path, pkts: list[Any], name: str = "c.pcap") -> Path:
    path = tmp_path / name
    wrpcap(str(path), sorted(pkts, key=lambda p: float(p.time)))
    return path


def sessions(n: int, one_sided: bool = False, start: int = 0, seed: int = 5) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(start, start + n):
        out += http_session(f"10.30.0.{rng.randrange(2, 250)}", "10.30.1.80", 31000 + i, T0 + i, one_sided)
    return out


def write_truncated(tmp_path: Path, pkts: list[Any], snaplen: int) -> Path:
    """A classic pcap whose records are cut at ``snaplen`` (caplen < wire length)."""
    raw = pcap_header(snaplen=snaplen)
    for p in sorted(pkts, key=lambda p: float(p.time)):
        data = bytes(p)
        sec = int(p.time)
        raw += pcap_record(data[:snaplen], ts_sec=sec, ts_frac=int((float(p.time) - sec) * 1e6), wirelen=len(data))
    path = tmp_path / "cut.pcap"
    path.write_bytes(raw)
    return path


def dns_queries(n: int) -> list[Any]:
    out = []
    for i in range(n):
        q = (Ether(src="02:00:00:00:02:01", dst="02:00:00:00:02:02") / IP(src="10.40.0.5", dst="10.40.0.1")
             / UDP(sport=50000 + i, dport=53) / DNS(id=i, rd=1, qd=DNSQR(qname=f"host{i:04d}.long-label.example.org")))  # fmt: skip
        q.time = T0 + i
        out.append(q)
    return out


# -- one-sided ------------------------------------------------------------------------------
def test_one_way_tap_is_medium_and_names_the_blind_detectors(tmp_path: Path) -> None:
    f = by_code(findings(write(tmp_path, sessions(30, one_sided=True))))["capture_one_sided"]
    assert f["severity"] == "medium"
    assert f["technique"] is None
    ev = f["evidence"]
    assert (ev["one_sided_flows"], ev["tcp_flows"], ev["originator_only"], ev["responder_only"]) == (30, 30, 30, 0)
    assert {"syn_flood", "scan"} <= set(ev["detectors_affected"])
    assert "syn_flood" in f["summary"]
    assert f["packets_total"] == 30 and len(f["packets"][0]["frames"]) == 30


def test_responder_only_capture(tmp_path: Path) -> None:
    pkts = [p for p in sessions(20) if p["IP"].src == "10.30.1.80"]
    f = by_code(findings(write(tmp_path, pkts)))["capture_one_sided"]
    assert f["evidence"]["responder_only"] == 20


def test_a_few_one_sided_flows_among_many_is_info_or_nothing(tmp_path: Path) -> None:
    pkts = sessions(60) + sessions(4, one_sided=True, start=100)
    f = by_code(findings(write(tmp_path, pkts)))["capture_one_sided"]
    assert f["severity"] == "info"
    pkts = sessions(60) + sessions(2, one_sided=True, start=100)
    assert "capture_one_sided" not in by_code(findings(write(tmp_path, pkts, "b.pcap")))


def test_unanswered_syns_are_not_one_sided(tmp_path: Path) -> None:
    pkts = []
    for i in range(50):
        p = (Ether(src="02:00:00:00:03:01", dst="02:00:00:00:03:02") / IP(src="10.50.0.9", dst="10.50.0.10")
             / TCP(sport=40000 + i, dport=1000 + i, flags="S", seq=i))  # fmt: skip
        p.time = T0 + i * 0.01
        pkts.append(p)
    assert findings(write(tmp_path, pkts)) == []


def test_full_capture_is_quiet(tmp_path: Path) -> None:
    assert findings(write(tmp_path, sessions(40))) == []


# -- gaps -----------------------------------------------------------------------------------
def gapped_session(i: int) -> list[Any]:
    """The server's second segment is missing from the capture; the client ACKs past it."""
    c, s, sport = "10.60.0.2", "10.60.0.3", 32000 + i
    cm, sm = "02:00:00:00:04:01", "02:00:00:00:04:02"

    def c2s(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=cm, dst=sm) / IP(src=c, dst=s) / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack)
        return p / Raw(data) if data else p

    def s2c(flags: str, seq: int, ack: int, data: bytes = b"") -> Any:
        p = Ether(src=sm, dst=cm) / IP(src=s, dst=c) / TCP(sport=80, dport=sport, flags=flags, seq=seq, ack=ack)
        return p / Raw(data) if data else p

    req = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    pkts = [c2s("S", 10, 0), s2c("SA", 500, 11), c2s("A", 11, 501), c2s("PA", 11, 501, req),
            s2c("A", 501, 11 + len(req), b"A" * 100),
            # bytes 601-700 are never captured; the client acknowledges them
            c2s("A", 11 + len(req), 701), s2c("PA", 701, 11 + len(req), b"C" * 100),
            c2s("A", 11 + len(req), 801)]  # fmt: skip
    for k, p in enumerate(pkts):
        p.time = T0 + i + k * 0.01
    return pkts


def test_content_gaps_are_reported(tmp_path: Path) -> None:
    pkts = [p for i in range(12) for p in gapped_session(i)]
    f = by_code(findings(write(tmp_path, pkts)))["capture_gaps"]
    assert f["evidence"]["gap_flows"] == 12
    assert f["evidence"]["two_sided_tcp_flows"] == 12
    assert f["severity"] == "medium"
    assert "encrypted_dns" in f["evidence"]["detectors_affected"]


def test_one_gapped_flow_among_many_is_low_at_most(tmp_path: Path) -> None:
    pkts = sessions(30) + gapped_session(100)
    f = by_code(findings(write(tmp_path, pkts)))["capture_gaps"]
    assert f["severity"] == "info"
    assert f["evidence"]["gap_flows"] == 1


# -- truncation ----------------------------------------------------------------------------
def test_snaplen_cutting_dns_is_medium(tmp_path: Path) -> None:
    f = by_code(findings(write_truncated(tmp_path, dns_queries(20), 60)))["capture_truncated"]
    assert f["severity"] == "medium"
    assert f["evidence"]["hidden_layers"] == {"dns_messages": 20}
    assert f["evidence"]["detectors_affected"] == ["dns_tunnel", "encrypted_dns"]
    assert f["evidence"]["snaplens"] == [60]


def test_snaplen_cutting_other_payload_only_is_info(tmp_path: Path) -> None:
    f = by_code(findings(write_truncated(tmp_path, sessions(10), 80)))["capture_truncated"]
    assert f["severity"] == "info"
    assert f["evidence"]["detectors_affected"] == []
    assert "No detector is blinded" in f["summary"]


def test_full_snaplen_is_not_truncated(tmp_path: Path) -> None:
    assert "capture_truncated" not in by_code(findings(write_truncated(tmp_path, dns_queries(20), 65535)))


# -- duplicates -----------------------------------------------------------------------------
def test_span_duplicates(tmp_path: Path) -> None:
    pkts = []
    for p in sessions(20):
        q = p.copy()
        q.time = p.time + 0.000001
        pkts += [p, q]
    f = by_code(findings(write(tmp_path, pkts)))["capture_duplicates"]
    assert f["severity"] == "medium"
    assert f["evidence"]["percent"] == pytest.approx(50.0, abs=0.5)
    assert "syn_flood" in f["evidence"]["detectors_affected"]


# -- merge --------------------------------------------------------------------------------
def test_merge_of_a_split_run_equals_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part_a = sessions(10) + sessions(8, one_sided=True, start=50) + [p for i in range(3) for p in gapped_session(i)]
    part_b = sessions(12, start=200, seed=9) + sessions(5, one_sided=True, start=300, seed=9)
    part_b += [p for i in range(400, 404) for p in gapped_session(i)]
    classes = {"capture_quality": CaptureQuality}
    dets = [Detectors(classes=classes) for _ in range(3)]
    reports = []
    for det, pkts, name in zip(dets, (part_a, part_b, part_a + part_b), ("a.pcap", "b.pcap", "ab.pcap"), strict=True):
        monkeypatch.setattr(netsift.pipeline.Detectors, "from_file", classmethod(lambda cls, p, d=det: d))
        reports.append(analyze(str(write(tmp_path, pkts, name))).data)
    a, b, whole = dets
    a.merge(b)
    ctx = FinishContext(reports[2], None, ["ab.pcap"])
    merged = [f.to_json() for f in a.finish(ctx)]
    single = [f.to_json() for f in whole.finish(ctx)]
    assert {f["code"] for f in single} == {"capture_one_sided", "capture_gaps"}
    for f in merged + single:
        f.pop("packets")  # frame numbers differ between the split files and the whole one
    assert merged == single


# -- configuration ------------------------------------------------------------------------
def test_config_override_changes_the_outcome(tmp_path: Path) -> None:
    path = write(tmp_path, sessions(30, one_sided=True))
    cfg = config_from_dict({"detectors": {"capture_quality": {"min_one_sided_flows": 100}}}, detector_classes())
    assert Detectors(cfg, {"capture_quality": CaptureQuality}).active[0].t.min_one_sided_flows == 100
    assert "capture_one_sided" in by_code(findings(path))
    toml = tmp_path / "c.toml"
    toml.write_text("[detectors.capture_quality]\nmin_one_sided_flows = 100\n")
    assert "capture_one_sided" not in by_code(findings(path, str(toml)))
    toml.write_text("[detectors.capture_quality]\nmedium_min_flows = 31\n")
    assert by_code(findings(path, str(toml)))["capture_one_sided"]["severity"] == "low"


@pytest.mark.parametrize("values", [
    {"truncated_medium_pct": 101.0}, {"one_sided_info_share": -0.1}, {"min_gap_flows": 0},
    {"one_sided_low_share": 0.9}, {"gap_low_share": 0.5, "gap_medium_share": 0.4},
    {"duplicates_low_pct": 20.0},
])  # fmt: skip
def test_bad_thresholds_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        config_from_dict({"detectors": {"capture_quality": values}}, detector_classes())
    with pytest.raises(ValueError):
        CaptureQualityThresholds(**values)


# -- the corpus -----------------------------------------------------------------------------
POSITIVES = {
    "dpkt/examples/data/truncated_dns_2.pcap": ("capture_truncated", "medium"),  # snaplen 200 cuts a DNS answer
    "zeek/testing/btest/Traces/tcp/truncated-header.pcap": ("capture_truncated", "low"),  # snaplen 68
    "zeek/testing/btest/Traces/ssh/ssh.client-side-half-duplex.pcap": ("capture_one_sided", "medium"),
    "zeek/testing/btest/Traces/ssh/ssh.server-side-half-duplex.pcap": ("capture_one_sided", "medium"),
    "zeek/testing/btest/Traces/http/m57-long-49583-80.pcap": ("capture_duplicates", "medium"),
    "zeek/testing/btest/Traces/http/1000-requests-one-dropped-response.pcap": ("capture_gaps", "low"),
}
NEGATIVES = [
    "chrissanders-packets", "arkime/tests/pcap", "foxio-ja4/pcap", "zeek/testing/btest/Traces/http",
    "zeek/testing/btest/Traces/dns", "zeek/testing/btest/Traces/tls", "zeek/testing/btest/Traces/smtp",
]
#: Medium findings on those captures, each checked by hand (see the docs page).
KNOWN_MEDIUM = {
    "wireshark-retrans.pcap": "capture_duplicates",  # 73 of 108 frames are byte-identical copies
    "tls-sni.pcapng": "capture_one_sided",  # the client's hellos only, no server packet
    "m57-long-49583-80.pcap": "capture_duplicates",  # every frame twice (SPAN)
    "vnd.ms-cab-compressed-multi-conn.pcap": "capture_duplicates",  # every frame twice
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(POSITIVES))
def test_corpus_positives(corpus_dir: Path, name: str) -> None:
    got = findings(corpus_dir / name)
    print(f"\n{name} -> {', '.join(f['code'] + ':' + f['severity'] for f in got) or '-'}")
    code, severity = POSITIVES[name]
    assert by_code(got)[code]["severity"] == severity


@pytest.mark.corpus
def test_corpus_negatives_have_no_high_finding(corpus_dir: Path) -> None:
    table: list[str] = []
    loud: list[str] = []
    medium: dict[str, str] = {}
    for d in NEGATIVES:
        for path in sorted((corpus_dir / d).iterdir()):
            if path.suffix not in (".pcap", ".pcapng"):
                continue
            got = findings(path)
            table.append(f"{path.relative_to(corpus_dir)} -> {', '.join(f['code'] + ':' + f['severity'] for f in got) or '-'}")
            loud += [f"{path.name}: {f['summary']}" for f in got if f["severity"] in ("high", "critical")]
            for f in got:
                if f["severity"] == "medium":
                    medium[path.name] = f["code"]
    print("\n" + "\n".join(t for t in table if not t.endswith("-> -")))
    print(f"{len(table)} captures, {sum(not t.endswith('-> -') for t in table)} with findings")
    assert len(table) > 200
    assert loud == []
    assert medium == KNOWN_MEDIUM
