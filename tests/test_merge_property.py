"""Property: the merged state of a split run equals the state of one run, for every state type.

Hypothesis generates traffic — TCP sessions (handshakes, data, retransmissions,
FIN/RST, unanswered SYNs), DNS over UDP, ICMP, IPv4 fragment trains (reordered,
overlapping, incomplete), IPv6, VLAN tags, ARP, byte-identical duplicates, idle
gaps past the flow timeouts and timestamps out of order — writes it as one or two
pcap files and reads it in small batches, so that batch boundaries, clocks and
files all matter.  Then for every state type:

- ``run(a + b)`` is one process over everything (``run_part(files, opts)``);
- ``run(a)``, ``run(b)``, ... are the workers of a split run
  (``run_part(files, opts, (k, n))``, :mod:`netsift.partition`);
- ``merge`` is :func:`netsift.pipeline.merge_partials`,

and what each state renders into the report must be equal, list order included.
:class:`~netsift.stats.TrafficStats` is also checked the other way the issue
states it: statistics of file ``a`` merged with those of file ``b`` equal the
statistics of reading ``a`` then ``b``.
"""

from __future__ import annotations

import copy
import json
import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.utils import wrpcap

from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.pipeline import RunOptions, assemble, expand_inputs, merge_partials, run_part
from netsift.stats import TrafficStats

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
V4 = [f"10.9.0.{i}" for i in range(1, 8)]
V6 = ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
BASE = 1_700_000_000.0


def _eth(pkt: Any, vlan: int | None) -> Any:
    head = Ether(src=MAC_A, dst=MAC_B)
    return head / Dot1Q(vlan=vlan) / pkt if vlan is not None else head / pkt


def _tcp_session(r: random.Random, t: float, v6: bool) -> list[tuple[float, Any]]:
    hosts = V6 if v6 else V4
    c, s = r.sample(hosts, 2)
    ip = (lambda src, dst: IPv6(src=src, dst=dst)) if v6 else (lambda src, dst: IP(src=src, dst=dst))
    sp, dp = r.randint(1024, 65535), r.choice([80, 443, 22, 8080, 5001])
    cs, ss = r.randint(0, 2**32 - 1), r.randint(0, 2**32 - 1)
    out: list[tuple[float, Any]] = []

    def add(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, data: bytes = b"") -> None:
        nonlocal t
        t += r.choice([0.0001, 0.002, 0.05, 0.4])
        if r.random() < 0.05:
            t += r.choice([7.0, 70.0, 400.0])  # past the attempt, UDP and TCP timeouts
        out.append((t, ip(src, dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq % 2**32,
                                         ack=ack % 2**32) / data))  # fmt: skip

    add(c, s, sp, dp, "S", cs, 0)
    if r.random() < 0.2:
        add(c, s, sp, dp, "S", cs, 0)  # a retransmitted SYN
    if r.random() < 0.15:
        return out  # unanswered
    add(s, c, dp, sp, "SA", ss, cs + 1)
    add(c, s, sp, dp, "A", cs + 1, ss + 1)
    sent, got = cs + 1, ss + 1
    for _ in range(r.randint(0, 4)):
        data = bytes(r.randrange(256) for _ in range(r.randint(1, 60)))
        add(c, s, sp, dp, "PA", sent, got, data)
        if r.random() < 0.2:
            add(c, s, sp, dp, "PA", sent, got, data)  # retransmission
        sent += len(data)
        add(s, c, dp, sp, "A", got, sent)
    end = r.random()
    if end < 0.5:
        add(c, s, sp, dp, "FA", sent, got)
        add(s, c, dp, sp, "FA", got, sent + 1)
        add(c, s, sp, dp, "A", sent + 1, got + 1)
    elif end < 0.7:
        add(s, c, dp, sp, "R", got, 0)
    return out


def _dns(r: random.Random, t: float) -> list[tuple[float, Any]]:
    c, s = r.sample(V4, 2)
    sp, qid = r.randint(1024, 65535), r.randint(0, 65535)
    label = "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(r.randint(3, 40)))
    name = f"{label}.{r.choice(['example.com', 'example.org', 'test.net'])}"
    qtype = r.choice(["A", "AAAA", "TXT", "MX"])
    q = IP(src=c, dst=s) / UDP(sport=sp, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    out = [(t, q)]
    if r.random() < 0.8:
        rcode = r.choice([0, 0, 0, 3])
        an = DNSRR(rrname=name, type="A", ttl=r.randint(1, 3600), rdata="192.0.2.7") if rcode == 0 else None
        resp = IP(src=s, dst=c) / UDP(sport=53, dport=sp) / DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode,
                                                                qd=DNSQR(qname=name, qtype=qtype), an=an)  # fmt: skip
        out.append((t + r.choice([0.001, 0.03, 0.2]), resp))
    return out


def _fragments(r: random.Random, t: float) -> list[tuple[float, Any]]:
    c, s = r.sample(V4, 2)
    payload = bytes(r.randrange(256) for _ in range(r.randint(100, 900)))
    pkt = IP(src=c, dst=s, id=r.randint(0, 65535)) / UDP(sport=r.randint(1024, 65535), dport=9999) / payload
    frags = list(fragment(pkt, fragsize=r.choice([64, 128, 256])))
    if r.random() < 0.3:
        r.shuffle(frags)
    if r.random() < 0.2 and len(frags) > 1:
        frags.pop(r.randrange(len(frags)))  # never completes
    if r.random() < 0.2:
        frags.append(frags[0].copy())  # a repeated (overlapping) fragment
    return [(t + i * 0.001, f) for i, f in enumerate(frags)]


def _other(r: random.Random, t: float) -> list[tuple[float, Any]]:
    kind = r.random()
    c, s = r.sample(V4, 2)
    if kind < 0.5:
        ident = r.randint(0, 65535)
        return [(t, IP(src=c, dst=s) / ICMP(id=ident)), (t + 0.01, IP(src=s, dst=c) / ICMP(type=0, id=ident))]
    return [(t, ARP(psrc=c, pdst=s))]


def traffic(seed: int, sessions: int, disorder: bool) -> list[tuple[float, bytes]]:
    """Frames (timestamp, bytes) of a random mix of sessions; see the module doc."""
    r = random.Random(seed)
    frames: list[tuple[float, Any, int | None]] = []
    for _ in range(sessions):
        t = BASE + r.uniform(0, 900)
        vlan = r.choice([None, None, None, 7])
        kind = r.random()
        if kind < 0.45:
            items = _tcp_session(r, t, v6=r.random() < 0.25)
        elif kind < 0.7:
            items = _dns(r, t)
        elif kind < 0.85:
            items = _fragments(r, t)
        else:
            items = _other(r, t)
        frames.extend((ts, p, vlan) for ts, p in items)
    frames.sort(key=lambda f: f[0])
    out = [(ts, bytes(_eth(p, vlan))) for ts, p, vlan in frames]
    for i in range(len(out) - 1, 0, -1):
        if r.random() < 0.03:
            out.insert(i, (out[i][0] + 0.000002, out[i][1]))  # a SPAN duplicate
    if disorder:
        for i in range(1, len(out)):
            if r.random() < 0.05:
                out[i - 1], out[i] = out[i], out[i - 1]  # timestamps go backwards
    return out


def _write(path: Path, frames: list[tuple[float, bytes]]) -> str:
    pkts = []
    for ts, raw in frames:
        p = Ether(raw)
        p.time = ts
        pkts.append(p)
    wrpcap(str(path), pkts)
    return str(path)


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(data)
    for key in ("run", "tool"):
        d.pop(key, None)
    return d


def _differences(one: dict[str, Any], merged: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(one) | set(merged)):
        a, b = one.get(key), merged.get(key)
        if json.dumps(a) == json.dumps(b):
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            subs = [k for k in sorted(set(a) | set(b)) if json.dumps(a.get(k)) != json.dumps(b.get(k))]
            out.extend(f"{key}.{k}: {json.dumps(a.get(k))[:300]} != {json.dumps(b.get(k))[:300]}" for k in subs)
        else:
            out.append(f"{key}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}")
    return out


#: small read batches, so that a capture of a few hundred packets spans several
CHUNK = 3000


def _reports(files: list[str], n: int, **kw: Any) -> tuple[dict[str, Any], dict[str, Any], list[int]]:
    """One run's report, the merged split run's, and each worker's flow count."""
    plan = expand_inputs(files)
    opts = RunOptions(chunk_bytes=CHUNK, **kw)
    one = assemble(run_part(plan.files, opts), plan, opts, 1.0).data
    # each partial crosses a pickle, as it does from a worker process to the parent
    parts = [pickle.loads(pickle.dumps(run_part(plan.files, opts, (k, n)))) for k in range(n)]
    flows = [p.summary.flows if p.summary is not None else 0 for p in parts]
    merged = assemble(merge_partials(parts), plan, opts, 1.0).data  # (merges into parts[0])
    return _strip(one), _strip(merged), flows


# No shrinking: a failing example is reported by its seed (a shrink re-runs whole analyses for minutes).
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), sessions=st.integers(5, 60), disorder=st.booleans(),
       n=st.sampled_from([2, 3]), two_files=st.booleans())  # fmt: skip
def test_split_run_equals_one_run(tmp_path: Path, seed: int, sessions: int, disorder: bool, n: int,
                                  two_files: bool) -> None:  # fmt: skip
    frames = traffic(seed, sessions, disorder)
    if two_files:
        cut = len(frames) // 2
        files = [_write(tmp_path / f"a{seed}.pcap", frames[:cut]), _write(tmp_path / f"b{seed}.pcap", frames[cut:])]
    else:
        files = [_write(tmp_path / f"all{seed}.pcap", frames)]
    one, merged, totals = _reports(files, n)
    assert _differences(one, merged) == [], f"seed={seed} sessions={sessions} disorder={disorder} n={n}"
    # the workers really split the flows: none saw them all (when there are several)
    assert sum(totals) == one["flows"]["total"]
    if one["flows"]["total"] >= 10:
        assert max(totals) < one["flows"]["total"]


# -- every state type on its own, with a fixed sample of the same traffic -----------------------

STATES = {
    # state type -> the report keys it renders
    "TrafficStats": ["capture", "quality", "protocols", "top_talkers", "conversations", "ports", "tcp_flags",
                     "packet_sizes", "timeseries", "anomalies"],
    "file figures": ["inputs"],
    "FlowSummary and flow counters": ["flows"],
    "FragmentTracker": ["fragments"],
    "AppLayer": ["dns", "tls", "http"],
    "Detectors": ["findings"],
}


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("merge")
    frames = traffic(20261128, 150, disorder=True)
    cut = len(frames) * 2 // 3
    return [_write(d / "a.pcap", frames[:cut]), _write(d / "b.pcap", frames[cut:])]


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("n", [2, 3, 5])
def test_each_state_merges_exactly(sample_files: list[str], state: str, n: int) -> None:
    one, merged, _parts = _reports(sample_files, n)
    for key in STATES[state]:
        assert key in one, key
        assert json.dumps(merged[key]) == json.dumps(one[key]), _differences({key: one[key]}, {key: merged[key]})


def test_sample_exercises_what_it_claims(sample_files: list[str]) -> None:
    """The fixed sample has what the merge must handle: several batches, fragments, DNS, disorder, duplicates."""
    one, _merged, _parts = _reports(sample_files, 2)
    batches = 0
    for f in sample_files:
        with CaptureReader(f, chunk_bytes=CHUNK) as reader:
            batches += sum(1 for _ in reader.batches())
    assert batches >= 10
    assert one["fragments"]["counters"]["datagrams_reassembled"] > 0
    assert one["fragments"]["facts"]["incomplete_train"] > 0
    assert one["dns"]["messages"] > 0
    assert one["quality"]["out_of_order"] > 0
    assert one["quality"]["duplicates"] > 0
    assert one["flows"]["by_expiration"].get("idle_timeout", 0) > 0
    assert one["flows"]["total"] > 50


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), sessions=st.integers(3, 40))
def test_stats_of_a_then_b_equal_stats_of_a_plus_b(tmp_path: Path, seed: int, sessions: int) -> None:
    """TrafficStats: merge(run(a), run(b)) == run(a + b) with a and b as two files read in turn."""
    frames = traffic(seed, sessions, disorder=False)
    cut = len(frames) // 3
    files = [_write(tmp_path / f"a{seed}.pcap", frames[:cut]), _write(tmp_path / f"b{seed}.pcap", frames[cut:])]

    def run(paths: list[tuple[int, str]]) -> TrafficStats:
        s = TrafficStats()
        for index, path in paths:
            with CaptureReader(path, file_index=index, chunk_bytes=CHUNK) as reader:
                for batch in reader.batches():
                    s.update(decode(batch), batch)
        return s

    a, b, whole = run([(0, files[0])]), run([(1, files[1])]), run(list(enumerate(files)))
    a.merge(b)
    assert json.dumps(a.to_report()) == json.dumps(whole.to_report())
    assert a.packets == whole.packets == len(frames)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), sessions=st.integers(5, 80), disorder=st.booleans())
def test_c_flow_table_expires_as_the_reference(tmp_path: Path, seed: int, sessions: int, disorder: bool) -> None:
    """The C table finds flows due at each batch end with a deadline heap, the Python
    reference by visiting every flow: the flows must be the same."""
    files = [_write(tmp_path / f"t{seed}.pcap", traffic(seed, sessions, disorder))]
    plan = expand_inputs(files)
    out = []
    for engine in ("c", "python"):
        opts = RunOptions(chunk_bytes=CHUNK, flow_engine=engine, app=False, detect=False)
        flows = _strip(assemble(run_part(plan.files, opts), plan, opts, 1.0).data)["flows"]
        assert flows.pop("engine") == engine
        out.append(flows)
    assert out[0] == out[1], f"seed={seed}"
