"""The SYN scan's logic without sending: scope and target parsing, answer classification, rounds.

Real packets are sent only in tests/test_active_netns.py, between namespaces it creates.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

from netsift.cli import main
from netsift.errors import ScopeError, UsageError
from netsift.scan import build_probes, classify, make_plan, run_scan
from netsift.scope import expand_targets, load_scope, parse_ports

A = ipaddress.ip_address


def test_scope_from_cidrs_and_a_file(tmp_path):
    f = tmp_path / "scope.txt"
    f.write_text("# lab\n192.0.2.0/28  # web\n\n2001:db8::/64\n")
    scope = load_scope([str(f), "198.51.100.7"])
    assert A("192.0.2.15") in scope and A("192.0.2.16") not in scope
    assert A("2001:db8::1") in scope and A("2001:db8:1::1") not in scope
    assert A("198.51.100.7") in scope and A("198.51.100.8") not in scope
    scope.check([A("192.0.2.1"), A("198.51.100.7")])
    with pytest.raises(ScopeError, match=r"target 192\.0\.2\.16 is outside the authorized scope"):
        scope.check([A("192.0.2.1"), A("192.0.2.16")])
    with pytest.raises(ScopeError, match="no scope given"):
        load_scope([]).check([A("192.0.2.1")])
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\nnot-a-net\n")
    with pytest.raises(UsageError, match=r"bad\.txt:2: 'not-a-net' is not an address"):
        load_scope([str(bad)])


def test_targets_and_ports():
    assert expand_targets(["192.0.2.0/30", "192.0.2.1", "2001:db8::5"]) == [
        A("192.0.2.1"), A("192.0.2.2"), A("2001:db8::5")]
    assert expand_targets(["192.0.2.9/32"]) == [A("192.0.2.9")]
    with pytest.raises(UsageError, match="at most 65536 per run"):
        expand_targets(["10.0.0.0/8"])
    assert expand_targets(["localhost"])  # host names resolve
    with pytest.raises(UsageError, match="not an address, CIDR range or known host name"):
        expand_targets(["no-such-host.invalid"])
    assert parse_ports("80,22,1000-1002,22") == [22, 80, 1000, 1001, 1002]
    assert len(parse_ports("-")) == 65535
    for bad, msg in (("70000", "outside 0-65535"), ("9-3", "runs backwards"), ("ssh", "not a port number")):
        with pytest.raises(UsageError, match=msg):
            parse_ports(bad)


def test_plan_checks_scope_and_limits_before_anything():
    scope = load_scope(["192.0.2.0/24"])
    with pytest.raises(ScopeError):
        make_plan([A("192.0.2.1"), A("203.0.113.1")], [80], scope)
    for kw, msg in (({"rate": 0}, "--rate"), ({"rate": 1e6}, "--rate"), ({"retries": -1}, "--retries"),
                    ({"timeout": 0}, "--timeout")):
        with pytest.raises(UsageError, match=msg):
            make_plan([A("192.0.2.1")], [80], scope, **kw)
    with pytest.raises(UsageError, match="multicast"):
        make_plan([A("224.0.0.1")], [80], load_scope(["224.0.0.0/4"]))


def test_probes_cover_every_pair_in_random_repeatable_order():
    plan = make_plan([A("192.0.2.1"), A("2001:db8::1")], [22, 80, 443], load_scope(["192.0.2.0/24", "2001:db8::/64"]),
                     seed=3)
    probes = build_probes(plan)
    pairs = [(p.dst, p[TCP].dport) for p in probes]
    assert sorted(pairs) == sorted((a, p) for a in ("192.0.2.1", "2001:db8::1") for p in (22, 80, 443))
    assert pairs == [(p.dst, p[TCP].dport) for p in build_probes(plan)]  # seeded: repeatable
    assert pairs != sorted(pairs) or len(pairs) < 3
    assert all(p[TCP].flags == "S" and 32768 <= p[TCP].sport <= 60999 for p in probes)
    assert {p.version for p in probes} == {4, 6}


def _syn(dst="192.0.2.1", dport=80):
    return IP(src="192.0.2.100", dst=dst) / TCP(sport=40000, dport=dport, flags="S", seq=1000)


@pytest.mark.parametrize(("answer", "expected"), [
    (IP(src="192.0.2.1", ttl=61) / TCP(sport=80, dport=40000, flags="SA", ack=1001), ("open", "syn-ack", 61)),
    (IP(src="192.0.2.1", ttl=61) / TCP(sport=80, dport=40000, flags="S"), ("open", "split-handshake-syn", 61)),
    (IP(src="192.0.2.1", ttl=64) / TCP(sport=80, dport=40000, flags="RA"), ("closed", "reset", 64)),
    (IP(src="192.0.2.254", ttl=250) / ICMP(type=3, code=13) / IPerror(dst="192.0.2.1") / TCPerror(dport=80),
     ("filtered", "admin-prohibited", 250)),
    (IP(src="192.0.2.254") / ICMP(type=3, code=1) / IPerror() / TCPerror(), ("filtered", "host-unreach", 64)),
    (IP(src="192.0.2.254") / ICMP(type=3, code=0) / IPerror() / TCPerror(), ("filtered", "net-unreach", 64)),
    (IPv6(src="2001:db8::1", hlim=60) / ICMPv6DestUnreach(code=1), ("filtered", "admin-prohibited", 60)),
    (IPv6(src="2001:db8::1", hlim=60) / ICMPv6DestUnreach(code=4), ("filtered", "port-unreach", 60)),
    (IP(src="192.0.2.1") / TCP(flags="A"), ("unknown", "tcp-flags-A", 64)),
])
def test_answers_get_nmaps_states(answer, expected):
    assert classify(IP(bytes(answer)) if IP in answer else IPv6(bytes(answer))) == expected


class FakeNetwork:
    """Answers like a host with 22 open, 23 closed, 24 silent, 25 answering only the second try."""

    def __init__(self):
        self.rounds = []
        self.sent = []
        self.tries = {}

    def answer(self, probe):
        port = probe[TCP].dport
        self.tries[port] = self.tries.get(port, 0) + 1
        reply = IP(src=probe.dst, dst="192.0.2.100", ttl=63)
        if port == 22:
            return reply / TCP(sport=22, dport=probe.sport, flags="SA", seq=5, ack=probe.seq + 1)
        if port == 23:
            return reply / TCP(sport=23, dport=probe.sport, flags="RA", ack=probe.seq + 1)
        if port == 25 and self.tries[port] == 2:
            return reply / TCP(sport=25, dport=probe.sport, flags="SA", seq=9, ack=probe.seq + 1)
        return None

    def sr(self, pkts, inter, timeout, verbose):
        self.rounds.append((len(pkts), inter, timeout))
        ans, unans = [], []
        for p in pkts:
            p.sent_time = 100.0
            r = self.answer(p)
            if r is None:
                unans.append(p)
            else:
                r.time = 100.002
                ans.append((p, r))
        return ans, unans

    def send(self, pkts, inter, verbose):
        self.sent.extend(pkts)


def test_rounds_retries_and_rst_teardown():
    net = FakeNetwork()
    plan = make_plan([A("192.0.2.1")], [22, 23, 24, 25], load_scope(["192.0.2.1"]), retries=2, rate=50,
                     timeout=0.25, seed=1)
    result = run_scan(plan, sr=net.sr, send=net.send)
    assert net.rounds == [(4, 0.02, 0.25), (2, 0.02, 0.25), (1, 0.02, 0.25)]
    states = {port: (r.state, r.reason, r.tries) for (_h, port), r in result.results.items()}
    assert states == {22: ("open", "syn-ack", 1), 23: ("closed", "reset", 1), 24: ("filtered", "no-response", 3),
                      25: ("open", "syn-ack", 2)}
    assert result.results[("192.0.2.1", 22)].rtt_ms == 2.0
    assert result.probes_sent == 7 and result.retransmissions == 3 and result.rsts_sent == 2
    rst = {p[TCP].dport: p for p in net.sent}
    assert set(rst) == {22, 25} and all(p[TCP].flags == "R" for p in rst.values())
    probe_seq = {p[TCP].dport: p[TCP].seq for p in build_probes(plan)}
    assert rst[22][TCP].seq == probe_seq[22] + 1  # the SYN-ACK's ack
    data = result.to_json()
    assert data["scan"]["states"] == {"open": 2, "closed": 1, "filtered": 1, "unknown": 0}
    assert [p["port"] for p in data["hosts"][0]["ports"]] == [22, 23, 24, 25]


def test_cli_refuses_out_of_scope_and_bad_options(tmp_path, capsys):
    assert main(["scan", "203.0.113.5", "-p", "80", "--scope", "192.0.2.0/24"]) == 8
    assert capsys.readouterr().err.strip() == (
        "netsift: error: target 203.0.113.5 is outside the authorized scope (192.0.2.0/24); nothing was sent")
    assert main(["scan", "192.0.2.5", "-p", "80"]) == 8
    assert main(["scan", "192.0.2.5", "-p", "http", "--scope", "192.0.2.5"]) == 2
    assert main(["scan", "192.0.2.5", "-p", "80", "--scope", "192.0.2.5", "--rate", "0"]) == 2


def test_dry_run_writes_probes_without_privilege(tmp_path):
    from netsift.pipeline import analyze

    out = tmp_path / "probes.pcapng"
    assert main(["scan", "192.0.2.1", "192.0.2.2", "-p", "1-5", "--scope", "192.0.2.0/30", "--dry-run", str(out),
                 "-o", str(tmp_path / "scan.json")]) == 0
    data = analyze(str(out), detect=False).data
    assert data["capture"]["packets"] == 10
    assert data["capture"]["link_types"][0]["link_type"] == 101
