"""The application layer in the pipeline: streams put in order, hellos and heads across
segments, DNS over UDP, TCP and fragments, QUIC, flow summaries, report sections, packet fields.

Captures are generated with Scapy (explicit MACs) except where a real hello is the point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.all import (
    DNS,
    DNSQR,
    DNSRR,
    IP,
    TCP,
    UDP,
    Ether,
    Packet,
    PcapWriter,
    Raw,
    fragment,
    rdpcap,
)
from scapy.layers.inet6 import IPv6

from netsift import tls
from netsift.applayer import AppLayer, BoundedCounter, registered_domain
from netsift.cli import cli, main
from netsift.pipeline import analyze

MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
A4, B4, C4 = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def write(tmp_path: Path, packets: list[tuple[float, Packet]], name: str = "gen.pcap") -> Path:
    path = tmp_path / name
    with PcapWriter(str(path), linktype=1, sync=True, nano=True) as w:
        for ts, pkt in packets:
            pkt.time = ts
            w.write(pkt)
    return path


def seg(ts: float, src: str, dst: str, sp: int, dp: int, seq: int, data: bytes = b"",
        flags: str = "PA", ack: int = 1) -> tuple[float, Packet]:  # fmt: skip
    pkt = Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
    return ts, (pkt / Raw(data) if data else pkt)


def connection(t: float, sp: int, dp: int, client: list[bytes], server: list[bytes],
               cisn: int = 1000, sisn: int = 5000) -> list[tuple[float, Packet]]:  # fmt: skip
    """A handshake, then the client's chunks, then the server's, as in-order segments."""
    out = [
        seg(t, A4, B4, sp, dp, cisn, flags="S", ack=0),
        seg(t + 0.001, B4, A4, dp, sp, sisn, flags="SA", ack=cisn + 1),
        seg(t + 0.002, A4, B4, sp, dp, cisn + 1, flags="A", ack=sisn + 1),
    ]
    seq = cisn + 1
    for k, chunk in enumerate(client):
        out.append(seg(t + 0.01 + k * 0.001, A4, B4, sp, dp, seq, chunk, ack=sisn + 1))
        seq += len(chunk)
    sseq = sisn + 1
    for k, chunk in enumerate(server):
        out.append(seg(t + 0.05 + k * 0.001, B4, A4, dp, sp, sseq, chunk, ack=seq))
        sseq += len(chunk)
    return out


def chrome_hello(corpus_dir: Path) -> bytes:
    """A real Chrome ClientHello record (FoxIO's tls-handshake capture, first hello)."""
    for p in rdpcap(str(corpus_dir / "foxio-ja4/pcap/tls-handshake.pcapng")):
        if TCP in p:
            data = bytes(p[TCP].payload)
            if data[:1] == b"\x16" and data[5:6] == b"\x01":
                return data
    raise AssertionError("no ClientHello in the capture")


def records(report: Any) -> list[dict[str, Any]]:
    return list(report["flows"]["records"])


def only_flow(report: Any, **match: Any) -> dict[str, Any]:
    found = [r for r in records(report) if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


# --- TLS over TCP ----------------------------------------------------------------------------
def test_hello_split_reordered_and_retransmitted(tmp_path: Path, corpus_dir: Path) -> None:
    hello = chrome_hello(corpus_dir)
    expected = tls.read_hello(hello).hello
    assert isinstance(expected, tls.ClientHello)
    want = tls.client_fingerprints(expected, "t")
    parts = [hello[:100], hello[100:300], hello[300:]]
    pkts = connection(1.0, 40000, 8443, parts, [])
    # deliver the third segment before the second, and retransmit the first
    pkts[4], pkts[5] = pkts[5], pkts[4]
    pkts.insert(4, (pkts[3][0] + 0.0001, pkts[3][1].copy()))
    cap = write(tmp_path, pkts)
    report = analyze(str(cap))
    rec = only_flow(report, resp_p=8443)
    assert rec["service"] == "ssl" and rec["service_from"] == "payload"
    assert rec["tls"]["sni"] == expected.sni
    assert rec["tls"]["ja4"] == want.ja4.hash and rec["tls"]["ja3"] == want.ja3.hash
    assert report["tls"]["client_hellos"] == 1
    assert report["tls"]["top_snis"] == [{"sni": expected.sni, "hellos": 1, "clients": 1}]
    assert report["tls"]["ja4"][0]["fingerprint"] == want.ja4.hash
    assert report["tls"]["clients"]["top"][0]["client"] == A4


def test_hello_fields_sit_on_the_completing_frame(tmp_path: Path, corpus_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    hello = chrome_hello(corpus_dir)
    cap = write(tmp_path, connection(1.0, 40001, 443, [hello[:200], hello[200:]], []))
    with pytest.raises(SystemExit) as done:
        cli.main(["packets", str(cap), "-e", "frame.number,tls.sni,tls.handshake.type",
                  "--filter", "tls"], standalone_mode=True)  # fmt: skip
    assert done.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    sni = tls.read_hello(hello).hello.sni  # type: ignore[union-attr]
    assert lines[1:] == [f"5,{sni},1"]  # frames 1-3 handshake, 4 and 5 the two halves


def test_a_hole_in_a_hello_gives_it_up(tmp_path: Path, corpus_dir: Path) -> None:
    hello = chrome_hello(corpus_dir)
    pkts = connection(1.0, 40002, 443, [hello[:100], hello[100:200], hello[200:]], [])
    del pkts[4]  # the middle segment never arrives
    report = analyze(str(write(tmp_path, pkts)))
    rec = only_flow(report, resp_p=443)
    assert "tls" not in rec and rec["service_from"] == "port"
    assert report["tls"]["client_hellos"] == 0


def test_bulk_payload_is_not_read_and_states_are_dropped(tmp_path: Path) -> None:
    noise = bytes(range(256)) * 4
    pkts = connection(1.0, 40003, 5001, [noise] * 50, [noise] * 50)
    cap = write(tmp_path, pkts)
    app = AppLayer()
    from netsift.capture import CaptureReader
    from netsift.decode_fast import decode
    from netsift.flows import FlowOut, FlowTable, flow_id

    table = FlowTable()
    with CaptureReader(str(cap)) as rd:
        for batch in rd.batches():
            cols = decode(batch)
            out = FlowOut(len(cols))
            table.update(cols, batch, out=out)
            app.update(cols, batch, out)
    assert not app._active  # neither direction was claimed by a parser
    table.finish()
    for r in table.drain():
        assert app.pop(flow_id(r.first_file, r.first_frame)) is None
    assert not app._flows


# --- HTTP ------------------------------------------------------------------------------------
def test_http_pipelined_split_and_on_any_port(tmp_path: Path) -> None:
    req = (b"GET /a HTTP/1.1\r\nHost: one.example\r\nUser-Agent: probe/1\r\n\r\n"
           b"HEAD /b HTTP/1.1\r\nHost: one.example\r\n\r\n"
           b"POST /c HTTP/1.1\r\nHost: two.example\r\nContent-Length: 5\r\n\r\nhello")  # fmt: skip
    resp = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc"
            b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n"  # HEAD: no body follows
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
    # the request stream cut in the middle of a header line, the responses in one segment
    pkts = connection(1.0, 40010, 8888, [req[:30], req[30:]], [resp])
    report = analyze(str(write(tmp_path, pkts)))
    rec = only_flow(report, resp_p=8888)
    assert rec["service"] == "http"
    h = rec["http"]
    assert (h["requests"], h["responses"]) == (3, 3)
    assert [r["method"] for r in h["request_list"]] == ["GET", "HEAD", "POST"]
    assert h["status_codes"] == [200, 200, 404]
    sec = report["http"]
    assert sec["methods"] == {"GET": 1, "HEAD": 1, "POST": 1}
    assert sec["status_codes"] == {"200": 2, "404": 1}
    assert sec["top_hosts"][0] == {"host": "one.example", "requests": 2}
    assert sec["top_user_agents"] == [{"user_agent": "probe/1", "requests": 1}]


def test_http_after_a_long_body_is_still_seen(tmp_path: Path) -> None:
    """Followed directions are read past any size: a second request after 200 kB of body."""
    body = b"x" * 200_000
    req = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n" + body
    req += b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n"
    chunks = [req[i:i + 1400] for i in range(0, len(req), 1400)]
    report = analyze(str(write(tmp_path, connection(1.0, 40011, 80, chunks, []))))
    h = only_flow(report, resp_p=80)["http"]
    assert [r["uri"] for r in h["request_list"]] == ["/up", "/after"]


# --- DNS -------------------------------------------------------------------------------------
def dns_pair(t: float, sport: int, name: str, qid: int, answers: list[str],
             rcode: int = 0) -> list[tuple[float, Packet]]:  # fmt: skip
    q = DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype="A"))
    an = [DNSRR(rrname=name, type="A", ttl=60 + k, rdata=a) for k, a in enumerate(answers)]
    r = DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype="A"), an=an)
    e = Ether(src=MAC_A, dst=MAC_B)
    return [
        (t, e / IP(src=A4, dst=C4) / UDP(sport=sport, dport=53) / q),
        (t + 0.020, e / IP(src=C4, dst=A4) / UDP(sport=53, dport=sport) / r),
    ]


def test_dns_over_udp_summaries_and_section(tmp_path: Path) -> None:
    pkts = dns_pair(1.0, 3001, "www.example.co.uk", 7, ["192.0.2.1", "192.0.2.2"])
    pkts += dns_pair(2.0, 3002, "mail.example.co.uk", 8, [])
    pkts += dns_pair(3.0, 3003, "nope.example.org", 9, [], rcode=3)
    pkts.append((4.0, Ether(src=MAC_A, dst=MAC_B) / IP(src=B4, dst=C4) / UDP(sport=3004, dport=53)
                 / DNS(id=10, qd=DNSQR(qname="lost.example.org"))))  # fmt: skip
    report = analyze(str(write(tmp_path, pkts)))
    rec = only_flow(report, orig_p=3001)
    d = rec["dns"]
    assert d["query"] == "www.example.co.uk" and d["qtype"] == "A" and d["rcode"] == "NOERROR"
    assert d["answers"] == ["192.0.2.1", "192.0.2.2"] and d["ttls"] == [60, 61]
    assert d["rtt_ms"] == pytest.approx(20.0, abs=0.01)
    sec = report["dns"]
    assert (sec["queries"], sec["responses"], sec["answered_queries"], sec["unanswered_queries"]) == (4, 3, 3, 1)
    assert sec["by_rcode"] == {"NOERROR": 2, "NXDOMAIN": 1}
    assert sec["top_registered_domains"][0] == {
        "domain": "example.co.uk", "queries": 2, "distinct_names": 2, "distinct_names_capped": False}
    top = {c["client"]: c for c in sec["clients"]["top"]}
    assert top[A4]["queries"] == 3 and top[A4]["nxdomain"] == 1 and top[A4]["responses"] == 3
    assert top[B4]["queries"] == 1 and top[B4]["responses"] == 0
    assert sec["query_name_length"]["max"] == len("mail.example.co.uk")
    assert sec["rtt"]["matched"] == 3


def test_dns_over_tcp_split_and_batched(tmp_path: Path) -> None:
    m1 = bytes(DNS(id=1, qd=DNSQR(qname="a.example.net")))
    m2 = bytes(DNS(id=2, qd=DNSQR(qname="b.example.net", qtype="AAAA")))
    framed = b"".join(len(m).to_bytes(2, "big") + m for m in (m1, m2))
    r1 = bytes(DNS(id=1, qr=1, qd=DNSQR(qname="a.example.net"), an=DNSRR(rrname="a.example.net", rdata="192.0.2.9")))
    rframed = len(r1).to_bytes(2, "big") + r1
    pkts = connection(1.0, 40020, 53, [framed[:1], framed[1:20], framed[20:]], [rframed[:7], rframed[7:]])
    report = analyze(str(write(tmp_path, pkts)))
    d = only_flow(report, resp_p=53, transport="tcp")["dns"]
    assert (d["queries"], d["responses"]) == (2, 1)
    assert d["answers"] == ["192.0.2.9"]
    assert report["dns"]["over_tcp"] == 3
    assert report["dns"]["by_qtype"] == {"A": 1, "AAAA": 1}


def test_dns_answer_in_fragments(tmp_path: Path) -> None:
    name = "big.example.com"
    an = [DNSRR(rrname=name, type="TXT", rdata=["t" * 200]) for _ in range(10)]
    resp = IP(src=C4, dst=A4, id=77) / UDP(sport=53, dport=3333) / DNS(id=5, qr=1, qd=DNSQR(qname=name, qtype="TXT"), an=an)
    frags = fragment(resp, fragsize=800)
    assert len(frags) >= 3
    q = IP(src=A4, dst=C4) / UDP(sport=3333, dport=53) / DNS(id=5, qd=DNSQR(qname=name, qtype="TXT"))
    e = Ether(src=MAC_A, dst=MAC_B)
    pkts = [(1.0, e / q)] + [(1.01 + k * 0.001, e / f) for k, f in enumerate(frags)]
    report = analyze(str(write(tmp_path, pkts)))
    d = only_flow(report, orig_p=3333)["dns"]
    assert d["responses"] == 1 and len(d["answers"]) == 10 and d["answers"][0] == "t" * 200
    assert report["dns"]["answered_queries"] == 1


# --- QUIC ------------------------------------------------------------------------------------
def test_quic_initial_from_a_real_capture(corpus_dir: Path) -> None:
    report = analyze(str(corpus_dir / "foxio-ja4/pcap/quic-tls-handshake.pcapng"))
    quic = [r for r in records(report) if "quic" in r]
    assert quic and all(r["service"] == "quic" for r in quic)
    assert all(r["quic"]["ja4"].startswith("q13") for r in quic if "ja4" in r["quic"])
    assert report["tls"]["quic_client_hellos"] >= 1


# --- the stage as a whole --------------------------------------------------------------------
def test_no_app_option_and_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path, dns_pair(1.0, 3001, "www.example.com", 1, ["192.0.2.1"]))
    out = tmp_path / "r.json"
    for extra, present in (([], True), (["--no-app"], False)):
        with pytest.raises(SystemExit) as done:
            cli.main(["analyze", str(cap), "-q", "-o", str(out), *extra])
        assert done.value.code == 0
        data = json.loads(out.read_text())
        assert ("dns" in data) is present and ("tls" in data) is present
        rec = data["flows"]["records"][0]
        assert rec["service"] == "dns"
        assert rec["service_from"] == ("payload" if present else "port")


def test_summary_mentions_the_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = write(tmp_path, dns_pair(1.0, 3001, "www.example.com", 1, ["192.0.2.1"]))
    with pytest.raises(SystemExit):
        cli.main(["analyze", str(cap), "--no-progress"])
    text = capsys.readouterr().out
    assert "DNS: 1 queries, 1 responses" in text and "example.com (1)" in text


def test_ipv6_and_vlan_flows(tmp_path: Path) -> None:
    e = Ether(src=MAC_A, dst=MAC_B)
    q = IPv6(src="2001:db8::1", dst="2001:db8::53") / UDP(sport=5000, dport=53) / DNS(id=3, qd=DNSQR(qname="v6.example"))
    report = analyze(str(write(tmp_path, [(1.0, e / q)])))
    assert report["dns"]["clients"]["top"][0]["client"] == "2001:db8::1"


def test_bounded_counter_keeps_the_heaviest_and_says_so() -> None:
    c = BoundedCounter(cap=10)
    c.update(["big"] * 100)
    c.update(f"n{k}" for k in range(1000))
    assert c.top(1) == [("big", 100)]
    assert c.approximate and len(c) <= 20 and c.max_dropped == 1


@pytest.mark.parametrize(("name", "want"), [
    ("www.example.com", "example.com"), ("a.b.c.d.e.f.bbc.co.uk", "bbc.co.uk"),
    ("x.y.z.s3.amazonaws.com", "z.s3.amazonaws.com"), ("co.uk", "co.uk"), ("localhost", "localhost"),
    (".", "."), ("WWW.Example.COM.", "example.com"),
])  # fmt: skip
def test_registered_domain(name: str, want: str) -> None:
    assert registered_domain(name) == want


def test_public_suffix_rules_match_publicsuffixlist() -> None:
    """netsift reads the bundled Public Suffix List itself (faster to load); the rules, and
    the registrable domain of names built around every rule (exceptions, wildcards, IDN
    rules in punycode, names deeper than the longest rule, malformed names), are what
    publicsuffixlist's own parser and ``privatesuffix`` give."""
    import random

    from publicsuffixlist import PublicSuffixList

    from netsift import applayer

    ref = PublicSuffixList()
    rules, maxlabel = applayer._load_psl()
    assert rules == ref._publicsuffix and maxlabel == ref._maxlabel
    assert any(r.startswith("!") for r in rules) and any(r.startswith("*.") for r in rules)
    assert any(r.startswith("xn--") for r in rules)
    names = {"", "com", "a..com", ".com", "localhost", "x.*.ck", "www.ck", "a.www.ck", "city.kobe.jp"}
    for r in rules:
        core = r.lstrip("!").removeprefix("*.")
        names |= {core, f"x.{core}", f"a.b.{core}", f"a.b.c.d.e.f.g.h.{core}"}
    rng = random.Random(5)
    for _ in range(5000):
        labels = [rng.choice(["a", "www", "xn--80ak6aa92e", "city", "b-c", "1", ""]) for _ in range(rng.randrange(6))]
        names.add(".".join([*labels, rng.choice(["com", "uk", "co.uk", "jp", "kobe.jp", "ck", "zz", "arpa"])]))
    wrong = [n for n in names if n and applayer._private_suffix(n) != (ref.privatesuffix(n) or n)]
    assert not wrong, wrong[:5]


def test_exports_carry_the_summaries(tmp_path: Path, corpus_dir: Path) -> None:
    import csv

    hello = chrome_hello(corpus_dir)
    sni = tls.read_hello(hello).hello.sni  # type: ignore[union-attr]
    pkts = dns_pair(1.0, 3001, "www.example.com", 1, ["192.0.2.1"])
    pkts += connection(2.0, 40030, 443, [hello], [])
    pkts += connection(3.0, 40031, 80, [b"GET /x?y=1 HTTP/1.1\r\nHost: h.example:8080\r\nUser-Agent: ua/2\r\n\r\n"],
                       [b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n"])  # fmt: skip
    cap = write(tmp_path, pkts)
    nd, cs = tmp_path / "f.ndjson", tmp_path / "f.csv"
    analyze(str(cap), flows_path=str(nd))
    analyze(str(cap), flows_path=str(cs))
    docs = [json.loads(line) for line in nd.read_text().splitlines()]
    by_port = {d["destination"]["port"]: d for d in docs}
    assert by_port[53]["dns"] == {"question": {"name": "www.example.com", "type": "A"}, "response_code": "NOERROR",
                                  "answers": [{"data": "192.0.2.1", "ttl": 60}]}  # fmt: skip
    assert by_port[53]["network"]["protocol"] == "dns"
    assert by_port[443]["tls"]["client"]["server_name"] == sni
    assert by_port[443]["netsift"]["flow"]["tls"]["ja4"].startswith("t13d")
    assert by_port[80]["http"] == {"request": {"method": "GET"}, "response": {"status_code": 301}}
    assert by_port[80]["url"] == {"original": "/x?y=1", "domain": "h.example"}
    assert by_port[80]["user_agent"] == {"original": "ua/2"}
    rows = {r["resp_p"]: r for r in csv.DictReader(cs.open())}
    assert rows["53"]["dns_query"] == "www.example.com" and rows["53"]["service_from"] == "payload"
    assert rows["443"]["tls_sni"] == sni and rows["443"]["tls_ja4"].startswith("t13d")
    assert (rows["80"]["http_host"], rows["80"]["http_status"]) == ("h.example:8080", "301")


def test_hello_retry_request_reads_the_second_hello(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tls-handshake.pcapng, port 50159: CH (119), HelloRetryRequest (124), CH2 (125), SH (133)."""
    cap = corpus_dir / "foxio-ja4/pcap/tls-handshake.pcapng"
    report = analyze(str(cap), report_flows=10**6)
    rec = only_flow(report, orig_p=50159)
    t = rec["tls"]
    assert t["hello_retry_request"] is True
    assert t["ja4"] == "t13d1516h2_8daaf6152771_e5627efa2ab1"  # FoxIO's JA4.1
    assert t["retry_ja4"] == "t13d1515h2_8daaf6152771_f37e75b10bcc"  # FoxIO's JA4.2
    assert t["version"] == "TLSv1.3" and t["ja3s"] == "15af977ce25de452b96affa2addb1036"
    assert report["tls"]["hello_retry_requests"] == 5
    with pytest.raises(SystemExit):
        cli.main(["packets", str(cap), "-e", "frame.number,tls.handshake.type",
                  "--filter", "tcp.port == 50159 and tls"])  # fmt: skip
    assert capsys.readouterr().out.split() == ["frame.number,tls.handshake.type", "119,1", "124,2", "125,1", "133,2"]


def test_filter_contains_and_matches_on_text_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkts = dns_pair(1.0, 3001, "www.Example.com", 1, ["192.0.2.1"])
    pkts += dns_pair(2.0, 3002, "tunnel-4a6f.evil.example", 2, [])
    cap = write(tmp_path, pkts)
    for expr, want in (
        ('dns.qname contains "Example"', ["1", "2"]),
        ('dns.qname contains "example"', ["3", "4"]),
        ('dns.qname matches "^www\\.EXAMPLE"', ["1", "2"]),  # case-insensitive, regex escapes kept
        ('dns.qname ~ "[0-9a-f]{4}\\.evil" and dns.flags.response', ["4"]),
        ('not dns.qname contains "evil"', ["1", "2"]),
    ):
        with pytest.raises(SystemExit) as done:
            cli.main(["packets", str(cap), "-e", "frame.number", "--filter", expr])
        assert done.value.code == 0, expr
        assert capsys.readouterr().out.split()[1:] == want, expr
    for expr, message in (('ip.ttl contains "1"', "applies to text fields"),
                          ('dns.qname matches "("', "bad regular expression at column 19"),
                          ("dns.qname contains evil", "a quoted string")):  # fmt: skip
        assert main(["packets", str(cap), "-e", "frame.number", "--filter", expr]) == 2
        assert message in capsys.readouterr().err, expr


PREFIXES = [b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"\x00\x1c\x12\x34\x01\x00\x00\x01"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(-300, 3000), st.sampled_from(PREFIXES),
                          st.binary(max_size=300)), min_size=1, max_size=25),
       st.sampled_from([53, 80, 443, 8080, 5555]))
def test_hostile_streams_never_raise(tmp_path: Path, segs: list[tuple[int, int, bytes, bytes]], port: int) -> None:
    """Segments in any order, overlapping, with gaps and retransmissions, carrying hello,
    head and DNS prefixes followed by garbage: the run ends with a report, state freed."""
    pkts = []
    for k, (d, off, prefix, body) in enumerate(segs):
        data = (prefix + body) or b"x"
        src, dst, sp, dp = (A4, B4, 40000, port) if d == 0 else (B4, A4, port, 40000)
        pkts.append(seg(1.0 + k * 0.001, src, dst, sp, dp, (1000 if d == 0 else 9000) + off, data))
    cap = write(tmp_path, pkts, f"h{abs(hash(tuple(segs))) % 10**8}.pcap")
    report = analyze(str(cap), report_flows=10)
    assert report["flows"]["total"] >= 1
    assert report["dns"]["messages"] >= 0 and report["http"]["requests"] >= 0


def talk(t: float, sp: int, dp: int, turns: list[tuple[int, bytes]], lose: frozenset[int] = frozenset(),
         cisn: int = 1000, sisn: int = 5000) -> list[tuple[float, Packet]]:  # fmt: skip
    """A handshake, then ``turns`` of (0 client / 1 server, bytes) with correct seq/ack;
    turn indexes in ``lose`` are left out of the capture (still acknowledged)."""
    out = [seg(t, A4, B4, sp, dp, cisn, flags="S", ack=0),
           seg(t + 0.001, B4, A4, dp, sp, sisn, flags="SA", ack=cisn + 1),
           seg(t + 0.002, A4, B4, sp, dp, cisn + 1, flags="A", ack=sisn + 1)]  # fmt: skip
    nxt = [cisn + 1, sisn + 1]
    for k, (d, data) in enumerate(turns):
        src, dst, a, b = (A4, B4, sp, dp) if d == 0 else (B4, A4, dp, sp)
        pkt = seg(t + 0.01 * (k + 1), src, dst, a, b, nxt[d], data, ack=nxt[1 - d])
        nxt[d] += len(data)
        if k not in lose:
            out.append(pkt)
    return out


def test_starttls_and_connect_tunnels(tmp_path: Path, corpus_dir: Path) -> None:
    hello = chrome_hello(corpus_dir)
    sni = tls.read_hello(hello).hello.sni  # type: ignore[union-attr]
    smtp = talk(1.0, 40100, 25, [(1, b"220 mx ESMTP\r\n"), (0, b"EHLO me\r\n"), (1, b"250-mx\r\n250 STARTTLS\r\n"),
                                 (0, b"STARTTLS\r\n"), (1, b"220 go ahead\r\n"), (0, hello)])  # fmt: skip
    proxy = talk(2.0, 40101, 3128, [(0, b"CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n"),
                                    (1, b"HTTP/1.1 200 Connection established\r\n\r\n"), (0, hello)])  # fmt: skip
    report = analyze(str(write(tmp_path, smtp + proxy)))
    mail = only_flow(report, resp_p=25)
    assert mail["service"] == "smtp,ssl" and mail["tls"]["sni"] == sni
    tunnel = only_flow(report, resp_p=3128)
    assert tunnel["service"] == "http,ssl" and tunnel["tls"]["sni"] == sni
    assert tunnel["http"]["request_list"][0]["method"] == "CONNECT"
    assert report["tls"]["client_hellos"] == 2


def test_lost_segments_are_skipped_once_acknowledged(tmp_path: Path) -> None:
    """The capture lost a request's body segment and a response head: the later
    requests and responses are still read, on their own frames."""
    turns = [(0, b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"), (0, b"0123456789"),
             (1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), (1, b"ok"),
             (0, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"), (1, b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n")]
    report = analyze(str(write(tmp_path, talk(1.0, 40110, 80, turns, lose=frozenset({1, 2})))))
    h = only_flow(report, resp_p=80)["http"]
    assert [r["uri"] for r in h["request_list"]] == ["/a", "/b"]
    assert h["status_codes"] == [404]


def test_a_keepalive_byte_does_not_decide_a_direction(tmp_path: Path) -> None:
    turns = [(0, b"\x00"), (0, b"GET /k HTTP/1.1\r\nHost: h\r\n\r\n"), (1, b"HTTP/1.1 204 No Content\r\n\r\n")]
    h = only_flow(analyze(str(write(tmp_path, talk(1.0, 40120, 8000, turns)))), resp_p=8000)["http"]
    assert h["request_list"][0]["uri"] == "/k" and h["status_codes"] == [204]


def test_hello_retry_after_an_unclaimed_first_payload(corpus_dir: Path) -> None:
    """nDPI's pgsql2: PostgreSQL's SSLRequest on port 60102 claims nothing, the first
    ClientHello goes unread, and the HelloRetryRequest opens the client direction again:
    its second hello (in the same batch) must be read even though the direction's first
    payload was set aside as one no parser wants."""
    report = analyze(str(corpus_dir / "ndpi/tests/cfgs/default/pcap/pgsql2.pcapng"), report_flows=10)
    assert report["tls"]["hello_retry_requests"] == 1
    assert report["tls"]["client_hellos"] == 1
    assert report["tls"]["ja4"][0]["fingerprint"] == "t13i360900_018971650b2c_5fb67df6121e"


def test_chunked_bodies_over_many_segments(tmp_path: Path) -> None:
    """Responses whose chunked and sized bodies span segments are skipped by their framing;
    the pipelined heads after them are all read."""
    chunk = b"y" * 3000
    resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
            + b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n" + b"z" * 9000
            + b"HTTP/1.1 304 Not Modified\r\n\r\n")  # fmt: skip
    req = b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % k for k in range(3))
    chunks = [resp[i:i + 1400] for i in range(0, len(resp), 1400)]
    report = analyze(str(write(tmp_path, connection(1.0, 40012, 8080, [req], chunks))))
    h = only_flow(report, resp_p=8080)["http"]
    assert (h["requests"], h["responses"], h["status_codes"]) == (3, 3, [200, 200, 304])


def test_dns_clients_carry_the_mean_entropy_ratio_of_their_names(tmp_path):
    import random

    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from netsift.entropy import entropy_ratio

    rng = random.Random(5)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    words = ["mail", "static", "images", "accounts", "calendar", "downloads", "support", "status"]
    pkts = []
    encoded = ["".join(rng.choice("0123456789abcdef") for _ in range(32)) for _ in range(30)]
    for i, label in enumerate(encoded):
        pkts.append(eth / IP(src="10.1.0.1", dst="10.1.0.53") / UDP(sport=30000 + i, dport=53)
                    / DNS(id=i, qd=DNSQR(qname=f"{label}.c2.example.net")))
    for i in range(30):
        name = f"{rng.choice(words)}-{rng.choice(words)}-{rng.choice(words)}.example.org"
        pkts.append(eth / IP(src="10.1.0.2", dst="10.1.0.53") / UDP(sport=31000 + i, dport=53)
                    / DNS(id=i, qd=DNSQR(qname=name)))
    for i in range(5):  # no subdomain part of 16 characters: nothing to measure
        pkts.append(eth / IP(src="10.1.0.3", dst="10.1.0.53") / UDP(sport=32000 + i, dport=53)
                    / DNS(id=i, qd=DNSQR(qname=f"www{i}.example.com")))
    path = tmp_path / "entropy.pcap"
    wrpcap(str(path), pkts)
    from netsift.pipeline import analyze

    clients = {c["client"]: c for c in analyze(str(path)).data["dns"]["clients"]["top"]}
    hexy = clients["10.1.0.1"]["mean_entropy_ratio"]
    wordy = clients["10.1.0.2"]["mean_entropy_ratio"]
    assert clients["10.1.0.3"]["mean_entropy_ratio"] is None
    assert hexy == round(sum(entropy_ratio(x) for x in encoded) / len(encoded), 3)
    assert hexy > 0.95 > wordy > 0.5
