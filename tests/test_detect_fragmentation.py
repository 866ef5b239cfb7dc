"""The fragmentation detector: crafted fragment trains, its samples, merge, config and the corpus."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from netsift.defrag import OVERLAP_POLICIES, policy_outcomes
from netsift.detect import Detectors, FinishContext, detector_classes
from netsift.detect.config import config_from_dict
from netsift.detect.fragmentation import FragmentationDetector, FragmentationThresholds
from netsift.pipeline import analyze

T0 = 1_700_000_000.0
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def frag4(src: str, dst: str, ident: int, offset8: int, mf: bool, data: bytes, t: float,
          proto: int = 17) -> Any:  # fmt: skip
    p = Ether(**MACS) / IP(src=src, dst=dst, id=ident, proto=proto, flags="MF" if mf else 0,
                           frag=offset8) / Raw(data)  # fmt: skip
    p.time = t
    return p


def frag6(src: str, dst: str, ident: int, offset: int, m: int, data: bytes, t: float) -> Any:
    p = Ether(**MACS) / IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=17, id=ident, offset=offset // 8, m=m) / Raw(data)
    p.time = t
    return p


def udp(payload: bytes, sport: int = 40000, dport: int = 53) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def run(tmp_path: Path, packets: list[Any], name: str = "c.pcap", config: str | None = None) -> list[dict[str, Any]]:
    path = tmp_path / name
    wrpcap(str(path), packets)
    cfg = None
    if config is not None:
        cfg = tmp_path / "netsift.toml"
        cfg.write_text(config)
    report = analyze(str(path), config_path=None if cfg is None else str(cfg))
    return [f for f in report["findings"]["items"] if f["detector"] == "fragmentation"]


def codes(findings: list[dict[str, Any]]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in findings}


def normal_train(src: str, dst: str, ident: int, size: int, t: float, proto: int = 17) -> list[Any]:
    body = udp((bytes(range(256)) * (size // 256 + 1))[: size - 8])
    out = []
    for i, off in enumerate(range(0, len(body), 1480)):
        out.append(frag4(src, dst, ident, off // 8, off + 1480 < len(body), body[off : off + 1480],
                         t + i * 0.0001, proto))  # fmt: skip
    return out


# --- overlaps and the policies -------------------------------------------------------------


def test_conflicting_overlap_reports_each_policy(tmp_path: Path) -> None:
    body = udp(b"A" * 40)  # 48 bytes
    pkts = [
        frag4("192.0.2.1", "198.51.100.2", 7, 0, True, body[:24], T0),
        frag4("192.0.2.1", "198.51.100.2", 7, 2, True, b"EVIL" * 4, T0 + 0.001),
        frag4("192.0.2.1", "198.51.100.2", 7, 3, False, body[24:], T0 + 0.002),
    ]
    found = run(tmp_path, pkts)
    assert codes(found) == {"fragment_overlap_conflicting": "high"}
    f = found[0]
    assert f["sources"] == ["192.0.2.1"] and f["destinations"] == ["198.51.100.2"]
    train = f["evidence"]["trains"][0]
    assert train["id"] == 7 and train["completed"] is True and train["policies_disagree"] is True
    assert set(train["policies"]) == set(OVERLAP_POLICIES)
    # the new fragment starts inside the first: only "last" takes its bytes
    assert train["policy_groups"] == [["first", "bsd", "linux", "windows", "solaris"], ["last"]]
    assert train["first_difference"] == 16
    assert f["packets"][0]["frames"] == [1, 2, 3] and f["packets_total"] == 3
    assert "disagree" in f["summary"]


def test_identical_overlap_is_low_and_can_be_turned_off(tmp_path: Path) -> None:
    body = udp(b"Z" * 56)  # 64 bytes
    pkts = [
        frag4("192.0.2.1", "198.51.100.2", 8, 0, True, body[:32], T0),
        frag4("192.0.2.1", "198.51.100.2", 8, 2, True, body[16:48], T0 + 0.001),
        frag4("192.0.2.1", "198.51.100.2", 8, 6, False, body[48:], T0 + 0.002),
    ]
    found = run(tmp_path, pkts)
    assert codes(found) == {"fragment_overlap_identical": "low"}
    assert found[0]["evidence"]["trains"][0]["policies_disagree"] is False
    quiet = run(tmp_path, pkts, "d.pcap", "[detectors.fragmentation]\nreport_identical_overlaps = false\n")
    assert quiet == []


def test_ipv6_overlap_always_an_attack_but_duplicates_are_tolerated(tmp_path: Path) -> None:
    body = udp(b"B" * 56)
    src, dst = "2001:db8::1", "2001:db8::2"
    overlap = [frag6(src, dst, 5, 0, 1, body[:32], T0), frag6(src, dst, 5, 16, 1, body[16:48], T0 + 0.001),
               frag6(src, dst, 5, 48, 0, body[48:], T0 + 0.002)]  # fmt: skip
    found = run(tmp_path, overlap)
    # identical bytes, yet RFC 5722 forbids the overlap
    assert codes(found) == {"ipv6_fragment_overlap": "high"}
    assert found[0]["evidence"]["ip_version"] == 6
    dup = [frag6(src, dst, 6, 0, 1, body[:32], T0), frag6(src, dst, 6, 0, 1, body[:32], T0 + 0.001),
           frag6(src, dst, 6, 32, 0, body[32:], T0 + 0.002)]  # fmt: skip
    assert codes(run(tmp_path, dup, "dup.pcap")) == {"fragment_overlap_identical": "low"}


def test_policy_outcomes_follow_suricata_rules() -> None:
    # old [16, 32) "A"; new [8, 40) "B": starts before and ends after the old one
    pieces = [(0, True, b"h" * 8), (16, True, b"A" * 16), (8, True, b"B" * 32), (40, False, b"t" * 8)]
    out = policy_outcomes(pieces)
    groups = {p: i for i, g in enumerate(out["groups"]) for p in g}
    # first keeps A; last, bsd, linux, windows, solaris take B where it covers A
    assert groups["first"] != groups["last"]
    assert groups["last"] == groups["bsd"] == groups["linux"] == groups["windows"] == groups["solaris"]
    # new [8, 16) "C" at the same offset as old [8, 24) "A", inside it
    pieces = [(0, True, b"h" * 8), (8, True, b"A" * 16), (8, True, b"C" * 8), (24, False, b"t" * 8)]
    out = policy_outcomes(pieces)
    groups = {p: i for i, g in enumerate(out["groups"]) for p in g}
    assert groups["linux"] == groups["last"] != groups["bsd"]  # linux: same offset -> new wins
    assert groups["bsd"] == groups["first"] == groups["windows"] == groups["solaris"]
    assert out["first_difference"] == 8 and out["policies_disagree"] is True
    assert all(v["length"] == 32 and v["holes"] == 0 for v in out["policies"].values())
    # new [0, 16) before old [8, 24) ending inside it: bsd and linux take new, windows and solaris old
    pieces = [(8, True, b"A" * 16), (0, True, b"N" * 16), (24, False, b"t" * 8)]
    g = {p: i for i, grp in enumerate(policy_outcomes(pieces)["groups"]) for p in grp}
    assert g["bsd"] == g["linux"] == g["last"] and g["windows"] == g["solaris"] == g["first"] != g["bsd"]
    # no overlap at all: one outcome
    assert policy_outcomes([(0, True, b"x" * 8), (8, False, b"y" * 8)])["policies_disagree"] is False


# --- teardrop, tiny, oversize --------------------------------------------------------------


def test_teardrop(tmp_path: Path) -> None:
    pkts = [frag4("192.0.2.9", "198.51.100.9", 1, 0, True, udp(b"X" * 24), T0),
            frag4("192.0.2.9", "198.51.100.9", 1, 3, False, b"YYYY", T0 + 0.001)]  # fmt: skip
    found = run(tmp_path, pkts)
    assert codes(found) == {"teardrop": "high"}  # the IPv4 train is not reported twice
    f = found[0]
    assert f["technique"]["id"] == "T1499.004"
    assert f["evidence"]["last_fragment_offset"] == 24 and f["evidence"]["last_fragment_end"] == 28
    assert f["evidence"]["data_already_to"] == 32
    assert f["evidence"]["trains"][0]["policies_disagree"] is True


def test_tiny_first_tcp_fragment_but_not_udp_or_16_bytes(tmp_path: Path) -> None:
    tcp = struct.pack("!HHIIBBHHH", 40001, 80, 1000, 0, 5 << 4, 0x02, 1024, 0, 0)
    tiny = [frag4("192.0.2.3", "198.51.100.3", 2, 0, True, tcp[:8], T0, 6),
            frag4("192.0.2.3", "198.51.100.3", 2, 1, False, tcp[8:], T0 + 0.001, 6)]  # fmt: skip
    found = run(tmp_path, tiny)
    assert codes(found) == {"tiny_fragment": "medium"}
    assert found[0]["evidence"]["min_transport_bytes"] == 8
    assert found[0]["thresholds"] == {"rfc1858_tmin_bytes": 16}
    # 16 bytes hold the flags: not tiny; UDP is never tiny
    ok = [frag4("192.0.2.3", "198.51.100.3", 3, 0, True, tcp[:16], T0, 6),
          frag4("192.0.2.3", "198.51.100.3", 3, 2, False, tcp[16:], T0 + 0.001, 6),
          frag4("192.0.2.3", "198.51.100.3", 4, 0, True, udp(b"")[:8], T0 + 1),
          frag4("192.0.2.3", "198.51.100.3", 4, 1, False, b"12345678", T0 + 1.001)]  # fmt: skip
    assert run(tmp_path, ok, "ok.pcap") == []


def test_ping_of_death_does_not_crash_and_is_reported(tmp_path: Path) -> None:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"P" * 65_600
    pkts = [frag4("192.0.2.4", "198.51.100.4", 3, off // 8, off + 1480 < len(icmp), icmp[off : off + 1480],
                  T0 + i * 0.001, 1) for i, off in enumerate(range(0, len(icmp), 1480))]  # fmt: skip
    path = tmp_path / "pod.pcap"
    wrpcap(str(path), pkts)
    report = analyze(str(path))
    found = [f for f in report["findings"]["items"] if f["detector"] == "fragmentation"]
    assert codes(found) == {"oversize_datagram": "high"}
    assert found[0]["evidence"]["max_datagram_end"] == 20 + len(icmp)
    assert report["fragments"]["counters"]["trains_not_reassembled_oversize"] == 1
    # 65,515 bytes of payload + 20 of header is the largest legal datagram
    legal = normal_train("192.0.2.4", "198.51.100.4", 4, 65_515, T0)
    assert run(tmp_path, legal, "legal.pcap") == []


# --- floods --------------------------------------------------------------------------------


def flood(n: int, step: float, dst: str = "198.51.100.50", first_id: int = 0) -> list[Any]:
    return [frag4(f"203.0.113.{i % 200 + 1}", dst, first_id + i, 0, True, bytes(64), T0 + i * step)
            for i in range(n)]  # fmt: skip


def test_fragment_flood_thresholds_and_window(tmp_path: Path) -> None:
    found = run(tmp_path, flood(150, 0.01))
    assert codes(found) == {"fragment_flood": "medium"}
    f = found[0]
    assert f["evidence"]["incomplete_in_window"] == 150 and f["sources_total"] == 150
    assert f["technique"]["id"] == "T1499.001" and f["destinations"] == ["198.51.100.50"]
    assert f["thresholds"]["flood_min_incomplete"] == 100
    # the same 150 spread over 150 minutes: never 100 in 60 s
    assert run(tmp_path, flood(150, 60.0), "slow.pcap") == []
    # 99 is below the threshold
    assert run(tmp_path, flood(99, 0.01), "few.pcap") == []


def test_flood_threshold_from_config(tmp_path: Path) -> None:
    pkts = flood(60, 0.01)
    assert run(tmp_path, pkts) == []
    found = run(tmp_path, pkts, "b.pcap", "[detectors.fragmentation]\nflood_min_incomplete = 50\n"
                "flood_high_incomplete = 55\n")  # fmt: skip
    assert codes(found) == {"fragment_flood": "high"}
    cfg = config_from_dict({"detectors": {"fragmentation": {"flood_window_s": 0.2}}}, detector_classes())
    assert cfg.thresholds["fragmentation"].flood_window_s == 0.2
    det = Detectors(cfg)
    assert any(d.name == "fragmentation" for d in det.active)


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="flood_min_incomplete"):
        FragmentationThresholds(flood_min_incomplete=0)
    with pytest.raises(ValueError, match="flood_high_incomplete"):
        FragmentationThresholds(flood_min_incomplete=10, flood_high_incomplete=5)
    with pytest.raises(ValueError, match="flood_window_s"):
        FragmentationThresholds(flood_window_s=0)
    with pytest.raises(ValueError, match="max_destinations"):
        FragmentationThresholds(max_destinations=0)


# --- negatives -----------------------------------------------------------------------------


def test_ordinary_fragmentation_is_quiet(tmp_path: Path) -> None:
    pkts: list[Any] = []
    for n in range(30):
        pkts += normal_train("198.51.100.53", "192.0.2.10", 1000 + n, 1800 + 97 * n, T0 + n)
        pkts += normal_train("192.0.2.10", "198.51.100.1", 2000 + n, 4008, T0 + n + 0.5, 1)
    # out of order and a capture that starts and ends mid-train
    pkts[3], pkts[4] = pkts[4], pkts[3]
    pkts = pkts[1:-1]
    assert run(tmp_path, pkts) == []


# --- samples, merge ------------------------------------------------------------------------


def _tracker_for(tmp_path: Path, packets: list[Any], name: str) -> Any:
    from netsift.pipeline import analyze as _analyze

    path = tmp_path / name
    wrpcap(str(path), packets)
    captured: dict[str, Any] = {}
    original = FragmentationDetector.finish

    def spy(self: FragmentationDetector, ctx: FinishContext) -> Any:
        captured["tracker"] = ctx.fragments
        return original(self, ctx)

    FragmentationDetector.finish = spy  # type: ignore[method-assign]
    try:
        _analyze(str(path))
    finally:
        FragmentationDetector.finish = original  # type: ignore[method-assign]
    return captured["tracker"]


def test_merge_equals_one_run(tmp_path: Path) -> None:
    samples = {s.name: s.build() for s in FragmentationDetector.samples()}
    first = samples["overlap_evasion"] + samples["teardrop"] + flood(80, 0.01)
    second = samples["tiny_syn"] + samples["ipv6_overlap"] + flood(80, 0.01, first_id=1000)
    for i, p in enumerate(first + second):
        p.time = T0 + i * 0.01  # one timeline, the halves back to back
    ta = _tracker_for(tmp_path, first, "a.pcap")
    tb = _tracker_for(tmp_path, second, "b.pcap")
    tw = _tracker_for(tmp_path, first + second, "w.pcap")
    a, b, whole = FragmentationDetector(), FragmentationDetector(), FragmentationDetector()
    a.absorb(ta)
    b.absorb(tb)
    a.merge(b)
    whole.absorb(tw)

    def key(f: Any) -> Any:
        j = f.to_json()
        j.pop("packets")  # frame numbers restart in the second file
        return j

    merged, one = [key(f) for f in a.findings()], [key(f) for f in whole.findings()]
    # 160 incomplete trains: a flood only when both halves are counted together
    assert {f["code"] for f in merged} >= {"fragment_flood", "teardrop", "tiny_fragment",
                                           "ipv6_fragment_overlap", "fragment_overlap_conflicting"}  # fmt: skip
    # frame numbers differ between one file and two: compare everything else
    for m, o in zip(merged, one, strict=True):
        for f in (m, o):
            f["evidence"].pop("trains", None)
            f["evidence"].pop("datagram_ids", None)
        assert m == o


# --- corpus --------------------------------------------------------------------------------

SV = "suricata-verify/tests/"
#: capture -> the code it must produce (Suricata's expected event in brackets)
CORPUS_POSITIVES = {
    SV + "ipv6-evasion/ipv6-malformed-fragments-1/frag-1.pcap": "ipv6_fragment_overlap",  # [ipv6.frag_overlap]
    SV + "ipv6-evasion/ipv6-malformed-fragments-2/frag-2.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-3/frag-3.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-4/frag-4.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-6/frag-6.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-7/frag-7.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-8/frag-8.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-17/frag-17.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-18/frag-18.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-29/frag-29.pcap": "ipv6_fragment_overlap",
    SV + "ipv6-evasion/ipv6-malformed-fragments-15/frag-15.pcap": "oversize_datagram",  # [ipv6.frag_pkt_too_large]
    SV + "ipv6-evasion/ipv6-malformed-fragments-16/frag-16.pcap": "oversize_datagram",
    SV + "ipv6-evasion/ipv6-malformed-fragments-31/frag-31.pcap": "oversize_datagram",
    SV + "ipv6-evasion/ipv6-malformed-fragments-32/frag-32.pcap": "oversize_datagram",
    SV + "ipv6-evasion/ipv6-malformed-fragments-33/frag-33.pcap": "oversize_datagram",
    SV + "ipv6-evasion/ipv6-malformed-fragments-22/frag-22.pcap": "fragment_invalid_length",  # [frag_invalid_length]
    SV + "ipv6-evasion/ipv6-malformed-fragments-23/frag-23.pcap": "fragment_invalid_length",
    SV + "ipv6-evasion/ipv6-malformed-fragments-24/frag-24.pcap": "fragment_invalid_length",
    # Suricata ipv6.exthdr_useless_fh (9-12 also duplicated, 25-28 also truncated extension headers)
    **{SV + f"ipv6-evasion/ipv6-malformed-fragments-{n}/frag-{n}.pcap": "ipv6_atomic_fragment"
       for n in (9, 10, 11, 12, 25, 26, 27, 28)},
    SV + "ipv6-evasion/ipv6-dos-with-ext-headers-6/denial6-6.pcap": "fragment_flood",  # THC denial6 test 6
    SV + "defrag/bug-6887-defrag-ipv4-tcp-syn/frag-ip-tcp-syn.pcap": "tiny_fragment",  # 8-byte first fragment
    # Zeek's crafted reassembly traces: overlaps with different bytes (Zeek: fragment_inconsistency)
    "zeek/testing/btest/Traces/ipv4/fragmented-1.pcap": "fragment_overlap_conflicting",
    "zeek/testing/btest/Traces/ipv4/fragmented-4.pcap": "fragment_overlap_conflicting",
}

CORPUS_NEGATIVES = [
    "chrissanders-packets/ip_frag_source.pcapng",
    "chrissanders-packets/ipv6_fragments.pcapng",
    "chrissanders-packets/http_google.pcapng",
    "chrissanders-packets/dns_query_response.pcapng",
    "chrissanders-packets/icmp_echo.pcapng",
    "zeek/testing/btest/Traces/ipv4/fragmented-2.pcap",
    "zeek/testing/btest/Traces/ipv4/fragmented-3.pcap",
    "zeek/testing/btest/Traces/ipv4/fragmented-syn.pcap",
    "zeek/testing/btest/Traces/ipv6-fragmented-dns.pcap",
    "zeek/testing/btest/Traces/ipv6-http-atomic-frag.pcap",
    "zeek/testing/btest/Traces/ipv6-reassembly-state-leak.pcap",
    "zeek/testing/btest/Traces/tunnels/gtp/gtp1_gn_normal_incl_fragmentation.pcap",
    "zeek/testing/btest/Traces/dns-edns-cookie.pcap",
    "zeek/testing/btest/Traces/http/100-continue.pcap",
    "arkime/tests/pcap/dns-udp.pcap",
    "arkime/tests/pcap/http-content-gzip.pcap",
    "arkime/tests/pcap/6-4-gre-ppp-udp-4-dns.pcap",
    "foxio-ja4/pcap/tls-handshake.pcapng",
    "foxio-ja4/pcap/quic-tls-handshake.pcapng",
    "foxio-ja4/pcap/ipv6.pcapng",
]


def _fired(corpus_dir: Path, rel: str) -> list[dict[str, Any]]:
    report = analyze(str(corpus_dir / rel))
    return [f for f in report["findings"]["items"] if f["detector"] == "fragmentation"]


@pytest.mark.corpus
@pytest.mark.parametrize("rel,code", sorted(CORPUS_POSITIVES.items()))
def test_corpus_positives(corpus_dir: Path, rel: str, code: str) -> None:
    found = _fired(corpus_dir, rel)
    print(f"{rel} -> {sorted((f['code'], f['severity']) for f in found)}")
    assert code in codes(found)


@pytest.mark.corpus
def test_corpus_negatives(corpus_dir: Path) -> None:
    rows = []
    for rel in CORPUS_NEGATIVES:
        if not (corpus_dir / rel).exists():
            continue
        found = _fired(corpus_dir, rel)
        rows.append((rel, sorted((f["code"], f["severity"]) for f in found)))
    print("\n".join(f"{rel} -> {fired}" for rel, fired in rows))
    assert len(rows) >= 15
    loud = [(rel, fired) for rel, fired in rows if any(sev in ("high", "critical") for _, sev in fired)]
    assert loud == []


def test_invalid_length_and_atomic_fragments(tmp_path: Path) -> None:
    """A non-last fragment of 13 bytes (not a multiple of 8; RFC 791 / RFC 8200) and an IPv6
    atomic fragment (RFC 6946 / RFC 8021) each get their code; an ordinary train neither."""
    odd = [frag4("10.0.0.1", "10.0.0.2", 7, 0, True, udp(b"x" * 5), 1.0),
           frag4("10.0.0.1", "10.0.0.2", 7, 2, False, b"y" * 16, 1.001)]  # fmt: skip
    atomic = [frag6("2001:db8::1", "2001:db8::2", 9, 0, 0, udp(b"hello"), 2.0)]
    found = codes(run(tmp_path, odd + atomic + normal_train("10.0.0.3", "10.0.0.4", 8, 3000, 3.0)))
    assert found == {"fragment_invalid_length": "medium", "ipv6_atomic_fragment": "low"}
    items = run(tmp_path, odd, "odd.pcap")
    assert items[0]["evidence"]["fragment_lengths"] == [13] and items[0]["packets"][0]["frames"] == [1]
