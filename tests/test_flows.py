"""Flow-table behaviour (netsift.flows) on crafted traffic and corpus captures.

Every expected value is worked out from the module's specification (Zeek's
``TCPSessionAdapter`` state machine, history letters and ``conn_state``;
Wireshark's ``tcp_analyze_sequence_number`` rules, LANDSCAPE §2.5) for the
packets each test writes; the comments give the reasoning.  Crafted captures
use 20-byte IPv4 and TCP headers (no options), so a bare TCP segment is 40 IP
bytes.  When ``tshark`` is installed the TCP-analysis expectations are also
checked against Wireshark itself.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Raw

from flowgen import (
    CLIENT,
    SERVER,
    T0,
    Tcp,
    at,
    decoded,
    eth,
    icmp,
    one,
    run_table,
    slice_batch,
    syn_flood,
    udp,
    write,
)
from netsift import flows_fast
from netsift.cli import main
from netsift.flows import TCP_ANALYSIS, FlowConfig, FlowRecord, FlowTable
from netsift.pipeline import analyze

FULL = os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"
TSHARK = shutil.which("tshark")
NS = 1_000_000_000


def no_analysis() -> dict[str, int]:
    return dict.fromkeys(TCP_ANALYSIS, 0)


def analysis(**counts: int) -> dict[str, int]:
    d = no_analysis()
    d.update(counts)
    return d


def report_flows(path: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("flow_engine", "python")
    rep = analyze([str(path)], **kw)
    return rep.data


# --- a complete TCP connection ------------------------------------------------------


def full_connection(c: Tcp | None = None) -> list[Any]:
    """Handshake, 100 bytes up, 300 bytes down, FIN from each side, final ACK."""
    c = c or Tcp()
    return [
        *c.handshake(),  # S (orig SYN), h (resp SYN-ACK), A (orig pure ACK)
        c.c(0.03, "PA", 1001, 5001, b"q" * 100),  # D
        c.s(0.04, "A", 5001, 1101),  # a
        c.s(0.05, "PA", 5001, 1101, b"r" * 300),  # d
        c.c(0.06, "A", 1101, 5301),  # A again: nothing
        c.c(0.07, "FA", 1101, 5301),  # F
        c.s(0.08, "FA", 5301, 1102),  # f: both sides closed after this one
        c.c(0.09, "A", 1102, 5302),  # final ACK: not part of the duration
    ]


def test_full_tcp_connection_is_sf_with_zeek_history_and_sizes(tmp_path: Path) -> None:
    rec = one(run_table(write(tmp_path / "sf.pcap", full_connection())))
    assert (rec.orig_h, rec.orig_p, rec.resp_h, rec.resp_p) == (CLIENT, 40000, SERVER, 80)
    assert rec.conn_state == "SF"
    assert rec.history == "ShADadFf"
    assert not rec.flipped
    assert (rec.orig_pkts, rec.resp_pkts) == (6, 4)
    # orig: five bare segments + one with 100 bytes; resp: three bare + one with 300
    assert (rec.orig_ip_bytes, rec.resp_ip_bytes) == (5 * 40 + 140, 3 * 40 + 340)
    assert (rec.orig_payload_bytes, rec.resp_payload_bytes) == (100, 300)
    # Zeek sizes: (last seq - ISN) minus the SYN and the FIN
    assert (rec.orig_bytes, rec.resp_bytes) == (1102 - 1000 - 2, 5302 - 5000 - 2)
    assert rec.start_ns == T0 * NS
    assert rec.end_ns == T0 * NS + 80_000_000  # the second FIN, not the final ACK
    assert rec.duration_s == pytest.approx(0.08)
    assert rec.last_packet_ns == T0 * NS + 90_000_000
    assert (rec.first_frame, rec.last_frame) == (1, 10)
    assert rec.expiration == "closed"
    assert rec.service == "http"
    assert rec.orig_tcp == no_analysis() and rec.resp_tcp == no_analysis()


def test_same_connection_seen_from_a_vlan_is_a_different_key(tmp_path: Path) -> None:
    from scapy.layers.l2 import Dot1Q

    plain = full_connection()
    tagged = []
    for p in full_connection():
        e = p[0]
        q = eth(e.src == "02:00:00:00:00:01") / Dot1Q(vlan=42) / p[IP].copy()
        tagged.append(at(q, float(p.time) - T0 + 0.001))
    pkts = sorted(plain + tagged, key=lambda p: float(p.time))
    path = write(tmp_path / "vlan.pcap", pkts)
    recs = run_table(path)
    assert sorted(((r.vlan or 0), r.history, r.packets) for r in recs) == [
        (0, "ShADadFf", 10),
        (42, "ShADadFf", 10),
    ]
    merged = run_table(path, FlowConfig(vlan_in_key=False))
    # without the VLAN in the key both copies are one flow: every packet counted once
    assert len(merged) == 1 and merged[0].packets == 20


# --- connection attempts ------------------------------------------------------------


def test_syn_retransmitted_with_the_same_isn_is_one_s0_flow(tmp_path: Path) -> None:
    c = Tcp()
    rec = one(run_table(write(tmp_path / "s.pcap", [c.c(t, "S", 1000) for t in (0, 1, 3)])))
    assert rec.conn_state == "S0"
    assert rec.history == "S"  # a SYN with the sequence number already seen adds nothing
    assert (rec.orig_pkts, rec.resp_pkts) == (3, 0)
    assert (rec.orig_ip_bytes, rec.resp_ip_bytes) == (120, 0)
    assert (rec.orig_bytes, rec.resp_bytes) == (0, 0)
    assert rec.expiration == "end_of_capture"
    # Wireshark: a SYN below the next expected sequence number is a retransmission
    assert rec.orig_tcp == analysis(retransmissions=2)
    assert rec.duration_s == pytest.approx(3.0)


def test_syn_with_a_new_isn_is_port_reuse(tmp_path: Path) -> None:
    # Zeek IsReuse: a SYN whose sequence number is not the originator's initial one
    # starts a new connection (each attempt is its own S0 flow with history "S").
    c = Tcp()
    pkts = [c.c(0, "S", 1000), c.c(1, "S", 2000), c.c(3, "S", 3000)]
    recs = run_table(write(tmp_path / "s.pcap", pkts))
    assert [(r.history, r.conn_state, r.orig_pkts, r.expiration) for r in recs] == [
        ("S", "S0", 1, "port_reuse"),
        ("S", "S0", 1, "port_reuse"),
        ("S", "S0", 1, "end_of_capture"),
    ]
    assert [r.start_ns - T0 * NS for r in recs] == [0, NS, 3 * NS]


def test_syn_ack_retransmitted_with_another_sequence_repeats_h(tmp_path: Path) -> None:
    # A SYN-ACK while the originator is active is never reuse; the second one with a
    # different sequence number repeats the letter, the same one does not.
    c = Tcp()
    pkts = [
        c.c(0, "S", 1000),
        c.s(0.01, "SA", 5000, 1001),
        c.s(0.02, "SA", 5000, 1001),  # same sequence number: nothing
        c.s(0.03, "SA", 6000, 1001),  # new sequence number: h again
    ]
    rec = one(run_table(write(tmp_path / "sa.pcap", pkts)))
    assert rec.history == "Shh"
    assert rec.resp_pkts == 3


def test_attempt_timeout_splits_syns_more_than_5s_after_the_first(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [c.c(t, "S", 1000) for t in (0, 3, 6, 8)]
    recs = run_table(write(tmp_path / "s.pcap", pkts))
    # 6 s after the first SYN the attempt has expired (tcp_attempt_delay 5 s): the
    # SYNs at 0 and 3 are one flow, those at 6 and 8 (2 s after *its* first) another.
    assert [(r.orig_pkts, r.expiration, r.history) for r in recs] == [
        (2, "attempt_timeout", "S"),
        (2, "end_of_capture", "S"),
    ]
    assert recs[0].end_ns == (T0 + 3) * NS


def test_syn_answered_by_rst_ack_is_rej(tmp_path: Path) -> None:
    c = Tcp()
    rec = one(
        run_table(write(tmp_path / "rej.pcap", [c.c(0, "S", 1000), c.s(0.001, "RA", 0, 1001)]))
    )
    assert rec.conn_state == "REJ"
    assert rec.history == "Sr"
    assert (rec.orig_pkts, rec.resp_pkts) == (1, 1)
    assert rec.expiration == "closed"  # a reset ends the connection


def test_syn_then_originator_rst_is_rstos0(tmp_path: Path) -> None:
    c = Tcp()
    rec = one(run_table(write(tmp_path / "r.pcap", [c.c(0, "S", 1000), c.c(0.5, "R", 1001)])))
    assert rec.conn_state == "RSTOS0"
    assert rec.history == "SR"
    assert rec.orig_pkts == 2 and rec.resp_pkts == 0


def test_midstream_packets_from_a_server_port_flip_the_direction(tmp_path: Path) -> None:
    c = Tcp(cport=51000, sport=80)
    pkts = [
        c.s(0, "PA", 7000, 3000, b"a" * 50),  # first packet: 80 -> 51000, no SYN
        c.c(0.01, "A", 3000, 7050),
        c.s(0.02, "PA", 7050, 3000, b"b" * 50),
    ]
    rec = one(run_table(write(tmp_path / "mid.pcap", pkts)))
    assert rec.flipped
    assert (rec.orig_h, rec.orig_p, rec.resp_h, rec.resp_p) == (CLIENT, 51000, SERVER, 80)
    assert rec.history == "^dA"
    assert rec.conn_state == "OTH"  # both sides only partial
    assert (rec.orig_pkts, rec.resp_pkts) == (1, 2)
    assert (rec.orig_payload_bytes, rec.resp_payload_bytes) == (0, 100)


def test_midstream_between_two_ephemeral_ports_keeps_the_first_sender(tmp_path: Path) -> None:
    c = Tcp(cport=51000, sport=52000)
    rec = one(run_table(write(tmp_path / "mid.pcap", [c.s(0, "PA", 7000, 3000, b"a" * 10)])))
    assert not rec.flipped
    assert (rec.orig_p, rec.resp_p) == (52000, 51000)
    assert rec.history == "D"


def test_first_packet_syn_ack_is_flipped(tmp_path: Path) -> None:
    c = Tcp(cport=51001, sport=80)
    pkts = [c.s(0, "SA", 5000, 1001), c.c(0.01, "A", 1001, 5001)]
    rec = one(run_table(write(tmp_path / "sa.pcap", pkts)))
    assert rec.flipped
    assert (rec.orig_p, rec.resp_p) == (51001, 80)
    assert rec.history == "^hA"
    assert rec.conn_state == "S1"  # both endpoints established, neither closed


# --- UDP and ICMP -------------------------------------------------------------------


def dns_query(t: float, qid: int = 0x1234) -> Any:
    q = DNS(id=qid, rd=1, qd=DNSQR(qname="example.com"))
    return udp(t, CLIENT, "10.0.0.53", 53000, 53, bytes(q))


def dns_answer(t: float, qid: int = 0x1234, answers: int = 1) -> bytes:
    rr = None
    for i in range(answers):
        r = DNSRR(rrname="example.com", type="A", ttl=300, rdata=f"192.0.2.{i + 1}")
        rr = r if rr is None else rr / r
    return bytes(DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.com"), an=rr))


def test_udp_query_and_answer_is_sf_dd(tmp_path: Path) -> None:
    q = dns_query(0)
    answer = dns_answer(0.02)
    a = udp(0.02, "10.0.0.53", CLIENT, 53, 53000, answer, to_server=False)
    rec = one(run_table(write(tmp_path / "dns.pcap", [q, a])))
    assert rec.transport == "udp" and rec.service == "dns"
    assert (rec.orig_p, rec.resp_p) == (53000, 53)
    assert rec.conn_state == "SF"
    assert rec.history == "Dd"
    qlen = len(q[Raw].load)
    assert (rec.orig_bytes, rec.resp_bytes) == (qlen, len(answer))  # UDP: payload bytes
    assert (rec.orig_ip_bytes, rec.resp_ip_bytes) == (28 + qlen, 28 + len(answer))
    assert rec.orig_tcp is None and rec.resp_tcp is None


def test_udp_one_way_is_s0_and_a_lone_answer_is_flipped_shr(tmp_path: Path) -> None:
    rec = one(run_table(write(tmp_path / "q.pcap", [dns_query(0)])))
    assert (rec.conn_state, rec.history, rec.flipped) == ("S0", "D", False)
    lone = udp(0, "10.0.0.53", CLIENT, 53, 53000, dns_answer(0), to_server=False)
    rec = one(run_table(write(tmp_path / "a.pcap", [lone])))
    assert (rec.conn_state, rec.history, rec.flipped) == ("SHR", "^d", True)
    assert (rec.orig_h, rec.orig_p, rec.resp_p) == (CLIENT, 53000, 53)


def test_icmp_echo_pairs_are_keyed_by_identifier(tmp_path: Path) -> None:
    pkts = [
        icmp(0.0, CLIENT, SERVER, 8, 0x1111, 1),
        icmp(0.001, SERVER, CLIENT, 0, 0x1111, 1, to_server=False),
        icmp(0.5, CLIENT, SERVER, 8, 0x2222, 1),
        icmp(0.501, SERVER, CLIENT, 0, 0x2222, 1, to_server=False),
        icmp(1.0, CLIENT, SERVER, 8, 0x1111, 2),
        icmp(1.001, SERVER, CLIENT, 0, 0x1111, 2, to_server=False),
    ]
    recs = sorted(run_table(write(tmp_path / "ping.pcap", pkts)), key=lambda r: r.icmp_id or 0)
    assert [(r.icmp_id, r.orig_pkts, r.resp_pkts) for r in recs] == [(0x1111, 2, 2), (0x2222, 1, 1)]
    for r in recs:
        assert (r.orig_h, r.resp_h) == (CLIENT, SERVER)
        assert (r.orig_p, r.resp_p) == (8, 0)  # Zeek's ICMP "ports": request type, reply type
        assert r.transport == "icmp" and r.conn_state == "OTH" and r.history == ""
        assert r.to_dict()["icmp_id"] == r.icmp_id
    # ICMP has no ports in the Community ID: both pings hash the same
    assert recs[0].community_id == recs[1].community_id
    assert recs[0].uid != recs[1].uid


def test_icmp_reply_first_makes_its_receiver_the_originator(tmp_path: Path) -> None:
    rec = one(
        run_table(write(tmp_path / "r.pcap", [icmp(0, SERVER, CLIENT, 0, 7, 1, to_server=False)]))
    )
    assert rec.flipped and rec.history == "^"
    assert (rec.orig_h, rec.resp_h, rec.orig_p, rec.resp_p) == (CLIENT, SERVER, 8, 0)
    assert (rec.orig_pkts, rec.resp_pkts) == (0, 1)


# --- timeouts -----------------------------------------------------------------------


def test_tcp_idle_longer_than_the_timeout_becomes_two_records(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [
        *c.handshake(),
        c.c(1.0, "PA", 1001, 5001, b"x" * 10),
        c.c(12.0, "PA", 1011, 5001, b"y" * 10),  # 11 s idle > tcp_timeout_s 10
        c.s(12.01, "A", 5001, 1021),
    ]
    recs = run_table(write(tmp_path / "idle.pcap", pkts), FlowConfig(tcp_timeout_s=10))
    assert [(r.expiration, r.history, r.packets, r.conn_state) for r in recs] == [
        ("idle_timeout", "ShAD", 4, "S1"),
        ("end_of_capture", "Da", 2, "OTH"),  # a midstream start: both sides partial
    ]
    # exactly the timeout apart is not idle (the timer needs *more* than the timeout)
    pkts[4] = c.c(11.0, "PA", 1011, 5001, b"y" * 10)
    pkts[5] = c.s(11.01, "A", 5001, 1021)
    recs = run_table(write(tmp_path / "edge.pcap", pkts), FlowConfig(tcp_timeout_s=10))
    assert [r.expiration for r in recs] == ["end_of_capture"]


def test_default_tcp_timeout_is_300s(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [*c.handshake(), c.c(300.02, "A", 1001, 5001), c.c(601.0, "A", 1001, 5001)]
    recs = run_table(write(tmp_path / "idle.pcap", pkts))
    assert [(r.expiration, r.packets) for r in recs] == [("idle_timeout", 4), ("end_of_capture", 1)]


def test_udp_idle_timeout_is_60s(tmp_path: Path) -> None:
    pkts = [dns_query(0), dns_query(60), dns_query(120.5)]
    recs = run_table(write(tmp_path / "u.pcap", pkts))
    # 0 -> 60 is exactly the timeout (same flow); 60 -> 120.5 is more
    assert [(r.expiration, r.orig_pkts) for r in recs] == [
        ("idle_timeout", 2),
        ("end_of_capture", 1),
    ]
    recs = run_table(write(tmp_path / "u2.pcap", pkts), FlowConfig(udp_timeout_s=30))
    assert [r.orig_pkts for r in recs] == [1, 1, 1]


def test_active_timeout_splits_long_flows(tmp_path: Path) -> None:
    pkts = [dns_query(t) for t in range(0, 22, 3)]  # 0, 3, ..., 21
    recs = run_table(write(tmp_path / "a.pcap", pkts), FlowConfig(active_timeout_s=10))
    # the packet at 12 is more than 10 s after the start (0): a new flow from 12 to 21
    assert [(r.expiration, r.orig_pkts, r.start_ns - T0 * NS) for r in recs] == [
        ("active_timeout", 4, 0),
        ("end_of_capture", 4, 12 * NS),
    ]
    assert [r.expiration for r in run_table(tmp_path / "a.pcap")] == ["end_of_capture"]


def test_close_delay_keeps_late_packets_and_a_new_syn_is_port_reuse(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [
        *full_connection(c),
        c.s(3.0, "FA", 5301, 1102),  # the server's FIN again, 2.9 s after the close
        c.c(4.0, "S", 9000),  # a new connection on the same ports, 1 s later
        c.s(4.01, "SA", 7000, 9001),
    ]
    recs = run_table(write(tmp_path / "reuse.pcap", pkts))
    assert [(r.expiration, r.history, r.orig_pkts, r.resp_pkts) for r in recs] == [
        ("port_reuse", "ShADadFf", 6, 5),  # same FIN sequence number: no second 'f'
        ("end_of_capture", "Sh", 1, 1),
    ]
    first = recs[0]
    assert first.end_ns == T0 * NS + 80_000_000  # the late FIN comes after both closed
    assert first.last_packet_ns == (T0 + 3) * NS
    assert first.resp_tcp == analysis(retransmissions=1)  # a FIN below the next sequence
    assert recs[1].conn_state == "S1"


def test_new_syn_more_than_5s_after_close_finds_the_flow_closed(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [*full_connection(c), c.c(5.2, "S", 9000)]
    recs = run_table(write(tmp_path / "closed.pcap", pkts))
    assert [(r.expiration, r.history) for r in recs] == [
        ("closed", "ShADadFf"),
        ("end_of_capture", "S"),
    ]


def test_closed_flows_leave_the_table_on_the_sweep(tmp_path: Path) -> None:
    # A batch whose last packet is more than tcp_close_delay after a closed flow's last
    # packet sweeps that flow out; a live one stays.
    other = Tcp(cport=40001)
    pkts = [*full_connection(), *other.handshake(1.0), other.c(7.0, "A", 1001, 5001)]
    table = FlowTable()
    [(cols, batch)] = decoded(write(tmp_path / "sweep.pcap", pkts))
    table.update(cols, batch)
    done = table.drain()
    assert [(r.orig_p, r.expiration) for r in done] == [(40000, "closed")]
    assert table.live == 1
    assert table.expired["closed"] == 1


# --- the live-flow cap ----------------------------------------------------------------


_MANY: dict[tuple[int, int], Path] = {}


def many_sources(tmp_path: Path, n: int = 5000, stale: int = 0) -> Path:
    """``stale`` UDP flows at t=0, then ``n - stale`` more from t=100 s, one packet each."""
    if (n, stale) in _MANY and _MANY[n, stale].exists():
        return _MANY[n, stale]
    pkts = []
    for i in range(n):
        t = i * 0.001 if i < stale else 100 + i * 0.001
        src = f"10.{1 + i // 250}.{i % 250}.1"
        pkts.append(udp(t, src, "10.0.0.53", 40000, 53, b"\0" * 12))
    _MANY[n, stale] = write(tmp_path / "many.pcap", pkts)
    return _MANY[n, stale]


@pytest.mark.parametrize("engine", ["python", "c"])
def test_max_flows_bounds_the_table_and_evicts_the_least_recent(
    tmp_path: Path, engine: str
) -> None:
    if engine == "c" and not flows_fast.AVAILABLE:
        pytest.skip("the C flow engine is not built")
    path = many_sources(tmp_path, stale=20)
    config = FlowConfig(max_flows=100)
    table = flows_fast.make_flow_table(config, engine)
    [(cols, batch)] = decoded(path)
    records: list[FlowRecord] = []
    # batch 1: the 20 stale flows; batch 2: one packet 100 s later (its sweep idles the
    # stale ones out before the cap is reached); then batches of 500
    cuts = [0, 20, 21, *range(521, 5000, 500), 5000]
    for a, b in itertools.pairwise(cuts):
        table.update(*slice_batch(cols, batch, a, b))
        records += table.drain()
        assert table.live <= 100
    table.finish()
    records += table.drain()
    assert table.flows_created == 5000
    by = Counter(r.expiration for r in records)
    assert by == {"idle_timeout": 20, "evicted": 5000 - 20 - 100, "end_of_capture": 100}
    assert table.expired["evicted"] == 4880
    assert sum(r.packets for r in records) == 5000
    # least recently active first: the survivors are the last 100 sources
    survivors = {r.orig_h for r in records if r.expiration == "end_of_capture"}
    assert survivors == {f"10.{1 + i // 250}.{i % 250}.1" for i in range(4900, 5000)}


@pytest.mark.parametrize("engine", ["python", "c"])
def test_peak_live_never_exceeds_max_flows(tmp_path: Path, engine: str) -> None:
    if engine == "c" and not flows_fast.AVAILABLE:
        pytest.skip("the C flow engine is not built")
    path = many_sources(tmp_path, n=300)
    table = flows_fast.make_flow_table(FlowConfig(max_flows=100), engine)
    run_table(path, table=table)
    assert table.peak_flows == 100


def test_report_counts_evictions_and_every_packet(tmp_path: Path) -> None:
    path = many_sources(tmp_path)
    data = report_flows(path, flow_config=FlowConfig(max_flows=100), report_flows=0)
    f = data["flows"]
    assert f["total"] == 5000
    assert f["evicted"] == 4900
    assert f["by_expiration"] == {"evicted": 4900, "end_of_capture": 100}
    assert f["by_conn_state"] == {"udp": {"S0": 5000}}
    # report_flows=0: only the flows the top lists name, each of them resolvable
    named = set(f["top_by_bytes"]) | set(f["top_by_packets"])
    assert {r["uid"] for r in f["records"]} == named
    assert len(f["top_by_bytes"]) == len(f["top_by_packets"]) == 20
    assert f["records_complete"] is False


# --- a spoofed SYN flood at scale -----------------------------------------------------


def _flood(tmp_path: Path, n: int, cap: int, engine: str, trace: bool) -> None:
    path = syn_flood(tmp_path / "flood.pcap", n)
    if trace:
        tracemalloc.start()
    data = analyze(
        [str(path)], flow_engine=engine, flow_config=FlowConfig(max_flows=cap), report_flows=10
    )
    peak = 0
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    f = data.data["flows"]
    assert data.data["capture"]["packets"] == n
    assert f["total"] == n
    assert f["evicted"] == n - cap
    assert f["by_expiration"] == {"evicted": n - cap, "end_of_capture": cap}
    assert f["by_conn_state"] == {"tcp": {"S0": n}}
    assert f["tcp_analysis"] == no_analysis()  # one SYN per flow: nothing to analyze
    assert f["peak_live"] == cap
    # Python-visible memory stays bounded by the cap, not by the flows seen: 10,000 live
    # flows and one batch of finished records, far below what 1M flows would hold
    assert peak < 300 * 1024 * 1024, peak


def test_spoofed_syn_flood_is_bounded(tmp_path: Path) -> None:
    _flood(tmp_path, 200_000, 10_000, "auto", trace=False)


@pytest.mark.skipif(not FULL, reason="1M-packet flood: set NETSIFT_FULL_CORPUS=1 or CI=true")
def test_spoofed_syn_flood_1m(tmp_path: Path) -> None:
    _flood(tmp_path, 1_000_000, 10_000, "auto", trace=True)


_RSS_PROBE = """
import resource, sys
from netsift.flows import FlowConfig
from netsift.pipeline import analyze
analyze([sys.argv[1]], flow_config=FlowConfig(max_flows=20_000), report_flows=10)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.skipif(not FULL, reason="1M-packet flood: set NETSIFT_FULL_CORPUS=1 or CI=true")
def test_flood_memory_is_flat(tmp_path: Path) -> None:
    """A million spoofed sources take no more memory than 300,000: the live-flow cap bounds it."""
    peaks = {}
    for n in (300_000, 1_000_000):
        path = syn_flood(tmp_path / f"flood{n}.pcap", n)
        out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True,
                             text=True, check=True)  # fmt: skip
        peaks[n] = int(out.stdout.split()[-1])  # KiB
        path.unlink()
    # measured: 246 MB and 270 MB; the small rest is the statistics tables filling their caps
    assert peaks[1_000_000] < peaks[300_000] * 1.25, peaks


# --- Wireshark TCP analysis -----------------------------------------------------------


def seq_retransmission() -> list[Any]:
    c = Tcp()
    # 470 ms later: not out-of-order (> 3 ms), not acked (spurious), no dup ACKs (fast)
    return [
        *c.handshake(),
        c.c(0.03, "PA", 1001, 5001, b"a" * 100),
        c.c(0.5, "PA", 1001, 5001, b"a" * 100),
    ]


def seq_fast_retransmission() -> list[Any]:
    c = Tcp()
    segs = [c.c(0.030 + i * 0.001, "PA", 1001 + 100 * i, 5001, b"b" * 100) for i in range(5)]
    return [
        *c.handshake(),
        *segs,  # 1001..1501
        c.s(0.040, "A", 5001, 1101),  # the ACK of the first segment (a new ack: not a dup)
        c.s(0.041, "A", 5001, 1101),  # dup 1
        c.s(0.042, "A", 5001, 1101),  # dup 2
        c.s(0.043, "A", 5001, 1101),  # dup 3
        c.c(0.050, "PA", 1101, 5001, b"b" * 100),  # 7 ms after the last dup ACK of 1101
    ]


def seq_out_of_order() -> list[Any]:
    c = Tcp()
    return [
        *c.handshake(),
        c.c(0.030, "PA", 1101, 5001, b"c" * 100),  # 1001..1101 not captured: lost segment
        c.c(0.031, "PA", 1001, 5001, b"c" * 100),  # 1 ms later, fills the hole: out of order
    ]


def seq_zero_window() -> list[Any]:
    c = Tcp()
    return [
        *c.handshake(),
        c.s(0.03, "A", 5001, 1001, win=0),  # zero window
        c.c(0.5, "PA", 1001, 5001, b"z"),  # one byte at the next sequence number: probe
        c.s(0.51, "A", 5001, 1002),  # window open again
    ]


def seq_keep_alive() -> list[Any]:
    c = Tcp()
    return [
        *c.handshake(),
        c.c(0.03, "PA", 1001, 5001, b"k" * 100),
        c.s(0.04, "A", 5001, 1101),
        c.c(10.0, "A", 1100, 5001),  # next expected - 1, no data: keep-alive
    ]


def seq_gap_and_acked_unseen() -> list[Any]:
    c = Tcp()
    return [
        *c.handshake(),
        c.c(0.03, "PA", 1001, 5001, b"g" * 100),
        c.c(0.04, "PA", 1201, 5001, b"g" * 100),  # 1101..1201 missing: lost segment
        c.s(0.05, "A", 5001, 1301),
        c.s(0.06, "A", 5001, 1501),  # acknowledges 200 bytes never sent: ACKed unseen
    ]


ANALYSIS_CASES = {
    # name: (packets, orig counts, resp counts, history)
    "retransmission": (seq_retransmission, analysis(retransmissions=1), no_analysis(), "ShADT"),
    "fast_retransmission": (
        seq_fast_retransmission,
        analysis(fast_retransmissions=1),
        analysis(duplicate_acks=3),
        "ShADaT",
    ),
    "out_of_order": (
        seq_out_of_order,
        analysis(lost_segments=1, out_of_order=1),
        no_analysis(),
        "ShADT",
    ),
    # Wireshark does not advance the next sequence number over a zero-window probe, so
    # the ACK of the probe byte is "ACKed unseen" (tshark 4.0 says so too)
    "zero_window": (
        seq_zero_window,
        analysis(zero_window_probes=1),
        analysis(zero_windows=1, acked_unseen=1),
        None,
    ),
    "keep_alive": (seq_keep_alive, analysis(keep_alives=1), no_analysis(), "ShADa"),
    "gap": (
        seq_gap_and_acked_unseen,
        analysis(lost_segments=1),
        analysis(acked_unseen=1),
        "ShADaG",
    ),
}


@pytest.mark.parametrize("name", list(ANALYSIS_CASES))
def test_tcp_analysis_counters(tmp_path: Path, name: str) -> None:
    build, orig, resp, history = ANALYSIS_CASES[name]
    rec = one(run_table(write(tmp_path / f"{name}.pcap", build())))
    assert rec.orig_tcp == orig
    assert rec.resp_tcp == resp
    if history is not None:
        assert rec.history == history


def test_ack_of_a_zero_window_probe_is_no_content_gap(tmp_path: Path) -> None:
    rec = one(run_table(write(tmp_path / "zw.pcap", seq_zero_window())))
    # S, h, A; a (server ACK) then w (its zero window); D (the probe byte); no G
    assert rec.history == "ShAawD"


def test_gap_sizes_come_from_the_sequence_space(tmp_path: Path) -> None:
    rec = one(run_table(write(tmp_path / "gap.pcap", seq_gap_and_acked_unseen())))
    # payload seen: 200 bytes; Zeek's size: the responder acknowledged up to 1501
    assert rec.orig_payload_bytes == 200
    assert rec.orig_bytes == 1501 - 1000 - 1


def test_keep_alive_ack_is_not_a_duplicate_ack(tmp_path: Path) -> None:
    c = Tcp()
    pkts = [*seq_keep_alive(), c.s(10.001, "A", 5001, 1101)]
    rec = one(run_table(write(tmp_path / "ka.pcap", pkts)))
    assert rec.orig_tcp == analysis(keep_alives=1)
    assert rec.resp_tcp == no_analysis()


TSHARK_FIELDS = {
    "retransmissions": "tcp.analysis.retransmission",
    "fast_retransmissions": "tcp.analysis.fast_retransmission",
    "spurious_retransmissions": "tcp.analysis.spurious_retransmission",
    "out_of_order": "tcp.analysis.out_of_order",
    "duplicate_acks": "tcp.analysis.duplicate_ack",
    "zero_windows": "tcp.analysis.zero_window",
    "zero_window_probes": "tcp.analysis.zero_window_probe",
    "keep_alives": "tcp.analysis.keep_alive",
    "lost_segments": "tcp.analysis.lost_segment",
    "acked_unseen": "tcp.analysis.ack_lost_segment",
}


#: Responder counts where netsift departs from Wireshark on purpose (flows._wireshark):
#: Wireshark does not move "max seq to be acked" past a hole, so the ACK of 1301 (data
#: that was seen, after the lost segment) is "ACKed unseen" too; netsift flags only ACKs
#: beyond everything seen, because Zeek's content-gap letter is derived from it.
WIRESHARK_DIFFERS = {"gap": {"acked_unseen": 2}}


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
def test_tcp_analysis_expectations_agree_with_tshark(tmp_path: Path) -> None:
    """The hand-derived expectations above are what Wireshark itself reports."""
    for name, (build, orig, resp, _) in ANALYSIS_CASES.items():
        path = write(tmp_path / f"{name}.pcap", build())
        args = [TSHARK, "-r", str(path), "-T", "fields", "-e", "tcp.srcport"]
        for field in TSHARK_FIELDS.values():
            args += ["-e", field]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        got = {40000: no_analysis(), 80: no_analysis()}
        for line in out.splitlines():
            port, *flags = line.split("\t")
            for key, value in zip(TSHARK_FIELDS, flags, strict=True):
                if value:
                    got[int(port)][key] += 1
        # Wireshark also puts tcp.analysis.retransmission on fast and spurious
        # retransmissions; netsift counts each segment in one class only
        for side in got.values():
            side["retransmissions"] -= (
                side["fast_retransmissions"] + side["spurious_retransmissions"]
            )
        for key, value in WIRESHARK_DIFFERS.get(name, {}).items():
            assert got[80][key] == value, (name, key)
            got[80][key] = resp[key]
        assert (got[40000], got[80]) == (orig, resp), name


# --- IP fragments ---------------------------------------------------------------------


def fragmented_dns_v4(tmp_path: Path) -> tuple[Path, int]:
    answer = dns_answer(0, answers=20)  # 349 bytes of DNS (357 with UDP): three fragments
    whole = (
        IP(src="10.0.0.53", dst=CLIENT, id=0x4242, proto=17)
        / UDP(sport=53, dport=53000)
        / Raw(answer)
    )
    raw = bytes(whole)
    body = raw[20:]
    size = ((len(body) + 2) // 3 + 7) // 8 * 8  # a third, rounded up to 8-byte units
    frags = []
    for i, off in enumerate(range(0, len(body), size)):
        chunk = body[off : off + size]
        more = off + size < len(body)
        ip = IP(
            src="10.0.0.53",
            dst=CLIENT,
            id=0x4242,
            proto=17,
            flags="MF" if more else 0,
            frag=off // 8,
        )
        frags.append(at(eth(False) / ip / Raw(chunk), 0.02 + i * 0.0001))
    assert len(frags) == 3
    path = write(tmp_path / "frag4.pcap", [dns_query(0), *frags])
    return path, len(answer)


def test_fragmented_dns_response_is_one_reassembled_udp_packet(tmp_path: Path) -> None:
    path, dns_len = fragmented_dns_v4(tmp_path)
    data = report_flows(path)
    f = data["flows"]
    assert f["total"] == 1
    rec = f["records"][0]
    assert (rec["orig_p"], rec["resp_p"], rec["conn_state"], rec["history"]) == (
        53000,
        53,
        "SF",
        "Dd",
    )
    assert (rec["orig_pkts"], rec["resp_pkts"]) == (1, 1)
    assert rec["datagrams_reassembled"] == 1
    assert rec["resp_payload_bytes"] == rec["resp_bytes"] == dns_len
    assert rec["resp_ip_bytes"] == 20 + 8 + dns_len
    assert rec["last_packet"] == {"file": 0, "frame": 4}  # the fragment that completed it
    assert f["packets_not_in_flows"]["fragment"] == 3
    frag = data["fragments"]
    assert frag["counters"]["datagrams_reassembled"] == 1
    assert frag["counters"]["fragments"] == 3
    assert all(v == 0 for v in frag["facts"].values())


def test_fragmented_ipv6_response_is_one_reassembled_udp_packet(tmp_path: Path) -> None:
    c6, s6 = "2001:db8::1", "2001:db8::53"
    q = at(eth(True) / IPv6(src=c6, dst=s6) / UDP(sport=53000, dport=53) / Raw(b"q" * 30), 0)
    payload = b"A" * 400
    body = bytes(UDP(sport=53, dport=53000) / Raw(payload))
    # checksum over the v6 pseudo header: let scapy compute it on the whole datagram
    body = bytes((IPv6(src=s6, dst=c6) / UDP(sport=53, dport=53000) / Raw(payload))[UDP])
    frags = []
    for i, off in enumerate(range(0, len(body), 136)):
        chunk = body[off : off + 136]
        more = int(off + 136 < len(body))
        p = (
            IPv6(src=s6, dst=c6)
            / IPv6ExtHdrFragment(nh=17, offset=off // 8, m=more, id=99)
            / Raw(chunk)
        )
        frags.append(at(eth(False) / p, 0.01 + i * 0.0001))
    assert len(frags) == 3
    data = report_flows(write(tmp_path / "frag6.pcap", [q, *frags]))
    [rec] = data["flows"]["records"]
    assert (rec["transport"], rec["conn_state"], rec["history"]) == ("udp", "SF", "Dd")
    assert rec["datagrams_reassembled"] == 1
    assert rec["resp_payload_bytes"] == 400
    assert rec["resp_ip_bytes"] == 40 + 8 + 400  # the Fragment header is gone
    assert data["fragments"]["counters"]["fragments_ipv6"] == 3


def _frag(t: float, ident: int, proto: int, off8: int, data: bytes, flags: str | int = 0) -> Any:
    ip = IP(src="10.9.0.1", dst="10.9.0.2", id=ident, proto=proto, flags=flags, frag=off8)
    return at(eth(True) / ip / Raw(data), t)


def test_bad_fragment_trains_are_counted(tmp_path: Path) -> None:
    udp_dgram = bytes(UDP(sport=1111, dport=2222, len=48) / Raw(b"u" * 40))  # 48 bytes
    tcp_seg = bytes(TCP(sport=3333, dport=4444, flags="PA", seq=1) / Raw(b"t" * 20))  # 40 bytes
    small = bytes(UDP(sport=5555, dport=6666, len=32) / Raw(b"d" * 24))  # 32 bytes
    pkts = [
        # overlap (identical bytes): 0..24, 16..32 (8 bytes held already), 32..48
        _frag(0.0, 1, 17, 0, udp_dgram[0:24], "MF"),
        _frag(0.1, 1, 17, 2, udp_dgram[16:32], "MF"),
        _frag(0.2, 1, 17, 4, udp_dgram[32:48]),
        # tiny first TCP fragment: 8 transport bytes (< 16), then the rest
        _frag(0.3, 2, 6, 0, tcp_seg[0:8], "MF"),
        _frag(0.4, 2, 6, 1, tcp_seg[8:40]),
        # DF set on both fragments of a datagram
        _frag(0.5, 3, 17, 0, small[0:16], "DF+MF"),
        _frag(0.6, 3, 17, 2, small[16:32], "DF"),
        # a first fragment whose train never completes
        _frag(0.7, 4, 17, 0, udp_dgram[0:24], "MF"),
    ]
    data = report_flows(write(tmp_path / "bad.pcap", pkts))
    facts = data["fragments"]["facts"]
    assert {k: v for k, v in facts.items() if v} == {
        "overlap_identical": 1,
        "tiny_first_fragment": 1,
        "df_on_fragment": 2,
        "incomplete_train": 1,
    }
    counters = data["fragments"]["counters"]
    assert counters["datagrams_reassembled"] == 3
    assert counters["trains_flushed_at_end"] == 1
    f = data["flows"]
    # three reassembled datagrams are three flows; the incomplete train is none
    assert f["total"] == 3
    assert f["packets_not_in_flows"]["fragment"] == 8
    assert sorted(
        (r["transport"], r["orig_p"], r["datagrams_reassembled"]) for r in f["records"]
    ) == [
        ("tcp", 3333, 1),
        ("udp", 1111, 1),
        ("udp", 5555, 1),
    ]
    assert sum(r["orig_pkts"] + r["resp_pkts"] for r in f["records"]) == 3


# --- the report section ---------------------------------------------------------------


def mixed_capture(tmp_path: Path) -> Path:
    conns = [Tcp(cport=40000 + i) for i in range(3)]
    pkts: list[Any] = []
    for i, c in enumerate(conns):
        # connection i sends (i + 1) * 100 bytes up
        pkts += [
            *c.handshake(i),
            c.c(i + 0.03, "PA", 1001, 5001, b"m" * ((i + 1) * 100)),
            c.s(i + 0.04, "A", 5001, 1001 + (i + 1) * 100),
        ]
    pkts += [
        dns_query(5),
        udp(5.01, "10.0.0.53", CLIENT, 53, 53000, dns_answer(0), to_server=False),
    ]
    pkts += [icmp(6, CLIENT, SERVER, 8, 1, 1)]
    pkts.sort(key=lambda p: float(p.time))
    return write(tmp_path / "mixed.pcap", pkts)


@pytest.mark.parametrize(
    ("report_flows_n", "top_n", "complete"), [(1000, 20, True), (2, 20, True), (2, 2, False)]
)
def test_report_section_counts_and_records(
    tmp_path: Path, report_flows_n: int, top_n: int, complete: bool
) -> None:
    path = mixed_capture(tmp_path)
    out = tmp_path / "flows.ndjson"
    data = report_flows(path, flows_path=str(out), report_flows=report_flows_n, top_n=top_n)
    f = data["flows"]
    assert f["engine"] == "python"
    assert f["total"] == 5
    assert f["export"] == {"path": str(out), "records": 5}
    assert len(out.read_text().splitlines()) == 5
    assert f["by_transport"] == {"tcp": 3, "icmp": 1, "udp": 1}
    assert f["by_conn_state"] == {"icmp": {"OTH": 1}, "tcp": {"S1": 3}, "udp": {"SF": 1}}
    assert sum(sum(v.values()) for v in f["by_conn_state"].values()) == f["total"]
    assert f["by_expiration"] == {"end_of_capture": 5}
    # complete when every flow is listed: the 5 flows fit the top-20 lists whatever report_flows says
    assert f["records_complete"] is complete
    assert {r["uid"] for r in f["records"]} >= set(f["top_by_bytes"]) | set(f["top_by_packets"])
    by_uid = {r["uid"]: r for r in f["records"]}
    ip_bytes = [
        by_uid[u]["orig_ip_bytes"] + by_uid[u]["resp_ip_bytes"]
        for u in f["top_by_bytes"]
        if u in by_uid
    ]
    assert ip_bytes == sorted(ip_bytes, reverse=True)
    # the three TCP connections are the largest: 3 x 40 + 40 + data up, 2 x 40 down
    top3 = [by_uid[u] for u in f["top_by_bytes"][:3]]
    assert [r["orig_payload_bytes"] for r in top3] == [300, 200, 100][:top_n]
    assert len(f["top_by_bytes"]) == min(5, top_n)
    if complete:
        assert len(f["records"]) == 5
    else:
        # the largest flows by bytes first, then the top flows by packets not already listed
        assert [r["uid"] for r in f["records"][:2]] == f["top_by_bytes"][:2]
        assert {r["uid"] for r in f["records"]} == set(f["top_by_bytes"]) | set(f["top_by_packets"])


def test_no_flows_drops_both_sections(tmp_path: Path) -> None:
    data = analyze([str(mixed_capture(tmp_path))], flows=False).data
    assert "flows" not in data and "fragments" not in data


CORPUS_CAPTURES = [
    "arkime/tests/pcap/CVE-2018-6794.pcap",
    "arkime/tests/pcap/IKEv2.pcap",
    "arkime/tests/pcap/arkime_synthetic.pcap",
    "arkime/tests/pcap/SNMPv2c_get_requests.pcap",
]


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_CAPTURES)
def test_corpus_report_is_consistent(corpus_dir: Path, tmp_path: Path, name: str) -> None:
    path = corpus_dir / name
    if not path.exists():
        pytest.skip(f"{name} is not in this corpus")
    out = tmp_path / "f.ndjson"
    data = analyze(
        [str(path)], flow_engine="python", flows_path=str(out), report_flows=100_000
    ).data
    f = data["flows"]
    lines = out.read_text().splitlines()
    assert f["total"] == len(lines) == f["export"]["records"] == len(f["records"])
    assert f["records_complete"] is True
    assert sum(sum(v.values()) for v in f["by_conn_state"].values()) == f["total"]
    assert sum(f["by_transport"].values()) == f["total"]
    assert sum(f["by_expiration"].values()) == f["total"]
    # every IP packet that is not a fragment is in exactly one flow
    cap = data["capture"]
    pkts = sum(r["orig_pkts"] + r["resp_pkts"] for r in f["records"])
    reassembled = sum(r["datagrams_reassembled"] for r in f["records"])
    skipped = f["packets_not_in_flows"]
    assert pkts - reassembled + skipped["fragment"] + skipped["no_transport_header"] == (
        cap["ipv4_packets"] + cap["ipv6_packets"]
    )
    assert pkts - reassembled + sum(skipped.values()) == cap["packets"]
    totals = dict.fromkeys(TCP_ANALYSIS, 0)
    for r in f["records"]:
        if "tcp_analysis" in r:
            for k in TCP_ANALYSIS:
                totals[k] += r["tcp_analysis"]["orig"][k] + r["tcp_analysis"]["resp"][k]
    assert totals == f["tcp_analysis"]


@pytest.mark.corpus
def test_corpus_engines_agree(corpus_dir: Path) -> None:
    if not flows_fast.AVAILABLE:
        pytest.skip("the C flow engine is not built")
    path = corpus_dir / "arkime/tests/pcap/arkime_synthetic.pcap"
    if not path.exists():
        pytest.skip("capture absent")
    py = run_table(path)
    c = run_table(path, table=flows_fast.make_flow_table(FlowConfig(), "c"))
    assert sorted(r.to_dict()["uid"] for r in py) == sorted(r.to_dict()["uid"] for r in c)
    assert sorted(str(r.to_dict()) for r in py) == sorted(str(r.to_dict()) for r in c)


def test_engines_agree_on_every_crafted_scenario(tmp_path: Path) -> None:
    if not flows_fast.AVAILABLE:
        pytest.skip("the C flow engine is not built")
    scenarios = {name: build() for name, (build, *_r) in ANALYSIS_CASES.items()}
    scenarios["full"] = full_connection()
    c = Tcp()
    scenarios["reuse"] = [*full_connection(c), c.s(3.0, "FA", 5301, 1102), c.c(4.0, "S", 9000)]
    scenarios["syns"] = [c.c(t, "S", 1000 + t) for t in (0, 1, 3, 6, 8)]
    for name, pkts in scenarios.items():
        path = write(tmp_path / f"{name}.pcap", pkts)
        py = [r.to_dict() for r in run_table(path)]
        cc = [
            r.to_dict()
            for r in run_table(path, table=flows_fast.make_flow_table(FlowConfig(), "c"))
        ]
        assert py == cc, name


# --- command line -----------------------------------------------------------------------


def test_analyze_help_lists_the_flow_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in (
        "--flows FILE", "--no-flows", "--flow-engine", "--max-flows", "--tcp-timeout",
        "--udp-timeout", "--icmp-timeout", "--active-timeout", "--no-vlan-key", "--report-flows",
    ):  # fmt: skip
        assert opt in out, opt
    assert "netsift analyze capture.pcap --flows flows.ndjson" in out
    assert "--flows flows.csv --tcp-timeout 3600 --no-vlan-key" in out


@pytest.mark.parametrize("engine", ["python", "c"])
def test_cli_flow_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str], engine: str) -> None:
    import json

    if engine == "c" and not flows_fast.AVAILABLE:
        pytest.skip("the C flow engine is not built")
    path = mixed_capture(tmp_path)
    code = main(
        [
            "analyze",
            str(path),
            "--json",
            "--flow-engine",
            engine,
            "--udp-timeout",
            "1",
            "--max-flows",
            "3",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    f = json.loads(out)["flows"]
    assert f["engine"] == engine
    assert f["config"]["udp_timeout_s"] == 1.0 and f["config"]["max_flows"] == 3
    assert f["total"] == 5
    # three TCP connections (t = 0, 1, 2) then UDP at 5 and ICMP at 6: two evictions
    assert f["evicted"] == 2


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--tcp-timeout", "nan"], "--tcp-timeout"),
        (["--udp-timeout", "inf"], "--udp-timeout"),
        (["--active-timeout", "1e300"], "--active-timeout"),
        (["--icmp-timeout", "0"], "--icmp-timeout"),
        (["--max-flows", "0"], "--max-flows"),
    ],
)
def test_bad_flow_settings_are_one_line_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    path = mixed_capture(tmp_path)
    assert main(["analyze", str(path), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert named in err.splitlines()[-1]


def test_flow_config_rejects_unusable_timeouts() -> None:
    for bad in (float("nan"), float("inf"), 0.0, -1.0, 2e9):
        with pytest.raises(ValueError, match="tcp_timeout_s"):
            FlowConfig(tcp_timeout_s=bad)
    assert FlowConfig(active_timeout_s=0).active_timeout_s == 0


def test_dns_answer_in_ipv6_fragments_parses_like_zeek(corpus_dir: Path) -> None:
    """The 3,238-byte TXT answer arrives in IPv6 fragments: reassembled, it is one UDP
    packet of its flow and a DNS message whose answers equal Zeek's dns.log."""
    from netsift.capture import CaptureReader
    from netsift.decode_fast import decode
    from netsift.defrag import FragmentTracker
    from netsift.dns import parse_message
    from netsift.pipeline import _datagram_batch

    trace = corpus_dir / "zeek/testing/btest/Traces/ipv6-fragmented-dns.pcap"
    baseline = corpus_dir / "zeek/testing/btest/Baseline/core.ipv6-frag/dns.log"
    if not trace.exists():
        pytest.skip("zeek corpus capture missing")
    tracker = FragmentTracker()
    messages = []
    with CaptureReader(str(trace)) as rd:
        for batch in rd.batches():
            done = tracker.update(decode(batch), batch)
            if done:
                dbatch = _datagram_batch(done)
                cols = decode(dbatch)
                for i in range(len(done)):
                    start = int(dbatch.off[i]) + int(cols.payload_off[i])
                    payload = dbatch.buf[start : start + int(cols.payload_len[i])].tobytes()
                    messages.append(
                        (int(cols.sport[i]), int(cols.dport[i]), parse_message(payload))
                    )
    assert [(sp, dp) for sp, dp, _ in messages] == [(53, 51851)]
    msg = messages[0][2]
    assert msg.id == 40849 and msg.anomalies == ()
    zeek = next(
        line.split("\t")
        for line in baseline.read_text().splitlines()
        if not line.startswith("#")
        and line.split("\t")[7] == "40849"
        and line.split("\t")[21] != "-"
    )
    # Zeek renders the TXT record as "TXT <length> <text>" per character-string
    zeek_strings = [(int(n), t) for n, t in re.findall(r"TXT (\d+) (.*?)(?= TXT \d+ |$)", zeek[21])]
    ours = [(len(s), s.decode()) for rr in msg.answers for s in rr.rdata]  # type: ignore[union-attr]
    assert ours == zeek_strings and len(ours) == 18
    # and the flow counts the reassembled answer once, with its full payload
    records = analyze([str(trace)], flow_engine="python").data["flows"]["records"]
    flow = next(r for r in records if r["orig_p"] == 51851)
    assert flow["datagrams_reassembled"] == 1
    assert flow["resp_pkts"] == 1
    assert flow["resp_payload_bytes"] == 3238 - 8
