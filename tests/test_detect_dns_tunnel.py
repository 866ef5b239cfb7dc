"""The dns_tunnel detector: crafted captures, samples, merge, config, allowlist and the corpus."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from scapy.utils import wrpcap

from netsift.detect import Detectors, detector_classes
from netsift.detect.base import DnsEvents, FinishContext
from netsift.detect.config import config_from_dict
from netsift.detect.dns_tunnel import (
    Allowlist,
    DnsTunnelDetector,
    TunnelThresholds,
    _dns_pair,
    _pair_rank,
    entropy_ratio,
    name_length,
    name_shape,
)
from netsift.errors import UsageError
from netsift.pipeline import analyze

B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in report["findings"]["items"] if i["detector"] == "dns_tunnel"]


def _run(tmp_path: Path, pkts: list[Any], config: Path | None = None) -> list[dict[str, Any]]:
    path = tmp_path / "c.pcap"
    wrpcap(str(path), pkts)
    return _findings(analyze(str(path), config_path=None if config is None else str(config)))


def _tunnel(n: int, seed: int = 1, qtype: int = 16, client: str = "10.1.0.5", domain: str = "tun.example.com",
            label_len: int = 40, start: float = 1_700_000_000.0, step: float = 1.0,
            alphabet: str = "0123456789abcdef") -> list[Any]:  # fmt: skip
    rng = random.Random(seed)
    pkts: list[Any] = []
    for i in range(n):
        label = "".join(rng.choice(alphabet) for _ in range(label_len))
        pkts += _dns_pair(start + i * step, client, "10.1.0.53", 10000 + i % 50000, i & 0xFFFF,
                          f"{label}.{domain}", qtype)  # fmt: skip
    return pkts


def _ordinary(n: int, seed: int = 2, client: str = "10.1.0.9") -> list[Any]:
    rng = random.Random(seed)
    hosts = ["www", "mail", "api", "static", "cdn", "login", "docs", "img", "news", "shop"]
    domains = ["example.com", "example.org", "python.org", "wikipedia.org", "github.com"]
    pkts: list[Any] = []
    for i in range(n):
        pkts += _dns_pair(1_700_000_000.0 + i, client, "10.1.0.53", 20000 + i, i,
                          f"{rng.choice(hosts)}.{rng.choice(domains)}", rng.choice([1, 28]))  # fmt: skip
    return pkts


# -- crafted captures ---------------------------------------------------------------------------


def test_hex_txt_tunnel_fires(tmp_path: Path) -> None:
    items = _run(tmp_path, _tunnel(60))
    assert [i["code"] for i in items] == ["dns_tunnel"]
    f = items[0]
    assert f["sources"] == ["10.1.0.5"] and f["destinations"] == ["10.1.0.53"]
    assert f["evidence"]["registered_domain"] == "example.com"
    assert f["technique"]["id"] == "T1071.004"
    comps = {c["component"]: c for c in f["evidence"]["components"]}
    assert comps["encoded_share"]["points"] == 2 and comps["txt_mx_cname_share"]["points"] == 1
    assert f["evidence"]["score"] == sum(c["points"] for c in comps.values())
    assert f["evidence"]["encoded_shapes"] == {"hex": 60}
    assert f["packets_total"] == 60 and 0 < sum(len(p["frames"]) for p in f["packets"]) <= 50


def test_null_base32_tunnel_is_high_with_rate(tmp_path: Path) -> None:
    items = _run(tmp_path, _tunnel(300, qtype=10, alphabet=B32, label_len=60, step=0.1))
    codes = {i["code"]: i["severity"] for i in items}
    assert codes["dns_tunnel"] in ("high", "critical")
    assert codes["dns_txt_null_rate"] == "low"


def test_volume_of_names_is_exfiltration(tmp_path: Path) -> None:
    # 1,200 queries of two 60-char labels: ~145 kB of subdomain bytes
    rng = random.Random(5)
    pkts: list[Any] = []
    for i in range(1200):
        sub = ".".join("".join(rng.choice(B32) for _ in range(60)) for _ in range(2))
        pkts += _dns_pair(1_700_000_000.0 + i * 0.2, "10.1.0.5", "10.1.0.53", 10000 + i, i, f"{sub}.x.example.net", 1)
    items = _run(tmp_path, pkts)
    ex = [i for i in items if i["code"] == "dns_exfiltration"]
    assert len(ex) == 1 and ex[0]["severity"] in ("high", "critical")
    assert ex[0]["technique"]["id"] == "T1048.003"
    assert ex[0]["evidence"]["subdomain_bytes_sent"] >= 100_000
    assert not [i for i in items if i["code"] == "dns_tunnel"]


def test_ordinary_lookups_are_quiet(tmp_path: Path) -> None:
    assert _run(tmp_path, _ordinary(400)) == []


def test_few_queries_are_not_scored(tmp_path: Path) -> None:
    assert _run(tmp_path, _tunnel(9)) == []


def test_allowlisted_classes_are_quiet(tmp_path: Path) -> None:
    rng = random.Random(9)
    pkts: list[Any] = []
    zones = ["dscb.akamaiedge.net", "cloudfront.net", "_domainkey.example.com", "zen.spamhaus.org",
             "ip6.arpa", "local", "sophosxl.net"]  # fmt: skip
    for i in range(700):
        label = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        pkts += _dns_pair(1_700_000_000.0 + i, "10.1.0.5", "10.1.0.53", 10000 + i, i,
                          f"{label}.{zones[i % len(zones)]}", 16)  # fmt: skip
    items = _run(tmp_path, pkts)
    # the Sigma rate rules count every query (allowlisted too); the tunnel score skips them
    assert [i["code"] for i in items] == ["dns_txt_null_rate"]
    assert items[0]["severity"] == "low"


def test_cdn_like_hashed_names_below_the_score(tmp_path: Path) -> None:
    # hashed A lookups of short-ish labels to one unknown CDN: encoded but nothing else
    items = _run(tmp_path, _tunnel(50, qtype=1, label_len=16))
    assert all(i["severity"] in ("info", "low") for i in items)


def test_public_resolver_is_named(tmp_path: Path) -> None:
    rng = random.Random(3)
    pkts: list[Any] = []
    for i in range(40):
        label = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        pkts += _dns_pair(1_700_000_000.0 + i, "10.1.0.5", "1.1.1.1", 10000 + i, i, f"{label}.tun.example.com", 16)
    (f,) = _run(tmp_path, pkts)
    assert f["evidence"]["public_resolvers"] == {"1.1.1.1": "Cloudflare"}


# -- pieces ------------------------------------------------------------------------------------


def test_allowlist_wildcard_semantics() -> None:
    a = Allowlist(["example.com", "*.corp.example"])
    assert a.match("example.com") == "example.com"
    assert a.match("a.b.example.com") == "example.com"
    assert a.match("notexample.com") is None
    assert a.match("corp.example") is None  # *.zone: subdomains only
    assert a.match("x.corp.example") == "*.corp.example"
    assert a.match("printer._ipp._tcp.local") is not None
    assert a.match("s1._domainkey.example.org") is not None
    assert a.match("wpad.anything.test") is not None
    assert a.match("wpadx.anything.test") is None


def test_shapes_and_entropy() -> None:
    assert name_shape("147901b8d3df9cc46c59d600078b3316ce", 16) == "hex"
    assert name_shape("laczi1dwmfbaywb0fm5xhkrgz0heotzq", 16) == "base32"
    assert name_shape("aAbBcC0123dDeEfFgG", 16) == "base64"
    assert name_shape("ab\\200cd", 16) == "binary"
    assert name_shape("mozillafirefoxsettings", 16) == ""
    assert name_shape("deadbeef", 16) == ""  # too short
    assert entropy_ratio("147901b8d3df9cc46c59d600078b3316ce") > 0.93
    assert entropy_ratio("mozillafirefoxsettingsservices") < 0.93
    assert name_length("a\\200b.example") == len("axb.example")


def test_thresholds_validate() -> None:
    with pytest.raises(ValueError, match="min_queries"):
        TunnelThresholds(min_queries=0)
    with pytest.raises(ValueError, match="encoded_share"):
        TunnelThresholds(encoded_share=1.5)
    with pytest.raises(ValueError, match="allow_domains"):
        TunnelThresholds(allow_domains=("*.",))


# -- samples -----------------------------------------------------------------------------------


# -- merge -------------------------------------------------------------------------------------


def _feed(det: DnsTunnelDetector, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Analyse ``path`` with ``det`` as the run's only detector."""
    classes: dict[str, type[Any]] = {"dns_tunnel": DnsTunnelDetector}
    ds = Detectors(config_from_dict({}, classes), classes)
    ds.active = [det]
    ds._on_dns = [det]
    with monkeypatch.context() as m:
        m.setattr(Detectors, "from_file", classmethod(lambda cls, _path: ds))
        analyze(str(path))


def test_merge_equals_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkts = _tunnel(120, step=0.5) + _tunnel(80, seed=4, qtype=10, alphabet=B32, client="10.1.0.6", step=0.3)
    pkts += _ordinary(100)
    pkts.sort(key=lambda p: float(p.time))
    half = len(pkts) // 2 + 1  # splits a query from its response
    for name, part in (("a", pkts[:half]), ("b", pkts[half:]), ("all", pkts)):
        wrpcap(str(tmp_path / f"{name}.pcap"), part)
    a, b, one = DnsTunnelDetector(), DnsTunnelDetector(), DnsTunnelDetector()
    _feed(a, tmp_path / "a.pcap", monkeypatch)
    _feed(b, tmp_path / "b.pcap", monkeypatch)
    _feed(one, tmp_path / "all.pcap", monkeypatch)
    a.merge(b)
    ctx = FinishContext(report={}, fragments=None, inputs=[])
    merged = [f.to_json() for f in a.finish(ctx)]
    whole = [f.to_json() for f in one.finish(ctx)]
    assert merged and {f["code"] for f in whole} >= {"dns_tunnel"}
    # frames are per file: compare everything but the frame numbers' file
    for m in merged + whole:
        m.pop("packets")
    assert merged == whole


def _events(rows: list[tuple[int, int, str, int]]) -> DnsEvents:
    """Queries (client host number, domain number, label, ts) as one batch of DnsEvents."""
    names = [f"{label}.d{dom}.example" for _, dom, label, _ in rows]
    n = len(rows)
    return DnsEvents(
        ts_ns=[ts for *_, ts in rows], file_index=[0] * n, frame=[ts for *_, ts in rows],
        client=[(0, 0x0A000000 + c) for c, *_ in rows], server=[(0, 0x0A0000FE)] * n, server_port=[53] * n,
        transport=["udp"] * n, response=[False] * n, qname=list(names), qtype=[16] * n, rcode=[0] * n,
        answers=[()] * n, size=[40 + len(x) for x in names],
    )  # fmt: skip


def _held(det: DnsTunnelDetector) -> dict[Any, tuple[Any, ...]]:
    return {k: (p.queries, p.name_bytes, dict(p.qtypes), sorted(p.names.items()), p.first_ns, p.last_ns)
            for k, p in det.pairs.items()}  # fmt: skip


def test_pairs_at_their_bound_do_not_depend_on_order_or_split() -> None:
    """Past ``max_pairs`` the table holds the lowest-ranked pairs, each whole: the same
    pairs, counts and dropped queries whatever the batches and however the run is split
    (the 5M benchmark capture has twice as many pairs as the default bound)."""
    rng = random.Random(7)
    rows = [(rng.randrange(6), rng.randrange(8), f"x{rng.randrange(40)}", 1_000 + i) for i in range(600)]
    t = TunnelThresholds(max_pairs=9)
    keys = {((0, 0x0A000000 + c), f"d{d}.example") for c, d, _, _ in rows}
    assert len(keys) > 3 * t.max_pairs  # the bound matters

    def run(batches: list[list[tuple[int, int, str, int]]]) -> DnsTunnelDetector:
        det = DnsTunnelDetector(t)
        for b in batches:
            det.dns(_events(b))
        return det

    one = run([rows[i : i + 50] for i in range(0, len(rows), 50)])
    lowest = sorted(keys, key=_pair_rank)[: t.max_pairs]
    assert set(one.pairs) == set(lowest)
    # every query is either in a held pair or counted as dropped
    assert sum(p.queries for p in one.pairs.values()) + one.pairs_dropped == len(rows)
    other = run([rows[i : i + 37] for i in range(0, len(rows), 37)])  # evictions at other moments
    assert _held(other) == _held(one) and other.pairs_dropped == one.pairs_dropped
    for parts in (2, 3):  # a split run: workers by flow, merged in order
        workers = [run([[r for r in rows[i : i + 50] if (r[0] * 31 + r[1] * 7 + len(r[2])) % parts == k]
                        for i in range(0, len(rows), 50)]) for k in range(parts)]  # fmt: skip
        merged = pickle.loads(pickle.dumps(workers[0]))
        for w in workers[1:]:
            merged.merge(pickle.loads(pickle.dumps(w)))
        assert _held(merged) == _held(one)
        assert merged.pairs_dropped == one.pairs_dropped
        assert merged.names_held == one.names_held == sum(len(p.names) for p in one.pairs.values())


# -- config ------------------------------------------------------------------------------------


def test_config_allow_domains_silences(tmp_path: Path) -> None:
    pkts = _tunnel(60)
    assert _run(tmp_path, pkts)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[detectors.dns_tunnel]\nallow_domains = ["*.tun.example.com"]\n')
    assert _run(tmp_path, pkts, cfg) == []


def test_config_threshold_override(tmp_path: Path) -> None:
    config = config_from_dict({"detectors": {"dns_tunnel": {"score_medium": 7, "score_high": 8}}},
                              detector_classes())  # fmt: skip
    assert config.thresholds["dns_tunnel"].score_medium == 7
    pkts = _tunnel(60)
    assert _run(tmp_path, pkts)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[detectors.dns_tunnel]\nscore_medium = 7\nscore_high = 8\n")
    assert _run(tmp_path, pkts, cfg) == []
    with pytest.raises(UsageError, match="min_queries"):
        config_from_dict({"detectors": {"dns_tunnel": {"min_queries": "x"}}}, detector_classes())


# -- corpus ------------------------------------------------------------------------------------

POSITIVES = [
    ("dmachard-datasets-malicious-dns/iodine.pcap", "dns_tunnel"),
    ("dmachard-datasets-malicious-dns/dnscat2.pcap", "dns_tunnel"),
    ("ndpi/tests/cfgs/default/pcap/dns-tunnel-iodine.pcap", "dns_tunnel"),
    # dnscat2 to its demo domain skullseclabs.org (hex labels spell "Welcome to dnscat!")
    ("ndpi/tests/cfgs/default/pcap/bad-dns-traffic.pcap", "dns_tunnel"),
]
NEGATIVES = [
    *(f"chrissanders-packets/{n}" for n in (
        "dns.pcap", "dns_axfr.pcapng", "dns_lab.pcapng", "dns_query_nonexistent.pcapng",
        "dns_query_response.pcapng", "dns_recursivequery_client.pcapng", "dns_recursivequery_server.pcapng",
        "dns_reverse_lookup.pcapng", "dns_tcp.pcapng", "udp_dnsrequest.pcapng", "http_google.pcapng",
        "ek_to_cryptowall4.pcapng", "ratinfected.pcapng", "stranded_branchdns.pcapng")),
    *(f"arkime/tests/pcap/{n}" for n in (
        "dns-caa.pcap", "dns-dnskey.pcap", "dns-error.pcap", "dns-https.pcap", "dns-mx.pcap",
        "dns-punycode.pcap", "dns-tcp.pcap", "dns-udp.pcap", "dns-wiresharkrepo.pcap", "dnssec_synthetic.pcap")),
    *(f"foxio-ja4/pcap/{n}" for n in ("tls12.pcap", "tls-handshake.pcapng", "dhcp.pcapng")),
    *(f"zeek/testing/btest/Traces/{n}" for n in (
        "dns-spf.pcap", "dns-txt-multiple.pcap", "dns-svcb.pcap", "dns53.pcap", "dns_original_case.pcap",
        "dns-edns-ecs.pcap", "ipv6-fragmented-dns.pcap")),
    "ndpi/tests/cfgs/default/pcap/googledns_android10.pcap",
]  # fmt: skip


@pytest.mark.corpus
def test_corpus_table(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[tuple[str, list[str]]] = []
    for rel, code in POSITIVES:
        items = _findings(analyze(str(corpus_dir / rel)))
        rows.append((rel, sorted(f"{i['code']}:{i['severity']}" for i in items)))
        assert any(i["code"] == code and i["severity"] in ("medium", "high", "critical") for i in items), rel
    for rel in NEGATIVES:
        path = corpus_dir / rel
        if not path.exists():
            continue
        items = _findings(analyze(str(path)))
        rows.append((rel, sorted(f"{i['code']}:{i['severity']}" for i in items)))
        assert not [i for i in items if i["severity"] in ("high", "critical")], rel
    with capsys.disabled():
        print("\ncorpus capture -> dns_tunnel codes")
        for rel, codes in rows:
            print(f"  {rel} -> {', '.join(codes) or '-'}")


@pytest.mark.corpus
def test_dns2tcp_capture_holds_no_cleartext_dns(corpus_dir: Path) -> None:
    """nDPI's dns2tcp_tunnel.pcap is one TLS session to 1.1.1.1:443 (DNS over HTTPS): there is
    no DNS message to score, so this detector cannot see it (encrypted_dns is the one that can)."""
    report = analyze(str(corpus_dir / "ndpi/tests/cfgs/default/pcap/dns2tcp_tunnel.pcap"))
    assert report["dns"]["messages"] == 0
    assert _findings(report) == []
