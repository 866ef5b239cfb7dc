"""Resource exhaustion (issue 9): hostile captures end with a complete report, every table
stays at its cap, what went past a cap is counted in the report, and memory stays flat.

The captures come from ``benchmarks/exhaustion_bench.py`` (numpy-written, no Scapy per
packet), at a tenth to a fiftieth of the benchmark's size and with caps lowered where a
default cap would need millions of packets to reach.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from netsift import applayer
from netsift.defrag import DEFAULT_MAX_BYTES, DEFAULT_MAX_TRAINS, MAX_DATAGRAM
from netsift.detect import Detectors, detector_classes
from netsift.detect.config import config_from_dict
from netsift.detect.dns_tunnel import DnsTunnelDetector
from netsift.flows import FlowConfig
from netsift.pipeline import analyze

REPO = Path(__file__).resolve().parents[1]


def _load_generators() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exhaustion_bench", REPO / "benchmarks" / "exhaustion_bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generators()


def _complete(data: dict[str, Any]) -> None:
    assert data["run"]["partial"] is False
    for section in ("capture", "flows", "fragments", "dns", "tls", "http", "findings"):
        assert section in data, section


# --------------------------------------------------------------------------- flows


def test_a_flood_of_unique_flows_stays_at_max_flows(tmp_path: Path, validate_report: Any) -> None:
    n, cap = 100_000, 10_000
    pcap = tmp_path / "flows.pcap"
    assert gen.gen_flows(pcap, n) == n
    data = analyze(str(pcap), flow_config=FlowConfig(max_flows=cap)).data
    _complete(data)
    validate_report(data)
    f = data["flows"]
    assert f["config"]["max_flows"] == cap
    assert f["total"] == n
    assert f["peak_live"] <= cap
    # every flow past the cap pushed out the oldest one; the rest ended with the capture
    assert f["evicted"] == n - cap == f["by_expiration"]["evicted"]


# --------------------------------------------------------------------------- fragments


def test_incomplete_ipv4_trains_past_the_train_cap_are_evicted_and_counted(tmp_path: Path) -> None:
    n = DEFAULT_MAX_TRAINS + 20_000
    pcap = tmp_path / "frag4.pcap"
    gen.gen_frag4(pcap, n)
    data = analyze(str(pcap)).data
    _complete(data)
    fr = data["fragments"]
    c = fr["counters"]
    assert fr["limits"]["max_trains"] == DEFAULT_MAX_TRAINS
    assert c["fragments"] == c["trains_started"] == n
    assert c["peak_trains"] == DEFAULT_MAX_TRAINS
    assert c["trains_evicted_count_cap"] == n - DEFAULT_MAX_TRAINS
    assert c["trains_flushed_at_end"] == DEFAULT_MAX_TRAINS
    assert c["datagrams_reassembled"] == 0
    assert fr["facts"]["incomplete_train"] == n
    assert fr["live_trains"] == 0


def test_incomplete_ipv6_trains_past_the_byte_cap_are_evicted_and_counted(tmp_path: Path) -> None:
    n, payload = 40_000, 1232  # about 1.3 kB held a train: the 32 MiB cap comes first
    pcap = tmp_path / "frag6.pcap"
    gen.gen_frag6(pcap, n, payload=payload)
    data = analyze(str(pcap)).data
    _complete(data)
    c = data["fragments"]["counters"]
    assert c["fragments_ipv6"] == c["trains_started"] == n
    assert c["trains_evicted_byte_cap"] > 0
    assert c["trains_evicted_count_cap"] == 0
    assert c["trains_evicted_byte_cap"] + c["trains_flushed_at_end"] == n
    # the cap is enforced after each fragment is stored; the peak is sampled after each
    # read batch (so that a split run's workers add up): at the cap, within one datagram
    assert DEFAULT_MAX_BYTES - MAX_DATAGRAM < c["peak_bytes"] <= DEFAULT_MAX_BYTES
    assert c["peak_trains"] < DEFAULT_MAX_TRAINS


# --------------------------------------------------------------------------- DNS


def test_a_flood_of_distinct_names_from_many_clients(tmp_path: Path, validate_report: Any) -> None:
    n = 60_000
    pcap = tmp_path / "dns.pcap"
    gen.gen_dns(pcap, n, clients=50_000, domains=45_000)
    data = analyze(str(pcap)).data
    _complete(data)
    validate_report(data)
    d = data["dns"]
    assert d["queries"] == n and d["unanswered_queries"] == n
    # more names and domains than the top tables keep (twice COUNTER_CAP): they were cut
    assert d["approximate"] is True
    assert d["distinct_names_not_held"] == 0
    assert d["clients"]["total"] >= 50_000


def test_distinct_name_sets_share_one_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             validate_report: Any) -> None:  # fmt: skip
    """Few clients and domains, many names each (a tunnel's shape): per-set caps alone would
    hold every name; the shared budget stops the sets, says so and counts what it refused."""
    n, budget, tunnel_names = 30_000, 4_000, 3_000
    monkeypatch.setattr(applayer, "MAX_SET_MEMBERS", budget)
    pcap = tmp_path / "dns_few.pcap"
    gen.gen_dns(pcap, n, clients=10, domains=20)
    detectors = Detectors(config_from_dict(
        {"detectors": {"dns_tunnel": {"max_names_total": tunnel_names}}}, detector_classes()))
    data = analyze(str(pcap), detectors=detectors).data
    _complete(data)
    validate_report(data)
    d = data["dns"]
    # each query's name goes to its domain's set and its client's set
    assert d["distinct_names_not_held"] == 2 * n - budget
    assert all(r["distinct_names_capped"] for r in d["top_registered_domains"])
    assert sum(r["distinct_names"] for r in d["top_registered_domains"]) <= budget
    assert all(c["distinct_names_capped"] for c in d["clients"]["top"])
    tunnel = next(x for x in detectors.active if isinstance(x, DnsTunnelDetector))
    assert tunnel.names_held == sum(len(p.names) for p in tunnel.pairs.values()) == tunnel_names
    assert tunnel.names_dropped == n - tunnel_names
    # the names not kept are still counted as unique names of their pair
    assert sum(len(p.names) + p.names_over_cap for p in tunnel.pairs.values()) == n


# --------------------------------------------------------------------------- streams


def test_a_client_hello_claiming_16_mb_is_given_up_at_once(tmp_path: Path, validate_report: Any) -> None:
    conns = 200
    pcap = tmp_path / "tls.pcap"
    gen.gen_tls(pcap, conns, segments=120)  # 168 kB each, past MAX_HELLO_STREAM
    data = analyze(str(pcap)).data
    _complete(data)
    validate_report(data)
    t = data["tls"]
    assert t["client_hellos"] == 0
    assert t["anomalies"] == {"tls_hello_over_bound": conns}
    assert data["flows"]["total"] == conns


def test_the_hello_claim_check_does_not_buffer_past_the_bound(tmp_path: Path) -> None:
    """The first segment's claim (0xFFFFFF) is enough to give the direction up: the
    AppLayer holds nothing for it afterwards."""
    pcap = tmp_path / "tls.pcap"
    gen.gen_tls(pcap, 5, segments=3)
    from netsift.capture import CaptureReader
    from netsift.decode_fast import decode
    from netsift.flows import FlowOut, FlowTable

    table, app = FlowTable(FlowConfig()), applayer.AppLayer()
    with CaptureReader(str(pcap)) as reader:
        for batch in reader.batches():
            cols = decode(batch)
            out = FlowOut(len(cols))
            table.update(cols, batch, out=out)
            app.update(cols, batch, out)
    assert app.tls.anomalies["tls_hello_over_bound"] == 5
    assert not app._active
    held = sum(len(st.buf) for af in app._flows.values() if af.streams for st in af.streams)
    assert held == 0


def test_an_http_head_that_never_ends_is_cut(tmp_path: Path, validate_report: Any) -> None:
    conns = 100
    pcap = tmp_path / "http.pcap"
    gen.gen_http(pcap, conns, segments=60)  # 84 kB of one header line each
    data = analyze(str(pcap)).data
    _complete(data)
    validate_report(data)
    h = data["http"]
    assert h["anomalies"]["head_too_long"] == conns
    assert h["requests"] == conns


def test_dns_over_tcp_with_an_absurd_length_prefix(tmp_path: Path, validate_report: Any) -> None:
    conns = 100
    pcap = tmp_path / "dns_tcp.pcap"
    gen.gen_dns_tcp(pcap, conns, segments=60)  # 84 kB after a prefix claiming 65,535 bytes
    data = analyze(str(pcap)).data
    _complete(data)
    validate_report(data)
    # the claimed 65,535 bytes are read as one message; the zero bytes after it would
    # read as empty messages (a 0 length prefix each): the first one ends the stream
    d = data["dns"]
    assert d["over_tcp"] == d["messages"] == conns
    assert d["anomalies"]["dns_tcp_message_too_short"] == conns
    assert data["flows"]["total"] == conns


# --------------------------------------------------------------------------- memory

_CHILD = textwrap.dedent("""
    import functools, json, resource, sys
    out = sys.argv[1]
    from netsift import pipeline
    from netsift.defrag import FragmentTracker
    from netsift.flows import FlowConfig
    pipeline.FragmentTracker = functools.partial(FragmentTracker, max_trains=2_000)
    data = pipeline.analyze(str(out), flow_config=FlowConfig(max_flows=5_000)).data
    assert not data["run"]["partial"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"maxrss_kb": peak, "evicted": data["flows"]["evicted"],
                      "trains_evicted": data["fragments"]["counters"]["trains_evicted_count_cap"]}))
""")


_MAKE = {
    "flows": lambda path, n: gen.gen_flows(path, n),
    "frag4": lambda path, n: gen.gen_frag4(path, n),
}


def _peak_rss_kb(case: str, n: int, where: Path) -> dict[str, int]:
    """Peak RSS of a process that only analyses (the capture is written here, before it)."""
    pcap = where / f"{case}_{n}.pcap"
    _MAKE[case](pcap, n)
    run = subprocess.run([sys.executable, "-c", _CHILD, str(pcap)], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    pcap.unlink()
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("case", "n"), [("flows", 40_000), ("frag4", 40_000)])
def test_peak_memory_does_not_follow_the_hostile_units(case: str, n: int, tmp_path: Path) -> None:
    """Peak RSS of a whole run over N hostile units and over 4N, each in a fresh process,
    with every cap well below N (5,000 flows, 2,000 fragment trains): once the caps are
    reached, 3N more units must not cost memory in proportion.  An unbounded table of
    even 100 bytes a unit would add more than the allowance here (120,000 more units,
    12 MB).  Small packets only: the reader maps the file, and the peak RSS of a run over
    large packets also counts mapped file pages (the TLS and HTTP cases are checked by
    what the application layer holds instead)."""
    small = _peak_rss_kb(case, n, tmp_path)
    large = _peak_rss_kb(case, 4 * n, tmp_path)
    if case == "flows":
        assert large["evicted"] == 4 * n - 5_000
    if case == "frag4":
        assert large["trains_evicted"] == 4 * n - 2_000
    grown_mb = (large["maxrss_kb"] - small["maxrss_kb"]) / 1024
    assert grown_mb < 0.1 * small["maxrss_kb"] / 1024 + 10, (small, large)


def test_dns_over_tcp_past_the_message_cap_is_counted(tmp_path):
    """A stream with more DNS messages than MAX_DNS_TCP_MESSAGES: read up to the cap, the rest counted once."""
    from scapy.layers.dns import DNS, DNSQR

    from flowgen import Tcp, write
    from netsift.applayer import MAX_DNS_TCP_MESSAGES
    from netsift.pipeline import analyze

    msg = bytes(DNS(id=1, qd=DNSQR(qname="axfr.example.com")))
    framed = struct.pack("!H", len(msg)) + msg
    total = MAX_DNS_TCP_MESSAGES + 500
    conv = Tcp(sport=53)
    pkts = conv.handshake()
    seq, t = 1001, 0.01
    per_segment = 1400 // len(framed)
    for i in range(0, total, per_segment):
        data = framed * min(per_segment, total - i)
        pkts.append(conv.c(t, "PA", seq, 5001, data))
        seq += len(data)
        t += 0.0001
    data = analyze(str(write(tmp_path / "dns_tcp_many.pcap", pkts)), detect=False).data
    assert data["dns"]["anomalies"].get("dns_tcp_messages_over_cap") == 1
    assert data["dns"]["queries"] == MAX_DNS_TCP_MESSAGES


def test_keyed_table_counts_distinct_keys_once_rows_are_dropped():
    """clients.total: exact before any drop; a dropped key that comes back is not counted twice after."""
    from netsift.applayer import DISTINCT_SKETCH_K, _Keyed

    class Row:
        weight = 1

    small = _Keyed(100, Row)
    for i in range(150):
        small.get((0, i))
    assert small.dropped_keys == 0 and small.distinct() == 150
    table = _Keyed(1000, Row)
    distinct = 50_000
    for _round in range(3):  # every key three times, with drops in between
        for i in range(distinct):
            table.get((0, i))
    assert table.dropped_keys > 2 * distinct  # keys were dropped and came back
    estimate = table.distinct()
    assert abs(estimate - distinct) / distinct < 4 / (DISTINCT_SKETCH_K - 2) ** 0.5  # 4 standard errors
    assert len(table.rows) <= 2 * table.cap
