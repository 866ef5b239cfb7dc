"""The detector framework: config checking, findings (JSON, ECS, stable ids), the feeds
detectors get from the pipeline, the CLI's --alerts/--fail-on/--config, and selftest.

A toy detector (defined here, not registered) stands in for the real ones.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, Packet, PcapWriter

import netsift.detect as detect
from netsift.cli import main
from netsift.detect import (
    Detector,
    Detectors,
    DnsEvents,
    Finding,
    FinishContext,
    Sample,
    Severity,
    Technique,
)
from netsift.detect.config import config_from_dict, defaults_toml, load_config
from netsift.detect.finding import PacketRefs, ecs_alert, ns_to_iso
from netsift.errors import UsageError
from netsift.flows import FlowRecord
from netsift.pipeline import analyze
from netsift.report import report_schema

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


@dataclass(frozen=True)
class TelnetThresholds:
    #: connections to port 23 before a finding (test value)
    min_connections: int = 2
    #: ports watched
    ports: tuple[int, ...] = (23,)
    ratio: float = 0.5
    enabled_extra: bool = False
    label: str = "telnet"

    def __post_init__(self) -> None:
        if self.min_connections < 1:
            raise ValueError("min_connections must be at least 1")


class Telnet(Detector):
    """Reports clients that open TCP connections to the watched ports."""

    name: ClassVar[str] = "telnet"
    title: ClassVar[str] = "telnet connections (test detector)"
    Thresholds: ClassVar[type] = TelnetThresholds

    def __init__(self, thresholds: Any = None) -> None:
        super().__init__(thresholds)
        self.seen: dict[str, list[Any]] = {}
        self.dns_events: list[DnsEvents] = []

    def flows(self, records: list[FlowRecord]) -> None:
        for r in records:
            if r.proto == 6 and r.resp_p in self.t.ports:
                self.seen.setdefault(r.orig_h, []).append(r)

    def dns(self, events: DnsEvents) -> None:
        self.dns_events.append(events)

    def finish(self, ctx: FinishContext) -> list[Finding]:
        out = []
        for client, recs in sorted(self.seen.items()):
            if len(recs) < self.t.min_connections:
                continue
            refs = PacketRefs()
            for r in recs:
                refs.add(r.first_file, r.first_frame)
            out.append(Finding(
                detector=self.name, code="telnet_client", severity=Severity.MEDIUM,
                technique=Technique("T1021", "Remote Services"),
                first_ns=min(r.start_ns for r in recs), last_ns=max(r.end_ns for r in recs),
                summary=f"{client} opened {len(recs)} telnet connections", key=(client,),
                sources=(client,), destinations=tuple(sorted({r.resp_h for r in recs})),
                evidence={"connections": len(recs), "destination_port": 23},
                thresholds={"min_connections": self.t.min_connections},
                packets=tuple(refs.sorted()), packets_total=refs.total,
            ))
        return out

    def merge(self, other: Detector) -> None:
        assert isinstance(other, Telnet)
        for k, v in other.seen.items():
            self.seen.setdefault(k, []).extend(v)

    @classmethod
    def samples(cls) -> list[Sample]:
        return [
            Sample("two-sessions", "two telnet connections", lambda: _telnet_packets(2),
                   frozenset({"telnet_client"})),
            Sample("one-session", "one telnet connection", lambda: _telnet_packets(1)),
        ]


def _telnet_packets(n: int, port: int = 23) -> list[Packet]:
    out = []
    for k in range(n):
        syn = Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.9") / TCP(sport=40000 + k, dport=port,
                                                                                       flags="S", seq=100)
        syn.time = 1000.0 + k
        sa = Ether(src=MAC_B, dst=MAC_A) / IP(src="10.0.0.9", dst="10.0.0.1") / TCP(sport=port, dport=40000 + k,
                                                                                      flags="SA", seq=500, ack=101)
        sa.time = 1000.001 + k
        out += [syn, sa]
    return out


def write(tmp_path: Path, packets: list[Packet], name: str = "t.pcap") -> Path:
    path = tmp_path / name
    with PcapWriter(str(path), linktype=1, sync=True) as w:
        for p in packets:
            w.write(p)
    return path


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Detector]]:
    classes: dict[str, type[Detector]] = {"telnet": Telnet}
    monkeypatch.setattr(detect, "detector_classes", lambda: classes)
    return classes


# --------------------------------------------------------------------------- config

def test_config_values_are_checked_key_by_key() -> None:
    classes: dict[str, type[Detector]] = {"telnet": Telnet}
    cfg = config_from_dict({"detectors": {"telnet": {"min_connections": 5, "ports": [23, 2323],
                                                      "ratio": 1}}}, classes)  # fmt: skip
    t = cfg.thresholds["telnet"]
    assert (t.min_connections, t.ports, t.ratio) == (5, (23, 2323), 1.0) and isinstance(t.ratio, float)
    bad = [
        ({"detectors": {"telnet": {"min_conections": 5}}}, "detectors.telnet.min_conections: unknown key"),
        ({"detectors": {"telnet": {"min_connections": "5"}}}, "expected an integer"),
        ({"detectors": {"telnet": {"min_connections": True}}}, "expected an integer"),
        ({"detectors": {"telnet": {"ports": [23, "x"]}}}, "expected a list of int"),
        ({"detectors": {"telnet": {"ports": 23}}}, "expected a list"),
        ({"detectors": {"telnet": {"enabled_extra": 1}}}, "expected true or false"),
        ({"detectors": {"telnet": {"min_connections": 0}}}, "min_connections must be at least 1"),
        ({"detectors": {"telnot": {}}}, "[detectors.telnot] is not a detector"),
        ({"detectors": {"disabled": ["telnot"]}}, "detectors.disabled names 'telnot'"),
        ({"detector": {}}, "unknown section 'detector'"),
    ]
    for data, message in bad:
        with pytest.raises(UsageError, match=None) as exc:
            config_from_dict(data, classes)
        assert message in str(exc.value), (data, str(exc.value))


def test_defaults_toml_reads_back_as_the_defaults(tmp_path: Path) -> None:
    classes: dict[str, type[Detector]] = {"telnet": Telnet}
    text = defaults_toml(classes)
    assert "[detectors.telnet]" in text and "# telnet: telnet connections" in text
    path = tmp_path / "d.toml"
    path.write_text(text)
    cfg = load_config(str(path), classes)
    assert cfg.thresholds["telnet"] == TelnetThresholds() and cfg.disabled == frozenset()
    assert tomllib.loads(text)["detectors"]["telnet"]["ports"] == [23]


def test_bad_config_files_are_one_sentence(tmp_path: Path, toy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path, _telnet_packets(2))
    broken = tmp_path / "broken.toml"
    broken.write_text("[detectors.telnet\nmin_connections = 1\n")
    typo = tmp_path / "typo.toml"
    typo.write_text("[detectors.telnet]\nmin_conections = 1\n")
    cases = [(broken, 2, "not valid TOML"), (typo, 2, "detectors.telnet.min_conections: unknown key"),
             (tmp_path / "missing.toml", 3, "no such config file")]  # fmt: skip
    for path, code, message in cases:
        assert main(["analyze", str(cap), "-q", "--config", str(path)]) == code
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert main(["config", "--check", str(path)]) == code
        capsys.readouterr()


# --------------------------------------------------------------------------- findings

def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = dict(
        detector="telnet", code="telnet_client", severity=Severity.HIGH, technique=Technique("T1021", "Remote Services"),
        first_ns=1_700_000_000_123_456_789, last_ns=1_700_000_001_000_000_000, summary="s", key=("10.0.0.1",),
        sources=("10.0.0.1",), destinations=("10.0.0.9",), evidence={"destination_port": 23},
        thresholds={"min": 1}, packets=((0, 3), (0, 5), (1, 2)), packets_total=7,
    )
    base.update(kw)
    return Finding(**base)


def test_finding_json_ecs_and_stable_id() -> None:
    f = _finding()
    assert f.id == _finding(summary="other words", severity=Severity.LOW).id  # same entity, same id
    assert f.id != _finding(key=("10.0.0.2",)).id and f.id != _finding(code="other").id
    doc = f.to_json(["a.pcap", "b.pcap"])
    jsonschema.validate(doc, {"$ref": "#/$defs/finding", "$defs": report_schema()["$defs"]})
    assert doc["first_seen"] == "2023-11-14T22:13:20.123456Z"
    assert doc["packets"] == [{"file": "a.pcap", "frames": [3, 5]}, {"file": "b.pcap", "frames": [2]}]
    assert doc["packets_total"] == 7
    ecs = ecs_alert(doc)
    assert ecs["event"]["kind"] == "alert" and ecs["event"]["severity"] == 3 and ecs["rule"]["name"] == "telnet_client"
    assert ecs["threat"]["technique"]["id"] == ["T1021"]
    assert ecs["threat"]["technique"]["reference"] == ["https://attack.mitre.org/techniques/T1021/"]
    assert ecs["source"] == {"ip": "10.0.0.1"} and ecs["destination"] == {"ip": "10.0.0.9", "port": 23}
    assert ecs["netsift"]["finding_id"] == f.id
    many = ecs_alert(_finding(sources=("10.0.0.1", "10.0.0.2"), technique=None).to_json())
    assert "source" not in many and "threat" not in many
    assert ns_to_iso(1_700_000_000_999_999_999) == "2023-11-14T22:13:20.999999Z"


def test_severity_parse_and_order() -> None:
    assert Severity.parse(" High ") is Severity.HIGH and Severity.CRITICAL > Severity.HIGH > Severity.INFO
    with pytest.raises(UsageError, match="use one of info, low, medium, high, critical"):
        Severity.parse("urgent")


def test_packet_refs_cap_and_merge() -> None:
    a, b = PacketRefs(cap=3), PacketRefs(cap=3)
    for n in (5, 1):
        a.add(0, n)
    for n in (9, 8, 7):
        b.add(0, n)
    a.merge(b)
    # the earliest three of both (not the first added): what one run adding all five keeps
    assert a.total == 5 and a.items == [(0, 1), (0, 5), (0, 7)] == a.sorted()
    one = PacketRefs(cap=3)
    for n in (5, 1, 9, 8, 7):
        one.add(0, n)
    assert one.items == a.items and one.total == a.total


# --------------------------------------------------------------------------- the pipeline's feeds

def test_findings_in_the_report_and_the_merge(tmp_path: Path, toy: Any) -> None:
    report = analyze(str(write(tmp_path, _telnet_packets(3) + _telnet_packets(1, port=2323))))
    f = report["findings"]
    assert f["total"] == 1 and f["by_severity"]["medium"] == 1 and f["by_detector"] == {"telnet": 1}
    item = f["items"][0]
    assert item["evidence"]["connections"] == 3 and item["packets"][0]["frames"] == [1, 3, 5]
    assert f["detectors"]["telnet"]["thresholds"]["ports"] == [23]
    # the same capture with a config that watches 2323 too
    cfg = tmp_path / "c.toml"
    cfg.write_text("[detectors.telnet]\nports = [23, 2323]\nmin_connections = 4\n")
    assert analyze(str(tmp_path / "t.pcap"), config_path=str(cfg))["findings"]["items"][0]["evidence"] == {
        "connections": 4, "destination_port": 23}
    # disabled, and --no-detect
    off = tmp_path / "off.toml"
    off.write_text('[detectors]\ndisabled = ["telnet"]\n')
    r = analyze(str(tmp_path / "t.pcap"), config_path=str(off))
    assert r["findings"]["total"] == 0 and r["findings"]["disabled"] == ["telnet"]
    assert "findings" not in analyze(str(tmp_path / "t.pcap"), detect=False).data


def test_merge_of_two_halves_equals_one_run(tmp_path: Path) -> None:
    recs: list[FlowRecord] = []

    class Keep(Telnet):
        def flows(self, records: list[FlowRecord]) -> None:
            recs.extend(records)
            super().flows(records)

    ctx = FinishContext({}, None, [])
    whole = Detectors(classes={"telnet": Keep})
    analyze_with(tmp_path, whole)
    a, b = Detectors(classes={"telnet": Telnet}), Detectors(classes={"telnet": Telnet})
    a.flows(recs[:3])
    b.flows(recs[3:])
    a.merge(b)
    assert [x.to_json() for x in a.finish(ctx)] == [x.to_json() for x in whole.finish(ctx)] != []


def analyze_with(tmp_path: Path, detectors: Detectors) -> None:
    """Feed ``detectors`` the flows of a capture through the pipeline."""
    analyze(str(write(tmp_path, _telnet_packets(5))), detectors=detectors)


def test_dns_events_name_client_and_server(tmp_path: Path) -> None:
    got: list[DnsEvents] = []

    class Collect(Telnet):
        def dns(self, events: DnsEvents) -> None:
            got.append(events)

    q = DNS(id=7, rd=1, qd=DNSQR(qname="www.example.com", qtype="A"))
    r = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"),
            an=DNSRR(rrname="www.example.com", type="A", ttl=60, rdata="192.0.2.7"))
    pkts = [Ether(src=MAC_A, dst=MAC_B) / IP(src="10.0.0.1", dst="10.0.0.53") / UDP(sport=5555, dport=53) / q,
            Ether(src=MAC_B, dst=MAC_A) / IP(src="10.0.0.53", dst="10.0.0.1") / UDP(sport=53, dport=5555) / r]
    pkts[0].time, pkts[1].time = 10.0, 10.02
    analyze(str(write(tmp_path, pkts)), detectors=Detectors(classes={"telnet": Collect}))
    ev = got[0]
    assert len(ev) == 2 and ev.response == [False, True] and ev.frame == [1, 2] and ev.file_index == [0, 0]
    assert ev.client == [(0, 0xFFFF0A000001)] * 2 and ev.server == [(0, 0xFFFF0A000035)] * 2
    assert ev.server_port == [53, 53] and ev.transport == ["udp", "udp"] and ev.qname == ["www.example.com"] * 2
    assert ev.qtype == [1, 1] and ev.rcode == [0, 0] and ev.answers[1][0][2] == "192.0.2.7"
    assert ev.size == [len(q), len(r)] and ev.ts_ns == [10_000_000_000, 10_020_000_000]


# --------------------------------------------------------------------------- the CLI

def test_alerts_and_fail_on(tmp_path: Path, toy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path, _telnet_packets(2))
    alerts = tmp_path / "alerts.ndjson"
    assert main(["analyze", str(cap), "-q", "--alerts", str(alerts), "--fail-on", "high"]) == 0
    lines = alerts.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["rule"]["name"] == "telnet_client"
    assert main(["analyze", str(cap), "-q", "--fail-on", "medium"]) == 10
    assert main(["analyze", str(cap), "-q", "--fail-on", "loud"]) == 2
    assert "unknown severity 'loud'" in capsys.readouterr().err
    assert main(["analyze", str(cap), "-q", "--no-detect", "--alerts", str(alerts)]) == 2
    assert main(["analyze", str(cap)]) == 0
    out = capsys.readouterr().out
    assert "Findings: 1" in out and "10.0.0.1 opened 2 telnet connections" in out
    empty = write(tmp_path, _telnet_packets(1), "one.pcap")
    assert main(["analyze", str(empty), "-q", "--alerts", str(alerts), "--fail-on", "info"]) == 0
    assert alerts.read_text() == ""


def test_config_command(toy: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--defaults"]) == 0
    assert "[detectors.telnet]\nmin_connections = 2\n" in capsys.readouterr().out
    assert main(["config"]) == 2


def test_selftest_passes_and_fails(toy: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    assert main(["selftest", "--keep", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "all 2 checks passed" in out
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["telnet--one-session.pcap",
                                                                  "telnet--two-sessions.pcap"]
    assert main(["selftest", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["sample"], r["passed"], r["detail"]) for r in rows] == [
        ("two-sessions", True, "fired: telnet_client"), ("one-session", True, "quiet")]
    # a detector that stopped working fails its positive sample
    monkeypatch.setattr(Telnet, "finish", lambda self, ctx: [])
    assert main(["selftest"]) == 1
    assert "1 of 2 checks failed" in capsys.readouterr().out
    assert main(["selftest", "--only", "nothing"]) == 2


# --------------------------------------------------------------------------- every detector's samples

def _all_samples() -> list[Any]:
    return [pytest.param(name, s, id=f"{name}-{s.name}")
            for name, cls in detect.detector_classes().items() for s in cls.samples()]  # fmt: skip


@pytest.mark.parametrize("name,sample", _all_samples())
def test_every_sample_passes_selftest(tmp_path: Path, name: str, sample: Sample) -> None:
    """What `netsift selftest` checks, sample by sample: positives report their codes,
    negatives stay below their severity floor."""
    from netsift.detect.selftest import run_sample

    result = run_sample(name, sample, tmp_path)
    assert result.passed, result.detail


@pytest.mark.parametrize("name", list(detect.detector_classes()))
def test_every_detector_has_sound_samples(name: str) -> None:
    """At least one positive and one negative; small, deterministic, every packet timed
    and with explicit MACs (no ARP lookups when Scapy builds them)."""
    samples = detect.detector_classes()[name].samples()
    assert any(s.expect for s in samples) and any(not s.expect for s in samples)
    for s in samples:
        packets = s.build()
        assert 0 < len(packets) < 5000, s.name
        assert all(p.haslayer(Ether) and p[Ether].src and p[Ether].dst and p.time for p in packets), s.name
        assert [bytes(p) for p in s.build()] == [bytes(p) for p in packets], s.name  # deterministic
        Severity.parse(s.forbid_at)
