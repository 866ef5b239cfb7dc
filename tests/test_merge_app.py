"""A split run's application layer: the workers' AppLayers merged say what one run says.

``run_part(files, opts, (k, n))`` gives worker ``k`` of ``n`` the packets whose flow hashes
to ``k`` (:mod:`netsift.partition`); :func:`merge_partials` adds the workers' states (``AppLayer.merge``) and
:func:`assemble` renders them.  The dns, tls and http sections of the merged run must be
equal to one run's, list order included, while no bound is reached; past a bound the merge
must be deterministic and flag approximation as one run does.

Generated captures are built with Scapy (explicit MACs).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, Ether, Packet, PcapWriter

from netsift import applayer
from netsift.pipeline import Partial, RunOptions, assemble, expand_inputs, merge_partials, run_part

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample.pcap"
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
APP_SECTIONS = ("dns", "tls", "http")

#: Corpus captures (under ../shared/corpus) with DNS over UDP and TCP, TLS hellos (JA3/JA4),
#: QUIC Initials and HTTP/1.x, between several hosts so that the workers share the work.
_NDPI = "ndpi/tests/cfgs/default/pcap/"
_PPP = "pcapplusplus/Tests/ExamplesTest/pcap_examples/"
CORPUS_CAPTURES = [
    _NDPI + "android.pcap",  # DNS, TLS (7 JA4), HTTP, 3 DNS clients
    _NDPI + "iphone.pcap",  # DNS (5 clients), TLS, HTTP
    _NDPI + "dns-tunnel-iodine.pcap",  # many distinct DNS names from one client
    _NDPI + "http_connect.pcap",  # HTTP CONNECT, then TLS in the tunnel
    _NDPI + "quic-v2.pcapng",  # a QUIC v2 Initial
    _NDPI + "quic_frags_ch_in_multiple_packets.pcapng",  # a ClientHello over several Initials
    "foxio-ja4/pcap/chrome-cloudflare-quic-with-secrets.pcapng",  # QUIC and TLS over TCP
    "chrissanders-packets/dns_tcp.pcapng",  # DNS over TCP
    "chrissanders-packets/dns_recursivequery_server.pcapng",  # a resolver: two clients
    "zeek/testing/btest/Traces/ipv6-fragmented-dns.pcap",  # DNS in IPv6 fragments
    _PPP + "tls2.pcap",  # 323 ClientHellos, IPv4 and IPv6, 12 JA4
    _PPP + "many-protocols.pcap",  # DNS, TLS and HTTP together
    _PPP + "http-packets.pcap",  # 112 HTTP requests
]


# --------------------------------------------------------------------------- helpers


def _opts() -> RunOptions:
    return RunOptions(detect=False)


def _app_json(part: Partial, paths: list[str], opts: RunOptions) -> dict[str, str]:
    """The application sections of a partial's report, each as its JSON text (order kept)."""
    data = assemble(part, expand_inputs(paths), opts, 1.0).data
    return {name: json.dumps(data[name], sort_keys=False) for name in APP_SECTIONS}


def _single(paths: list[str], opts: RunOptions) -> Partial:
    return run_part(expand_inputs(paths).files, opts)


def _workers(paths: list[str], opts: RunOptions, n: int) -> list[Partial]:
    files = expand_inputs(paths).files
    return [run_part(files, opts, (k, n)) for k in range(n)]


def _merged(paths: list[str], opts: RunOptions, n: int) -> Partial:
    return merge_partials(_workers(paths, opts, n))


def _assert_same_sections(want: dict[str, str], got: dict[str, str], what: str) -> None:
    for name in APP_SECTIONS:
        if want[name] != got[name]:
            a, b = json.loads(want[name]), json.loads(got[name])
            diff = [k for k in a if a[k] != b.get(k)]
            raise AssertionError(f"{what}: section {name} differs in {diff}: "
                                 f"{[(a[k], b.get(k)) for k in diff][:3]}")  # fmt: skip


def _write(path: Path, packets: list[tuple[float, Packet]]) -> Path:
    with PcapWriter(str(path), linktype=1, sync=True, nano=True) as w:
        for ts, pkt in packets:
            pkt.time = ts
            w.write(pkt)
    return path


def _dns(t: float, src: str, dst: str, sport: int, dport: int, msg: DNS) -> tuple[float, Packet]:
    return t, Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / msg


def _many_clients(path: Path, clients: int = 40, servers: int = 5, names: int = 6) -> Path:
    """DNS between many clients and several resolvers.

    Client ``c`` asks resolver ``c % servers`` ``names`` names (the last one NXDOMAIN, the
    second unanswered) and gets a response it did not ask for from resolver
    ``(c + 1) % servers``: before its first query for even clients, after its last one for
    odd ones.  The two flows of a client go to different workers for some clients, so a
    worker can see a client's responses but not its queries.
    """
    pkts: list[tuple[float, Packet]] = []
    t = 1.0
    for c in range(clients):
        ip = f"10.1.{c // 200}.{c % 200 + 1}"
        server = f"10.2.0.{c % servers + 1}"
        other = f"10.2.0.{(c + 1) % servers + 1}"
        stray = DNS(id=999, qr=1, rcode=3 if c % 3 == 0 else 0, qd=DNSQR(qname=f"stray{c}.example.net"))
        if c % 2 == 0:
            pkts.append(_dns(t, other, ip, 53, 40000 + c, stray))
            t += 0.001
        for k in range(names):
            name = f"h{k}.c{c % 7}.{'example.org' if k % 2 else f'zone{c % 4}.example.com'}"
            qid = c * 100 + k
            pkts.append(_dns(t, ip, server, 30000 + c, 53, DNS(id=qid, rd=1, qd=DNSQR(qname=name))))
            if k != 1:
                rcode = 3 if k == names - 1 else 0
                an = DNSRR(rrname=name, type="A", ttl=60, rdata=f"192.0.2.{k + 1}") if rcode == 0 else []
                r = DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=an)
                pkts.append(_dns(t + 0.0005 + 0.0001 * ((c * 7 + k) % 13), server, ip, 53, 30000 + c, r))
            t += 0.002
        if c % 2 == 1:
            pkts.append(_dns(t, other, ip, 53, 40000 + c, stray))
            t += 0.001
    pkts.sort(key=lambda p: p[0])
    return _write(path, pkts)


def _check_merges(paths: list[str]) -> dict[str, str]:
    opts = _opts()
    want = _app_json(_single(paths, opts), paths, opts)
    for n in (2, 3):
        _assert_same_sections(want, _app_json(_merged(paths, opts, n), paths, opts), f"{paths} n={n}")
    return want


# --------------------------------------------------------------------------- exact merges


def test_sample_merges_to_the_single_run() -> None:
    want = _check_merges([str(SAMPLE)])
    dns, tls, http = (json.loads(want[s]) for s in APP_SECTIONS)
    assert dns["messages"] and tls["client_hellos"] and http["requests"]  # something to merge


def test_generated_dns_merges_to_the_single_run(tmp_path: Path) -> None:
    """Clients whose queries and responses went to different workers: a response is counted
    on its client whichever worker saw it and whether it came before the first query."""
    path = str(_many_clients(tmp_path / "many.pcap"))
    opts = _opts()
    want = _check_merges([path])
    dns = json.loads(want["dns"])
    assert dns["clients"]["total"] == 40
    top = {c["client"]: c for c in dns["clients"]["top"]}
    # five answered of six, plus the stray response; the stray one is NXDOMAIN for c % 3 == 0
    assert top["10.1.0.1"]["responses"] == 6 and top["10.1.0.1"]["nxdomain"] == 2
    assert top["10.1.0.2"]["responses"] == 6 and top["10.1.0.2"]["nxdomain"] == 1
    # the case above really happens: some worker saw a client's responses but not its queries
    parts = _workers([path], opts, 2)
    assert any(p.app is not None and p.app.dns.replies_only for p in parts)


@pytest.mark.corpus
@pytest.mark.parametrize("capture", CORPUS_CAPTURES)
def test_corpus_capture_merges_to_the_single_run(corpus_dir: Path, capture: str) -> None:
    path = corpus_dir / capture
    if not path.is_file():
        pytest.skip(f"{capture} is not in this copy of the corpus")
    want = _check_merges([str(path)])
    dns, tls, http = (json.loads(want[s]) for s in APP_SECTIONS)
    assert dns["messages"] or tls["client_hellos"] or tls["quic_client_hellos"] or http["requests"]


@pytest.mark.corpus
def test_several_inputs_merge_to_the_single_run(corpus_dir: Path) -> None:
    paths = [corpus_dir / (_NDPI + "android.pcap"), corpus_dir / (_NDPI + "iphone.pcap"), SAMPLE]
    if not all(p.is_file() for p in paths):
        pytest.skip("android.pcap or iphone.pcap is not in this copy of the corpus")
    _check_merges([str(p) for p in paths])


@pytest.mark.corpus
def test_corpus_list_covers_every_protocol(corpus_dir: Path) -> None:
    """The corpus captures above hold what they are there for (DNS over UDP and TCP, TLS
    JA3/JA4, QUIC Initials, HTTP)."""
    opts = _opts()
    present = [str(corpus_dir / c) for c in CORPUS_CAPTURES if (corpus_dir / c).is_file()]
    if len(present) < len(CORPUS_CAPTURES) // 2:
        pytest.skip("most of the listed captures are not in this copy of the corpus")
    seen = {"dns_udp": 0, "dns_tcp": 0, "ja3": 0, "ja4": 0, "quic": 0, "http": 0}
    for path in present:
        app = _single([path], opts).app
        assert app is not None
        sec = app.sections(opts.top_n)
        seen["dns_tcp"] += sec["dns"]["over_tcp"]
        seen["dns_udp"] += sec["dns"]["messages"] - sec["dns"]["over_tcp"]
        seen["ja3"] += len(sec["tls"]["ja3"])
        seen["ja4"] += len(sec["tls"]["ja4"])
        seen["quic"] += sec["tls"]["quic_client_hellos"]
        seen["http"] += sec["http"]["requests"]
    assert all(seen.values()), seen


# --------------------------------------------------------------------------- the split


def test_workers_share_the_work(tmp_path: Path) -> None:
    """Each worker saw part of the DNS messages (none saw all) and the parts add up."""
    path = str(_many_clients(tmp_path / "many.pcap"))
    opts = _opts()
    whole = _single([path], opts).app
    assert whole is not None
    for n in (2, 3):
        apps = [p.app for p in _workers([path], opts, n)]
        assert all(a is not None for a in apps)
        counts = [a.dns.messages for a in apps if a is not None]
        assert all(0 < k < whole.dns.messages for k in counts), counts
        assert sum(counts) == whole.dns.messages
        assert sum(a.dns.queries for a in apps if a is not None) == whole.dns.queries
        assert sum(a.dns.rtt_seen for a in apps if a is not None) == whole.dns.rtt_seen


def test_sample_workers_share_the_work() -> None:
    opts = _opts()
    whole = _single([str(SAMPLE)], opts).app
    assert whole is not None
    apps = [p.app for p in _workers([str(SAMPLE)], opts, 2)]
    msgs = [a.dns.messages for a in apps if a is not None]
    hellos = [a.tls.client_hellos for a in apps if a is not None]
    assert all(0 < k < whole.dns.messages for k in msgs) and sum(msgs) == whole.dns.messages
    assert sum(hellos) == whole.tls.client_hellos
    assert sum(a.http.requests for a in apps if a is not None) == whole.http.requests


def test_merge_wants_finished_layers() -> None:
    a, b = applayer.AppLayer(), applayer.AppLayer()
    b._dns_flows[1] = applayer._DnsState([1, 0, "x.example", 1, None, None, {}, None])
    with pytest.raises(ValueError):
        a.merge(b)


# --------------------------------------------------------------------------- pickling


def test_pickled_workers_merge_to_the_single_run(tmp_path: Path) -> None:
    path = str(_many_clients(tmp_path / "many.pcap"))
    paths = [path, str(SAMPLE)]
    opts = _opts()
    want = _app_json(_single(paths, opts), paths, opts)
    parts = _workers(paths, opts, 3)
    for p in parts:
        assert p.app is not None
        p.app.dns_sink = None
        p.app = pickle.loads(pickle.dumps(p.app))
        dns, tls = p.app.dns, p.app.tls
        # the shared budgets are still shared: by the row makers and by every set
        assert dns.clients.make.args[0] is dns.names_budget  # type: ignore[attr-defined]
        assert all(s.budget is dns.names_budget for s in dns.domain_names.values())
        assert all(c.names.budget is dns.names_budget for c in dns.clients.rows.values())
        assert tls.ja4.make.args[0] is tls.clients_budget  # type: ignore[attr-defined]
        assert all(s.budget is tls.clients_budget for s in tls.sni_clients.values())
        assert all(r.clients.budget is tls.clients_budget for r in tls.ja3.rows.values())
        assert not p.app._flows and not p.app._dns_flows
    _assert_same_sections(want, _app_json(merge_partials(parts), paths, opts), "pickled n=3")


def test_a_finished_layer_pickles_without_the_last_batch() -> None:
    app = _single([str(SAMPLE)], _opts()).app
    assert app is not None
    assert "_cols" not in app.__dict__
    assert len(pickle.dumps(app)) < 200_000


# --------------------------------------------------------------------------- caps


def _small_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caps small enough for the generated capture to reach every one of them."""
    monkeypatch.setattr(applayer, "COUNTER_CAP", 4)
    monkeypatch.setattr(applayer.BoundedCounter.__init__, "__defaults__", (4,))
    monkeypatch.setattr(applayer, "DISTINCT_SKETCH_K", 8)
    monkeypatch.setattr(applayer, "MAX_SET_MEMBERS", 60)


def test_capped_merges_are_deterministic_and_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(_many_clients(tmp_path / "many.pcap", clients=60, names=8))
    paths = [path, str(SAMPLE)]
    opts = _opts()
    exact = _app_json(_single(paths, opts), paths, opts)
    _small_caps(monkeypatch)
    single_part = _single(paths, opts)
    single = _app_json(single_part, paths, opts)
    assert single != exact
    one = {k: json.loads(v) for k, v in single.items()}
    assert one["dns"]["approximate"]
    assert one["dns"]["distinct_names_not_held"] > 0
    for n in (2, 3):
        parts = _workers(paths, opts, n)
        refused = [p.app.dns.names_budget.refused for p in parts if p.app is not None]
        first = _app_json(merge_partials(parts), paths, opts)
        again = _app_json(_merged(paths, opts, n), paths, opts)
        assert first == again  # the same workers merged in the same order: the same report
        merged = {k: json.loads(v) for k, v in first.items()}
        # what one run flags, the merged run flags
        for name in APP_SECTIONS:
            if one[name]["approximate"]:
                assert merged[name]["approximate"], name
        # the workers' refusals add, and the union may refuse more
        assert merged["dns"]["distinct_names_not_held"] >= sum(refused) > 0
        # the distinct-client sketch merges exactly
        assert merged["dns"]["clients"]["total"] == one["dns"]["clients"]["total"]
        # counts that no cap touches stay exact
        for key in ("messages", "queries", "responses", "answered_queries", "unanswered_queries",
                    "by_qtype", "by_rcode", "rtt", "query_name_length"):  # fmt: skip
            assert merged["dns"][key] == one["dns"][key], key
        assert merged["tls"]["client_hellos"] == one["tls"]["client_hellos"]
        for key in ("requests", "responses", "methods", "status_codes"):
            assert merged["http"][key] == one["http"][key], key


def test_capped_merge_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    """Two processes with different string hashing merge the same workers the same way
    (sets are merged in sorted order, never in set order)."""
    path = str(_many_clients(tmp_path / "many.pcap", clients=60, names=8))
    script = f"""
import json, sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import pytest
from test_merge_app import _small_caps, _merged, _app_json, _opts, SAMPLE
mp = pytest.MonkeyPatch()
_small_caps(mp)
paths = [{path!r}, str(SAMPLE)]
print(json.dumps(_app_json(_merged(paths, _opts(), 2), paths, _opts())))
"""
    outs = []
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]
    assert json.loads(outs[0]["dns"])["approximate"]


def test_capped_sets_keep_the_smallest_members() -> None:
    """At its cap a set holds the smallest members, whatever the order they came in: two
    halves merged hold what one set fed everything holds."""
    items = [f"n{(k * 7919) % 1000:03d}" for k in range(1000)]
    one = applayer._CappedSet(50, rank=applayer._name_rank)
    for x in items:
        one.add(x)
    a, b = applayer._CappedSet(50, rank=applayer._name_rank), applayer._CappedSet(50, rank=applayer._name_rank)
    for x in items[::2]:
        a.add(x)
    for x in reversed(items[1::2]):
        b.add(x)
    a.merge(b)
    assert one.full and a.full
    assert a.items == one.items == set(sorted(items, key=applayer._name_rank)[:50])


def test_bounded_counter_merge_adds_and_keeps_the_bound() -> None:
    a, b = applayer.BoundedCounter(cap=3), applayer.BoundedCounter(cap=3)
    a.update(["x"] * 5 + ["y"] * 2)
    b.update(["x"] * 1 + ["z"] * 4)
    a.merge(b)
    assert a.top(3) == [("x", 6), ("z", 4), ("y", 2)] and not a.approximate
    c = applayer.BoundedCounter(cap=2)
    c.update([f"k{i}" for i in range(5)])  # cut back: approximate
    a.merge(c)
    assert a.approximate and a.max_dropped >= 1 and len(a) <= 2 * a.cap


def test_rtts_past_the_distinct_cap_are_rounded_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(applayer, "RTT_VALUES", 64)
    values = [(k * 104729) % 50_000 + 1000 for k in range(2000)]
    one, a, b = applayer.DnsFigures(), applayer.DnsFigures(), applayer.DnsFigures()
    for v in values:
        one.rtt(v)
    for v in values[:700]:
        a.rtt(v)
    for v in values[700:]:
        b.rtt(v)
    a.merge(b)
    assert a.rtt_seen == one.rtt_seen == 2000
    assert one.rtt_bits is not None and len(one.rtt_counts) <= 64
    ra, r1 = a._rtt_section(), one._rtt_section()
    assert ra is not None and r1 is not None
    assert ra["matched"] == r1["matched"] and ra["max_ms"] == r1["max_ms"]
    exact = sorted(values)
    for got in (ra, r1):  # within the rounding's relative error of the exact figures
        assert got["median_ms"] == pytest.approx(exact[1000] / 1000, rel=0.1)
        assert got["max_ms"] == pytest.approx(exact[-1] / 1000, rel=0.1)


def test_quantile_without_the_array_is_numpys() -> None:
    import numpy as np

    values = np.array([3, 10, 11, 400, 1000], dtype=np.int64)
    counts = np.array([5, 1, 7, 2, 3], dtype=np.int64)
    a = np.repeat(values, counts)
    for q in (0.5, 0.95, 0.0, 1.0):
        assert applayer._quantile(values, counts, q) == pytest.approx(float(np.percentile(a, q * 100)))


def test_cut_tables_keep_the_same_keys_whatever_the_order() -> None:
    """Ties at a cut are broken by key, not by arrival order (one run and a merge agree)."""
    keys = [f"k{i:02d}" for i in range(30)]
    kept = []
    for order in (keys, keys[::-1]):
        c = applayer.BoundedCounter(cap=5)
        c.update(order)
        kept.append(sorted(c.counts))

    class Row:
        def __init__(self) -> None:
            self.weight = 1

    rows = []
    for order in (keys[:10], keys[9::-1]):
        t = applayer._Keyed(5, Row)
        for k in [*order, "zz"]:  # the eleventh key cuts the table back to five (and joins)
            t.get(k)
        rows.append(sorted(t.rows))
    assert kept[0] == kept[1] and rows[0] == rows[1]
