"""The syn_flood detector: crafted floods, reflection, busy servers and scans, its samples,
merging, configuration, and the corpus's real floods and ordinary traffic."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

import netsift.detect as detect
from netsift.detect import Detectors, FinishContext
from netsift.detect.config import config_from_dict
from netsift.detect.syn_flood import SynFlood, SynFloodThresholds
from netsift.pipeline import analyze

T0 = 1_700_000_000.0
MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"


def pkt(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, ts: float) -> Any:
    p = Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    p.time = ts
    return p


def rand_ip(rng: random.Random) -> str:
    return f"{rng.randint(11, 200)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def findings(tmp_path: Path, packets: list[Any], name: str = "t.pcap", config: str | None = None) -> list[dict[str, Any]]:
    path = tmp_path / name
    packets = sorted(packets, key=lambda p: float(p.time))
    wrpcap(str(path), packets)
    cfg = None
    if config is not None:
        cfg = tmp_path / "netsift.toml"
        cfg.write_text(config)
    report = analyze(str(path), config_path=None if cfg is None else str(cfg))
    return [f for f in report["findings"]["items"] if f["detector"] == "syn_flood"]


def codes(items: list[dict[str, Any]]) -> set[str]:
    return {f["code"] for f in items}


# --- crafted captures -------------------------------------------------------------


def spoofed_flood(n: int = 1500, seconds: float = 3.0, dport: int = 80, seed: int = 1,
                  dst: str = "10.0.0.80") -> list[Any]:  # fmt: skip
    rng = random.Random(seed)
    return [pkt(rand_ip(rng), dst, rng.randint(1024, 65535), dport, "S", rng.getrandbits(32), 0,
                T0 + i * seconds / n) for i in range(n)]  # fmt: skip


def test_spoofed_flood_is_found_with_its_measurements(tmp_path: Path) -> None:
    items = findings(tmp_path, spoofed_flood(n=1200))
    assert codes(items) == {"syn_flood"}
    (f,) = items
    ev = f["evidence"]
    assert ev["destination_port"] == 80
    assert ev["attempts"] == 1200 and ev["completed"] == 0 and ev["unanswered"] == 1200
    assert ev["completion_ratio"] == 0.0 and ev["syn_synack_ratio"] is None
    assert ev["spoofing_suspected"] is True
    assert 1050 <= ev["distinct_sources"] <= 1350  # estimated past 1,024 kept sources
    assert ev["distinct_sources_estimated"] is True
    assert f["severity"] == "high"  # spoofed, 500/s not reached in one second
    assert f["technique"]["id"] == "T1498.001"
    assert f["destinations"] == ["10.0.0.80"]
    assert f["packets_total"] == 1200 and len(f["packets"][0]["frames"]) == 50
    assert f["packets"][0]["frames"] == list(range(1, 51))


def test_single_source_flood_is_medium_and_not_spoofed(tmp_path: Path) -> None:
    pkts = [pkt("192.0.2.10", "198.51.100.5", 40000 + i, 443, "S", 1000 * i, 0, T0 + i * 0.001) for i in range(200)]
    (f,) = findings(tmp_path, pkts)
    assert f["code"] == "syn_flood" and f["severity"] == "medium"
    assert f["evidence"]["distinct_sources"] == 1 and f["evidence"]["spoofing_suspected"] is False
    assert f["sources"] == ["192.0.2.10"]


def test_fast_spoofed_flood_is_critical(tmp_path: Path) -> None:
    (f,) = findings(tmp_path, spoofed_flood(n=3000, seconds=1.0))
    assert f["severity"] == "critical"
    assert f["evidence"]["peak_second_attempts"] >= 500


def test_retransmitted_syns_count_once(tmp_path: Path) -> None:
    """100 clients each send their SYN 4 times with the same ISN: 100 attempts, below 150 in 3 s."""
    pkts = []
    for i in range(100):
        for k in range(4):
            pkts.append(pkt(f"172.16.0.{i + 1}", "10.0.0.80", 5000 + i, 80, "S", 777 + i, 0, T0 + i * 0.01 + k * 0.3))
    assert findings(tmp_path, pkts) == []
    # the same packets with a fresh ISN each time are 400 attempts (the flow table makes each
    # a new connection: Zeek's port reuse), a flood
    fresh = [pkt(p[IP].src, p[IP].dst, p[TCP].sport, 80, "S", p[TCP].seq + 1000 * k, 0, float(p.time))
             for k, p in enumerate(pkts)]  # fmt: skip
    (f,) = findings(tmp_path, fresh, "fresh.pcap")
    assert f["evidence"]["attempts"] == 400


def busy_server(n: int = 600, seconds: float = 3.0, complete_pct: int = 100, seed: int = 3) -> list[Any]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cli, sport = f"172.16.{i // 250}.{i % 250 + 1}", rng.randint(1024, 65535)
        isn, sisn = rng.getrandbits(32), rng.getrandbits(32)
        t = T0 + i * seconds / n
        out.append(pkt(cli, "10.0.0.80", sport, 443, "S", isn, 0, t))
        if i % 2 == 0:  # a retransmitted SYN, same ISN
            t += 1.0
            out.append(pkt(cli, "10.0.0.80", sport, 443, "S", isn, 0, t))
        out.append(pkt("10.0.0.80", cli, 443, sport, "SA", sisn, isn + 1, t + 0.001))
        if i % 100 < complete_pct:
            out.append(pkt(cli, "10.0.0.80", sport, 443, "A", isn + 1, sisn + 1, t + 0.002))
    return out


def test_busy_server_with_retransmitting_clients_is_quiet(tmp_path: Path) -> None:
    assert findings(tmp_path, busy_server()) == []


def test_server_whose_handshakes_are_never_completed_is_flooded(tmp_path: Path) -> None:
    """SYN cookies: the server answers every SYN, the (spoofed) clients never ACK."""
    (f,) = findings(tmp_path, busy_server(complete_pct=0))
    ev = f["evidence"]
    assert ev["syn_acks"] == ev["attempts"] == 600 and ev["completed"] == 0 and ev["half_open"] == 600
    assert ev["syn_synack_ratio"] == 1.0


def test_half_completed_is_the_edge(tmp_path: Path) -> None:
    # half the handshakes complete: completion 0.5 is still a flood (<= max_completion_ratio)
    (f,) = findings(tmp_path, busy_server(complete_pct=50))
    assert f["evidence"]["completion_ratio"] == 0.5
    # 51 % complete: not a flood
    assert findings(tmp_path, busy_server(complete_pct=51), "more.pcap") == []


def test_rejected_flood_to_a_closed_port(tmp_path: Path) -> None:
    pkts = []
    for p in spoofed_flood(n=600):
        pkts.append(p)
        pkts.append(pkt(p[IP].dst, p[IP].src, 80, p[TCP].sport, "RA", 0, p[TCP].seq + 1, float(p.time) + 0.0001))
    (f,) = findings(tmp_path, pkts)
    assert f["evidence"]["rejected"] == 600 and f["evidence"]["unanswered"] == 0


def test_below_the_rate_is_quiet(tmp_path: Path) -> None:
    # 140 SYNs in 3 s: 46.7/s < 50/s
    assert findings(tmp_path, spoofed_flood(n=140, seconds=2.9)) == []
    # 160 SYNs spread over 10 s: never 150 in any 3 s
    assert findings(tmp_path, spoofed_flood(n=160, seconds=10.0), "slow.pcap") == []


def test_vertical_port_scan_is_not_a_flood(tmp_path: Path) -> None:
    pkts = []
    for i in range(2000):
        t = T0 + i * 0.0005
        pkts.append(pkt("192.0.2.66", "10.0.0.5", 40000, i + 1, "S", 5000 + i, 0, t))
        pkts.append(pkt("10.0.0.5", "192.0.2.66", i + 1, 40000, "RA", 0, 5001 + i, t + 0.0001))
    assert findings(tmp_path, pkts) == []


def test_horizontal_scan_is_not_a_flood(tmp_path: Path) -> None:
    pkts = [pkt("192.0.2.66", f"10.0.{i // 250}.{i % 250 + 1}", 40000, 22, "S", 9 + i, 0, T0 + i * 0.001)
            for i in range(1000)]  # fmt: skip
    assert findings(tmp_path, pkts) == []


def test_multi_port_flood_from_many_sources_is_a_host_flood(tmp_path: Path) -> None:
    rng = random.Random(9)
    pkts = [pkt(rand_ip(rng), "10.0.0.7", rng.randint(1024, 65535), rng.randint(1, 65535), "S", rng.getrandbits(32),
                0, T0 + i * 0.002) for i in range(1500)]  # fmt: skip
    (f,) = findings(tmp_path, pkts)
    assert f["code"] == "syn_flood_host"
    assert f["evidence"]["destination_ports"] > 1000 and f["evidence"]["spoofing_suspected"] is True


def reflection(n: int = 600, reflectors: int = 60, seed: int = 2, victim: str = "10.0.0.9") -> list[Any]:
    rng = random.Random(seed)
    refl = [f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(reflectors)]
    return [pkt(refl[i % reflectors], victim, 443 if i % 2 else 80, rng.randint(1024, 65535), "SA",
                rng.getrandbits(32), rng.getrandbits(32), T0 + i * 0.004) for i in range(n)]  # fmt: skip


def test_syn_ack_reflection_is_its_own_code(tmp_path: Path) -> None:
    items = findings(tmp_path, reflection())
    assert codes(items) == {"syn_ack_reflection"}
    (f,) = items
    assert f["destinations"] == ["10.0.0.9"] and f["sources_total"] == 60
    assert f["evidence"]["unsolicited_syn_acks"] == 600
    assert f["technique"]["id"] == "T1498.002"


def test_syn_acks_from_a_non_server_port_are_reflection_too(tmp_path: Path) -> None:
    """The flow table does not flip these (history 'H'): the receiver is the responder."""
    rng = random.Random(5)
    pkts = [pkt(f"198.51.100.{i % 40 + 1}", "10.0.0.9", 30000 + i, 40000 + i, "SA", rng.getrandbits(32), 1,
                T0 + i * 0.003) for i in range(600)]  # fmt: skip
    (f,) = findings(tmp_path, pkts)
    assert f["code"] == "syn_ack_reflection" and f["destinations"] == ["10.0.0.9"]


def test_syn_acks_the_host_acknowledges_are_not_reflection(tmp_path: Path) -> None:
    """A capture that missed the SYNs: the receiver ACKs, so it asked for them."""
    pkts = []
    for p in reflection():
        pkts.append(p)
        pkts.append(pkt(p[IP].dst, p[IP].src, p[TCP].dport, p[TCP].sport, "A", p[TCP].ack, p[TCP].seq + 1,
                        float(p.time) + 0.0001))  # fmt: skip
    assert findings(tmp_path, pkts) == []


def test_reflection_from_few_senders_is_quiet(tmp_path: Path) -> None:
    assert findings(tmp_path, reflection(reflectors=3)) == []


# --- samples ------------------------------------------------------------------------


# --- merge --------------------------------------------------------------------------


def grab_flows(path: Path) -> list[Any]:
    """The finished flow records of one capture, as the pipeline hands them to detectors."""
    import netsift.pipeline as pipeline

    grabbed: list[Any] = []

    class Grab(Detectors):
        def flows(self, records: list[Any]) -> None:
            grabbed.extend(records)

    orig = pipeline.Detectors
    pipeline.Detectors = Grab  # type: ignore[misc]
    try:
        analyze(str(path))
    finally:
        pipeline.Detectors = orig  # type: ignore[misc]
    return grabbed


def run_detector(path: Path, det: SynFlood) -> SynFlood:
    det.flows(grab_flows(path))
    return det


def test_merge_gives_the_same_findings(tmp_path: Path) -> None:
    pkts = sorted(spoofed_flood(n=3000, seconds=4.0) + reflection() + busy_server()
                  + spoofed_flood(n=900, dport=25, seed=4, dst="10.0.0.25"), key=lambda p: float(p.time))  # fmt: skip
    half = len(pkts) // 2
    paths = []
    for name, part in (("all", pkts), ("a", pkts[:half]), ("b", pkts[half:])):
        wrpcap(str(tmp_path / f"{name}.pcap"), part)
        paths.append(tmp_path / f"{name}.pcap")
    ctx = FinishContext({}, None, [])
    whole = run_detector(paths[0], SynFlood())
    a = run_detector(paths[1], SynFlood())
    b = run_detector(paths[2], SynFlood())
    a.merge(b)
    one = [f.to_json() for f in sorted(whole.finish(ctx), key=lambda f: f.sort_key())]
    merged = [f.to_json() for f in sorted(a.finish(ctx), key=lambda f: f.sort_key())]
    assert {f["code"] for f in one} == {"syn_flood", "syn_ack_reflection"} and len(one) == 3
    # frame numbers differ between the split files: compare everything else, and packet counts
    for f in one + merged:
        f["packets"] = sum(len(p["frames"]) for p in f["packets"])
    assert merged == one


def test_merge_of_flow_batches_is_exact_past_the_source_cap(tmp_path: Path) -> None:
    path = tmp_path / "f.pcap"
    wrpcap(str(path), spoofed_flood(n=4000, seconds=3.0))
    grabbed = grab_flows(path)
    whole = SynFlood()
    whole.flows(grabbed)
    # the same flow records split across three instances, interleaved
    parts = [SynFlood() for _ in range(3)]
    for i, r in enumerate(grabbed):
        parts[i % 3].flows([r])
    parts[0].merge(parts[1])
    parts[0].merge(parts[2])
    ctx = FinishContext({}, None, [])
    assert [f.to_json() for f in parts[0].finish(ctx)] == [f.to_json() for f in whole.finish(ctx)]


# --- configuration --------------------------------------------------------------------


def test_config_override_changes_the_outcome(tmp_path: Path) -> None:
    pkts = spoofed_flood(n=140, seconds=2.9)
    assert findings(tmp_path, pkts) == []
    assert codes(findings(tmp_path, pkts, "b.pcap", config="[detectors.syn_flood]\nmin_rate = 30.0\n")) == {"syn_flood"}
    config = config_from_dict({"detectors": {"syn_flood": {"min_rate": 1000.0}}}, detect.detector_classes())
    dets = Detectors(config)
    (mine,) = [d for d in dets.active if d.name == "syn_flood"]
    assert isinstance(mine, SynFlood) and mine.t.min_rate == 1000.0
    # and through the pipeline: a real flood falls below a raised rate
    cfg = "[detectors.syn_flood]\nmin_rate = 1000.0\n"
    assert findings(tmp_path, spoofed_flood(), "c.pcap", config=cfg) == []


@pytest.mark.parametrize("bad", [{"window_s": 0}, {"min_rate": 0.0}, {"max_completion_ratio": 1.5},
                                 {"min_attempts": 0}, {"max_cells": 0}, {"max_sources_kept": 4},
                                 {"high_rate": float("nan")}])  # fmt: skip
def test_thresholds_are_validated(bad: dict[str, Any]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        SynFloodThresholds(**bad)


def test_cell_cap_is_reported(tmp_path: Path) -> None:
    det = SynFlood(SynFloodThresholds(max_cells=1, min_attempts=1, min_rate=1.0))
    path = tmp_path / "f.pcap"
    wrpcap(str(path), spoofed_flood(n=300, seconds=3.0) + spoofed_flood(n=300, dport=81, seed=7))
    run_detector(path, det)
    (f,) = det.finish(FinishContext({}, None, []))
    assert f.evidence["untracked_flows"] >= 300


def test_stale_cold_cells_make_room_at_the_cap(tmp_path: Path) -> None:
    lone = [pkt("172.16.0.1", "10.0.0.80", 5000 + i, 8000 + i, "S", 5 + i, 0, T0 + 5 + i) for i in range(3)]
    late = [p.copy() for p in spoofed_flood(n=300, dport=81, seed=8)]
    for p in late:
        p.time = float(p.time) + 1000
    path = tmp_path / "f.pcap"
    wrpcap(str(path), sorted(spoofed_flood(n=300) + lone + late, key=lambda p: float(p.time)))
    ctx = FinishContext({}, None, [])
    free = run_detector(path, SynFlood())
    old = sum(1 for k in free.cells if k[2] == 80)
    assert len(free.cells) == old + 3 + sum(1 for k in free.cells if k[2] == 81)
    capped = run_detector(path, SynFlood(SynFloodThresholds(max_cells=old + 3)))
    found = capped.finish(ctx)
    assert sorted(f.evidence["destination_port"] for f in found) == [80, 81]  # the old flood's cells were kept
    assert all(f.evidence["cells_compacted"] == 3 and f.evidence["untracked_flows"] == 0 for f in found)
    assert [f.to_json()["summary"] for f in found] == [f.to_json()["summary"] for f in free.finish(ctx)]


# --- corpus -------------------------------------------------------------------------

POSITIVES = {
    "stopddos-packet-captures/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng": "syn_flood",
    "suricata-verify/tests/firewall/tcp-session-syn-flood-drop-precedence/input.pcap": "syn_flood",
    "stopddos-packet-captures/amp.TCP.reflection.SYNACK.pcap": "syn_ack_reflection",
}

#: Ordinary traffic: every capture of these corpus sources (FILES.tsv role "capture").
NEGATIVE_SOURCES = ("chrissanders-packets/", "arkime/", "foxio-ja4/", "zeek/")


def corpus_captures(corpus_dir: Path, prefixes: tuple[str, ...]) -> list[str]:
    out = []
    with open(corpus_dir / "FILES.tsv", encoding="utf-8") as fh:
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) > 4 and cols[4] == "capture" and cols[0].startswith(prefixes) and not cols[0].endswith(".gz"):
                out.append(cols[0])
    return sorted(out)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", sorted(POSITIVES))
def test_corpus_positives(corpus_dir: Path, rel: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = analyze(str(corpus_dir / rel))
    items = [f for f in report["findings"]["items"] if f["detector"] == "syn_flood"]
    found = ", ".join(f"{f['code']}({f['severity']})" for f in items) or "nothing"
    with capsys.disabled():
        print(f"\n  {rel} -> {found}")
    assert codes(items) == {POSITIVES[rel]}


@pytest.mark.corpus
def test_corpus_ordinary_traffic_has_no_high_finding(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from netsift.errors import NetsiftError

    fired: dict[str, list[str]] = {}
    analysed = 0
    for rel in corpus_captures(corpus_dir, NEGATIVE_SOURCES):
        try:
            report = analyze(str(corpus_dir / rel))
        except NetsiftError:
            continue  # link types and formats netsift does not read
        analysed += 1
        items = [f for f in report["findings"]["items"] if f["detector"] == "syn_flood"]
        if items:
            fired[rel] = [f"{f['code']}({f['severity']})" for f in items]
    with capsys.disabled():
        print(f"\nsyn_flood on {analysed} ordinary captures ({', '.join(NEGATIVE_SOURCES)}):")
        for rel, found in sorted(fired.items()):
            print(f"  {rel} -> {', '.join(found)}")
        print(f"  {analysed - len(fired)} captures -> nothing")
    assert analysed > 500
    assert [rel for rel, found in fired.items() if any("(high)" in x or "(critical)" in x for x in found)] == []
