"""The encrypted_dns detector: DoT/DoQ/DoH sessions per host against its plaintext DNS."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

import netsift.pipeline
from netsift.detect import Detectors, FinishContext, detector_classes
from netsift.detect.config import config_from_dict
from netsift.detect.encrypted_dns import (
    EncryptedDns,
    EncryptedDnsThresholds,
    client_hello,
    dns_exchange,
    tls_session,
)
from netsift.errors import UsageError
from netsift.pipeline import analyze

T0 = 1_700_000_000.0
HOST = "192.168.7.20"


def findings(path: Path, config_path: str | None = None) -> list[dict[str, Any]]:
    report = analyze(str(path), config_path=config_path)
    return [f for f in report["findings"]["items"] if f["detector"] == "encrypted_dns"]


def write(tmp_path: Path, pkts: list[Any], name: str = "c.pcap") -> Path:
    path = tmp_path / name
    wrpcap(str(path), sorted(pkts, key=lambda p: float(p.time)))
    return path


def plaintext(n: int, host: str = HOST, t: float = T0) -> list[Any]:
    rng = random.Random(3)
    out: list[Any] = []
    for i in range(n):
        out += dns_exchange(host, "192.168.7.1", 20000 + i, rng.randrange(65536), f"h{i}.example.org", t + i * 0.5)
    return out


def quic_initial(client: str, server: str, sport: int, dport: int, t: float, n: int) -> list[Any]:
    """UDP datagrams shaped like QUIC (long header); content is not a parsable Initial."""
    out = []
    for i in range(n):
        p = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=client, dst=server)
             / UDP(sport=sport, dport=dport) / Raw(b"\xc0\x00\x00\x00\x01" + bytes(200)))  # fmt: skip
        r = (Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(src=server, dst=client)
             / UDP(sport=dport, dport=sport) / Raw(b"\x40" + bytes(300)))  # fmt: skip
        p.time, r.time = t + i, t + i + 0.01
        out += [p, r]
    return out


# -- crafted captures -------------------------------------------------------------------
def test_dot_by_port_only_is_dominant_and_medium(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "8.8.8.8", 41000, 853, T0, client_hello("dns.google"), 30)
    (f,) = findings(write(tmp_path, pkts))
    assert f["code"] == "encrypted_dns_dominant"
    assert f["severity"] == "medium"
    assert f["technique"]["id"] == "T1071.004"
    assert f["sources"] == [HOST]
    assert f["destinations"] == ["8.8.8.8"]
    ev = f["evidence"]
    assert ev["sessions"] == {"dot": 1}
    assert ev["recognised_by"] == {"port": 1}
    assert ev["plaintext_dns_queries"] == 0
    assert ev["hidden_share"] == 1.0
    # 30 requests of 90 bytes plus the hello, less the handshake allowance
    assert ev["hidden_lookups_estimate"] == (ev["client_bytes"] - 600) // 120
    assert ev["resolver_names"] == ["dns.google"]
    assert f["packets"][0]["frames"] == [1]
    assert f["packets_total"] == 1


def test_doh_by_sni_to_an_unlisted_address(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "203.0.113.9", 41001, 443, T0, client_hello("dns.quad9.net", ("h2",)), 40)
    (f,) = findings(write(tmp_path, pkts))
    assert f["code"] == "encrypted_dns_dominant"
    assert f["evidence"]["sessions"] == {"doh": 1}
    assert f["evidence"]["recognised_by"] == {"sni": 1}
    assert f["evidence"]["h2_or_h3_sessions"] == 1


def test_doh_by_resolver_address_without_sni(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "1.0.0.1", 41002, 443, T0, client_hello(None, ("h2",)), 40)
    (f,) = findings(write(tmp_path, pkts))
    assert f["evidence"]["recognised_by"] == {"address": 1}
    assert f["destinations"] == ["1.0.0.1"]


def test_wildcard_resolver_name(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "203.0.113.10", 41003, 443, T0, client_hello("abc123.dns.nextdns.io"), 40)
    (f,) = findings(write(tmp_path, pkts))
    assert f["evidence"]["recognised_by"] == {"sni": 1}


def test_dot_by_alpn_on_another_port(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "203.0.113.11", 41004, 8853, T0, client_hello("resolver.example", ("dot",)), 40)
    (f,) = findings(write(tmp_path, pkts))
    assert f["evidence"]["sessions"] == {"dot": 1}
    assert f["evidence"]["recognised_by"] == {"alpn": 1}


def test_doq_by_udp_port(tmp_path: Path) -> None:
    pkts = quic_initial(HOST, "94.140.14.14", 41005, 853, T0, 20)
    (f,) = findings(write(tmp_path, pkts))
    assert f["evidence"]["sessions"] == {"doq": 1}
    assert f["evidence"]["packets"] == 40


def test_resolver_address_serving_another_name_is_not_doh(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "8.8.8.8", 41006, 443, T0, client_hello("www.example.com", ("h2",)), 40)
    assert findings(write(tmp_path, pkts)) == []


def test_ordinary_https_and_dns_stay_quiet(tmp_path: Path) -> None:
    pkts = plaintext(20)
    pkts += tls_session(HOST, "93.184.216.34", 41007, 443, T0 + 30, client_hello("www.example.com", ("h2",)), 40)
    pkts += tls_session(HOST, "203.0.113.12", 41008, 8443, T0 + 40, client_hello("api.example.net"), 10)
    assert findings(write(tmp_path, pkts)) == []


def test_plaintext_majority_is_only_info(tmp_path: Path) -> None:
    pkts = plaintext(80)
    pkts += tls_session(HOST, "8.8.8.8", 41009, 853, T0 + 100, client_hello("dns.google"), 20)
    (f,) = findings(write(tmp_path, pkts))
    assert f["code"] == "encrypted_dns_seen"
    assert f["severity"] == "info"
    assert f["technique"] is None
    assert f["evidence"]["plaintext_dns_queries"] == 80
    assert f["evidence"]["plaintext_dns_responses"] == 80
    assert f["evidence"]["hidden_share"] < 0.5


def test_mixed_host_is_low_between_the_shares(tmp_path: Path) -> None:
    pkts = plaintext(10)
    pkts += tls_session(HOST, "8.8.8.8", 41010, 853, T0 + 100, client_hello("dns.google"), 40)
    (f,) = findings(write(tmp_path, pkts))
    ev = f["evidence"]
    assert 0.5 <= ev["hidden_share"] < 0.9
    assert (f["code"], f["severity"]) == ("encrypted_dns_dominant", "low")


def test_one_probe_session_is_not_dominant(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "8.8.8.8", 41011, 853, T0, client_hello("dns.google"), 1)
    (f,) = findings(write(tmp_path, pkts))
    assert f["code"] == "encrypted_dns_seen"
    assert f["evidence"]["hidden_lookups_estimate"] < 10


def test_hosts_are_separate_findings_with_stable_ids(tmp_path: Path) -> None:
    pkts = tls_session("10.1.1.1", "8.8.8.8", 41012, 853, T0, client_hello("dns.google"), 30)
    pkts += tls_session("10.1.1.2", "9.9.9.9", 41013, 853, T0 + 1, client_hello("dns.quad9.net"), 30)
    path = write(tmp_path, pkts)
    first = findings(path)
    assert sorted(f["sources"][0] for f in first) == ["10.1.1.1", "10.1.1.2"]
    assert [f["id"] for f in findings(path)] == [f["id"] for f in first]


def test_host_cap_is_reported(tmp_path: Path) -> None:
    pkts = tls_session("10.1.1.1", "8.8.8.8", 41014, 853, T0, client_hello("dns.google"), 30)
    pkts += tls_session("10.1.1.2", "9.9.9.9", 41015, 853, T0 + 1, client_hello("dns.quad9.net"), 30)
    toml = tmp_path / "c.toml"
    toml.write_text("[detectors.encrypted_dns]\nmax_hosts = 1\n")
    (f,) = findings(write(tmp_path, pkts), str(toml))
    assert f["evidence"]["hosts_cap_reached"] is True
    assert f["evidence"]["sessions_untracked"] == 1


# -- merge --------------------------------------------------------------------------------
def _run_holding(monkeypatch: pytest.MonkeyPatch, path: Path, det: Detectors) -> dict[str, Any]:
    monkeypatch.setattr(netsift.pipeline.Detectors, "from_file", classmethod(lambda cls, p: det))
    return analyze(str(path)).data


def test_merge_of_a_split_run_equals_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part_a = plaintext(15, "10.2.0.1") + tls_session("10.2.0.1", "8.8.8.8", 42000, 853, T0 + 50,
                                                       client_hello("dns.google"), 25)  # fmt: skip
    part_a += tls_session("10.2.0.2", "1.1.1.1", 42001, 443, T0 + 60, client_hello(None, ("h2",)), 25)
    part_b = plaintext(30, "10.2.0.2", T0 + 1000) + tls_session("10.2.0.1", "9.9.9.9", 42002, 853, T0 + 1100,
                                                                client_hello("dns.quad9.net"), 25)  # fmt: skip
    part_b += tls_session("10.2.0.3", "8.8.4.4", 42003, 853, T0 + 1200, client_hello("dns.google"), 3)
    classes = {"encrypted_dns": EncryptedDns}
    a, b, whole = Detectors(classes=classes), Detectors(classes=classes), Detectors(classes=classes)
    _run_holding(monkeypatch, write(tmp_path, part_a, "a.pcap"), a)
    _run_holding(monkeypatch, write(tmp_path, part_b, "b.pcap"), b)
    report = _run_holding(monkeypatch, write(tmp_path, part_a + part_b, "ab.pcap"), whole)
    a.merge(b)
    ctx = FinishContext(report, None, [])
    merged = [f.to_json() for f in a.finish(ctx)]
    single = [f.to_json() for f in whole.finish(ctx)]
    assert len(single) == 3
    # frame numbers differ between the split files and the whole one; everything else matches
    for f in merged + single:
        f.pop("packets")
    assert merged == single


# -- configuration ------------------------------------------------------------------------
def test_config_override_changes_the_outcome(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "8.8.8.8", 41020, 853, T0, client_hello("dns.google"), 30)
    cfg = config_from_dict({"detectors": {"encrypted_dns": {"min_hidden_lookups": 1000}}}, detector_classes())
    det = Detectors(cfg, {"encrypted_dns": EncryptedDns})
    assert det.active[0].t.min_hidden_lookups == 1000
    path = write(tmp_path, pkts)
    assert [f["code"] for f in findings(path)] == ["encrypted_dns_dominant"]
    toml = tmp_path / "c.toml"
    toml.write_text("[detectors.encrypted_dns]\nmin_hidden_lookups = 1000\n")
    assert [f["code"] for f in findings(path, str(toml))] == ["encrypted_dns_seen"]


def test_extra_resolver_name_from_config(tmp_path: Path) -> None:
    pkts = tls_session(HOST, "10.9.9.9", 41021, 443, T0, client_hello("doh.corp.example", ("h2",)), 30)
    path = write(tmp_path, pkts)
    assert findings(path) == []
    toml = tmp_path / "c.toml"
    toml.write_text('[detectors.encrypted_dns]\nextra_resolver_names = ["doh.corp.example"]\n')
    (f,) = findings(path, str(toml))
    assert f["evidence"]["recognised_by"] == {"sni": 1}


@pytest.mark.parametrize("values", [
    {"dot_ports": [0]}, {"resolver_addresses": ["not-an-ip"]}, {"min_hidden_share": 0.0},
    {"min_hidden_share": 0.95, "medium_hidden_share": 0.9}, {"bytes_per_lookup": 0}, {"handshake_bytes": -1},
    {"extra_resolver_names": ["*."]},
])  # fmt: skip
def test_bad_thresholds_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        config_from_dict({"detectors": {"encrypted_dns": values}}, detector_classes())
    with pytest.raises(ValueError, match=next(iter(values)) if len(values) == 1 else "medium_hidden_share"):
        EncryptedDnsThresholds(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# -- the corpus -----------------------------------------------------------------------------
NDPI = "ndpi/tests/cfgs/default/pcap/"
POSITIVES = {
    NDPI + "googledns_android10.pcap": "encrypted_dns_dominant",  # DoT to 8.8.4.4/8.8.8.8:853, SNI dns.google
    NDPI + "doh.pcapng": "encrypted_dns_dominant",  # Firefox DoH to 1.1.1.1:443, no SNI, h2
    NDPI + "doq_adguard.pcapng": "encrypted_dns_dominant",  # DoQ draft to AdGuard on UDP 784
    NDPI + "dnscrypt-v2-doh.pcap": "encrypted_dns_seen",  # dnscrypt-proxy DoH: 3 of 34 resolvers listed
}
NEGATIVES = [
    "chrissanders-packets", "arkime/tests/pcap", "foxio-ja4/pcap", "zeek/testing/btest/Traces/http",
    "zeek/testing/btest/Traces/dns", "zeek/testing/btest/Traces/tls", "zeek/testing/btest/Traces/smtp",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(POSITIVES))
def test_corpus_positives(corpus_dir: Path, name: str) -> None:
    got = findings(corpus_dir / name)
    print(f"\n{name} -> {', '.join(f['code'] + ':' + f['severity'] for f in got) or '-'}")
    assert POSITIVES[name] in {f["code"] for f in got}


@pytest.mark.corpus
def test_corpus_negatives_have_no_high_finding(corpus_dir: Path) -> None:
    table: list[str] = []
    loud: list[str] = []
    for d in NEGATIVES:
        for path in sorted((corpus_dir / d).iterdir()):
            if path.suffix not in (".pcap", ".pcapng"):
                continue
            got = findings(path)
            table.append(f"{path.relative_to(corpus_dir)} -> {', '.join(f['code'] + ':' + f['severity'] for f in got) or '-'}")
            loud += [f"{path.name}: {f['summary']}" for f in got if f["severity"] in ("high", "critical")]
    print("\n" + "\n".join(t for t in table if not t.endswith("-> -")))
    print(f"{len(table)} captures, {sum(not t.endswith('-> -') for t in table)} with findings")
    assert len(table) > 200
    assert loud == []
