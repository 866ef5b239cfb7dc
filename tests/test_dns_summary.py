"""DNS summaries: the C fast path (``netsift._dns``) against its specification.

``dns.summarize_py`` is built from ``parse_message`` and is the definition;
the C ``summarize`` must return exactly the same :class:`DnsSummary` on the
DNS payloads of the shared corpus, on Scapy-built messages of every rendered
type (plain and compressed), and under Hypothesis on random bytes, random
record sequences and mutated real messages (truncation, flipped bytes,
random pointers).  The C tests skip when the extension is not built.
"""

from __future__ import annotations

import csv
import ipaddress
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.config import conf
from scapy.layers.dns import (
    DNS,
    DNSQR,
    DNSRR,
    DNSRRHTTPS,
    DNSRRMX,
    DNSRROPT,
    DNSRRSOA,
    DNSRRSRV,
    EDNS0TLV,
    dns_compress,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether, Loopback
from scapy.utils import PcapReader

from conftest import find_corpus
from netsift import dns
from netsift.dns import ANOMALIES, DnsSummary, summarize_py

DNS_PORTS = frozenset({53, 5353, 5355})


# --------------------------------------------------------------- builders


def header(
    ident: int = 0x1234, flags: int = 0x8180, qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"


def rr(name: bytes, rtype: int, rdata: bytes, rclass: int = 1, ttl: int = 300) -> bytes:
    return name + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


QUESTION = wire_name(b"www", b"example", b"com") + struct.pack(">HH", 1, 1)  # at offset 12


def scapy_messages() -> list[bytes]:
    """Messages of every type the summary renders, and some it does not."""
    q = [DNSQR(qname="www.example.org", qtype="A")]
    answers: list[Any] = [
        DNSRR(rrname="www.example.org", type="CNAME", rdata="cdn.example.net", ttl=60),
        DNSRR(rrname="cdn.example.net", type="A", rdata="198.51.100.9", ttl=30),
        DNSRR(rrname="cdn.example.net", type="AAAA", rdata="2001:db8::9"),
        DNSRR(rrname="cdn.example.net", type="AAAA", rdata="::ffff:192.0.2.1"),
        DNSRR(rrname="cdn.example.net", type="AAAA", rdata="1:0:0:2:0:0:0:3"),
        DNSRR(rrname="example.org", type="NS", rdata="ns1.example.org"),
        DNSRR(rrname="9.100.51.198.in-addr.arpa", type="PTR", rdata="host.example.org"),
        DNSRR(rrname="old.example.org", type="DNAME", rdata="new.example.net"),
        DNSRR(rrname="example.org", type="TXT", rdata=[b"v=spf1 -all", b"x\xe9y", b""]),
        DNSRRMX(rrname="example.org", preference=5, exchange="mx.example.org"),
        DNSRRSRV(
            rrname="_sip._udp.example.org",
            priority=1,
            weight=2,
            port=5060,
            target="sip.example.org",
        ),
        DNSRRSOA(
            rrname="example.org",
            mname="ns.example.org",
            rname="h.example.org",
            serial=7,
            refresh=8,
            retry=9,
            expire=10,
            minimum=11,
        ),
        DNSRRHTTPS(rrname="example.org", svc_priority=1, target_name="svc.example.org"),
        DNSRR(rrname="example.org", type="NULL", rdata=b"\x00\x01"),
    ]
    built = [
        DNS(
            id=0xBEEF,
            qr=1,
            rd=1,
            ra=1,
            qd=q,
            an=answers,
            ns=[DNSRRSOA(rrname="example.org", mname="ns.example.org", rname="h.example.org")],
            ar=[
                DNSRROPT(
                    rclass=1232,
                    extrcode=1,
                    z=0x8000,
                    rdata=[EDNS0TLV(optcode=10, optdata=b"12345678")],
                )
            ],
        ),
        DNS(id=7, rd=1, qd=[DNSQR(qname="example.com", qtype="AAAA")], ar=[DNSRROPT(rclass=4096)]),
        DNS(id=8, qr=1, rcode=3, qd=[DNSQR(qname="nx.example.com")]),
    ]
    out: list[bytes] = []
    for msg in built:
        out.append(bytes(msg))
        out.append(bytes(dns_compress(msg)))
    for one in answers:
        msg = DNS(id=9, qr=1, qd=q, an=[one])
        out.append(bytes(msg))
        out.append(bytes(dns_compress(msg)))
    return out


SCAPY_MESSAGES = scapy_messages()


def corpus_dns_files(corpus: Path) -> list[Path]:
    """The captures tshark found DNS in (the reference list of test_dns.py)."""
    with (corpus / "tshark-reference" / "dns.tsv").open(newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        names = sorted({row[0] for row in reader})
    return [corpus / name for name in names if (corpus / name).is_file()]


def udp_dns_payloads(paths: list[Path]) -> Iterator[tuple[str, bytes]]:
    """UDP payloads to or from a DNS port, read by Scapy.

    Dissection stops at UDP (``conf.layers.filter``) so the payload is the
    captured octets, not Scapy's DNS re-encoding of them.
    """
    conf.layers.filter([Ether, CookedLinux, Dot1Q, Loopback, IP, IPv6, UDP])
    try:
        for path in paths:
            try:
                reader = PcapReader(str(path))
            except Exception:  # a format Scapy cannot read: skip it
                continue
            with reader:
                for i, pkt in enumerate(reader):
                    udp = pkt.getlayer(UDP)
                    if udp is not None and {udp.sport, udp.dport} & DNS_PORTS:
                        yield f"{path.name}#{i + 1}", bytes(udp.payload)
    finally:
        conf.layers.unfilter()


def _seed_messages() -> list[bytes]:
    """Real messages to mutate: a few corpus captures when present, else Scapy's."""
    seeds = list(SCAPY_MESSAGES)
    corpus = find_corpus()
    if corpus is not None:
        wanted = [
            corpus / rel
            for rel in (
                "zeek/testing/btest/Traces/dns-edns-ecs.pcap",
                "pcapplusplus/Tests/Pcap++Test/PcapExamples/DnsPackets.pcap",
                "arkime/tests/pcap/dnssec_synthetic.pcap",
            )
            if (corpus / rel).is_file()
        ]
        seeds += sorted({p for _, p in udp_dns_payloads(wanted)})[:300]
    return seeds


SEEDS = _seed_messages()


# ------------------------------------------------- meaning (either engine)


@pytest.fixture(params=["py", "c"])
def summarize(request: pytest.FixtureRequest) -> Any:
    if request.param == "c":
        return pytest.importorskip("netsift._dns").summarize
    return summarize_py


def test_a_answer_and_cname_chain(summarize: Any) -> None:
    ptr = b"\xc0\x0c"
    msg = (
        header(qd=1, an=3)
        + QUESTION
        + rr(ptr, 5, wire_name(b"edge", b"example", b"net"), ttl=60)
        + rr(b"\xc0\x2d", 5, wire_name(b"e1")[:-1] + b"\xc0\x2d", ttl=50)  # e1.edge.example.net
        + rr(b"\xc0\x45", 1, bytes([192, 0, 2, 7]), ttl=40)
    )
    s = DnsSummary(*summarize(msg))
    assert s == DnsSummary(
        id=0x1234,
        flags=0x8180,
        rcode=0,
        counts=(1, 3, 0, 0),
        qname="www.example.com",
        qtype=1,
        qclass=1,
        answers=((5, 60, "edge.example.net"), (5, 50, "e1.edge.example.net"), (1, 40, "192.0.2.7")),
        anomalies=(),
    )


def test_txt_join_and_typed_texts(summarize: Any) -> None:
    msg = (
        header(qd=1, an=5)
        + QUESTION
        + rr(b"\xc0\x0c", 16, b"\x05hello\x00\x03w\xf6r")
        + rr(b"\xc0\x0c", 15, b"\x00\x0a" + wire_name(b"mx", b"a\\.b"))
        + rr(b"\xc0\x0c", 33, b"\x00\x01\x00\x02\x13\xc4" + b"\xc0\x10")  # example.com
        + rr(b"\xc0\x0c", 28, bytes(16))
        + rr(b"\xc0\x0c", 6, wire_name(b"ns") + wire_name(b"h") + bytes(20))
    )
    s = DnsSummary(*summarize(msg))
    assert s.anomalies == ()
    assert [a[2] for a in s.answers] == ["hello  w\xf6r", "mx.a\\\\\\.b", "example.com", "::", None]


def test_truncated_message_keeps_the_question(summarize: Any) -> None:
    msg = header(qd=1, an=1) + QUESTION + rr(b"\xc0\x0c", 1, bytes([192, 0, 2, 7]))
    s = DnsSummary(*summarize(msg[:-2]))
    assert (s.qname, s.qtype, s.qclass, s.answers) == ("www.example.com", 1, 1, ())
    assert s.anomalies == ("truncated_message",)


def test_forward_pointer(summarize: Any) -> None:
    msg = header(qd=1) + b"\xc0\x20" + b"\x00\x01\x00\x01" + bytes(20)
    s = DnsSummary(*summarize(msg))
    assert s.qname is None and s.anomalies == ("pointer_loop_or_forward",)


def test_short_header_keeps_id_and_flags(summarize: Any) -> None:
    assert DnsSummary(*summarize(b"\x12\x34\x81\x83\x00")) == DnsSummary(
        0x1234, 0x8183, 3, (0, 0, 0, 0), None, None, None, (), ("truncated_message",)
    )
    assert DnsSummary(*summarize(b"\x12\x34\x81")).flags == 0
    assert DnsSummary(*summarize(b"")).id == 0


def test_extended_rcode_and_damaged_rdata(summarize: Any) -> None:
    msg = (
        header(flags=0x8183, qd=1, an=2, ar=2)
        + QUESTION
        + rr(b"\xc0\x0c", 1, b"\x01\x02\x03")  # A with 3 octets: kept raw, no text
        + rr(b"\xc0\x0c", 39, b"\xc0\x0c")  # a compressed DNAME: no text, no anomaly
        + rr(b"\x00", 41, b"", rclass=1232, ttl=0x01000000)
        + rr(b"\x00", 41, b"", rclass=1232, ttl=0x02000000)
    )
    s = DnsSummary(*summarize(msg))
    assert s.rcode == 0x13
    assert s.answers == ((1, 300, None), (39, 300, None))
    assert s.anomalies == ("rdata_overrun", "multiple_opt_records")


def test_fallback_without_the_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns, "_c_summarize", None)
    for msg in SCAPY_MESSAGES:
        assert dns.summarize(msg) == summarize_py(msg)


# ------------------------------------------------------ C against Python


@pytest.fixture(scope="module")
def c_summarize() -> Any:
    return pytest.importorskip("netsift._dns").summarize


def check(c_summarize: Any, data: bytes) -> DnsSummary:
    want = summarize_py(data)
    got = DnsSummary(*c_summarize(data))
    assert got == want, data.hex()
    assert set(got.anomalies) <= set(ANOMALIES)
    return got


def test_wrapper_uses_c(c_summarize: Any) -> None:
    assert dns._c_summarize is c_summarize
    assert type(dns.summarize(SCAPY_MESSAGES[0])) is DnsSummary


def test_scapy_messages(c_summarize: Any) -> None:
    rendered = set()
    for msg in SCAPY_MESSAGES:
        s = check(c_summarize, msg)
        assert s.anomalies == ()
        rendered |= {rtype for rtype, _, text in s.answers if text is not None}
    assert rendered == {1, 2, 5, 12, 15, 16, 28, 33, 39}


def test_buffer_types_and_errors(c_summarize: Any) -> None:
    msg = SCAPY_MESSAGES[0]
    want = summarize_py(msg)
    assert DnsSummary(*c_summarize(bytearray(msg))) == want
    assert DnsSummary(*c_summarize(memoryview(msg))) == want
    assert DnsSummary(*c_summarize(memoryview(b"xx" + msg)[2:])) == want
    with pytest.raises(TypeError):
        c_summarize("not bytes")
    with pytest.raises(BufferError):
        c_summarize(memoryview(msg)[::2])  # not contiguous


def test_anomaly_strings_are_shared(c_summarize: Any) -> None:
    a = c_summarize(b"\x00")[8][0]
    b = c_summarize(b"\x01\x02")[8][0]
    assert a is b and a == "truncated_message"


def pointer_chain_message(links: int, records: int) -> bytes:
    """A NULL record holding a chain of backward pointers, then records named by its end.

    Each name costs ``links`` jumps: the worst case of the backward-only rule.
    """
    first = 12 + 5 + 1 + 10  # after the header, a root question and the NULL record's fixed part
    chain = b"".join(
        struct.pack(">H", 0xC000 | (12 if i == 0 else first + 2 * (i - 1))) for i in range(links)
    )
    last = first + 2 * (links - 1)
    named = struct.pack(">H", 0xC000 | last) + struct.pack(">HHIH", 1, 1, 0, 4) + bytes(4)
    return (
        header(qd=1, an=1 + records)
        + b"\x00\x00\x01\x00\x01"
        + rr(b"\x00", 10, chain)
        + named * records
    )


def test_pointer_chain_work_is_bounded(c_summarize: Any) -> None:
    s = check(c_summarize, pointer_chain_message(500, 50))
    assert len(s.answers) == 51 and s.answers[1] == (1, 0, "0.0.0.0") and s.anomalies == ()
    # Pointers have 14 bits: a chain reaches at most ~8,000 links; 24 million jumps here.
    msg = pointer_chain_message(8_000, 3_000)
    assert len(msg) < 65536
    t0 = time.perf_counter()
    s = DnsSummary(*c_summarize(msg))
    elapsed = time.perf_counter() - t0
    assert len(s.answers) == 3001 and s.anomalies == ()
    assert elapsed < 2.0


def test_corpus(c_summarize: Any, corpus_dir: Path) -> None:
    seen = 0
    damaged = 0
    for where, payload in udp_dns_payloads(corpus_dns_files(corpus_dir)):
        want = summarize_py(payload)
        got = DnsSummary(*c_summarize(payload))
        assert got == want, where
        seen += 1
        damaged += bool(want.anomalies)
    print(f"\nDNS summaries compared: {seen} UDP payloads, {damaged} with anomalies")
    assert seen > 3000 and damaged > 0


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(c_summarize: Any, data: bytes) -> None:
    check(c_summarize, data)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400), st.tuples(*[st.integers(0, 6)] * 4))
def test_random_bodies_behind_a_header(
    c_summarize: Any, body: bytes, counts: tuple[int, int, int, int]
) -> None:
    check(c_summarize, header(qd=counts[0], an=counts[1], ns=counts[2], ar=counts[3]) + body)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=16))
def test_aaaa_text(c_summarize: Any, addr: bytes) -> None:
    s = check(c_summarize, header(qd=1, an=1) + QUESTION + rr(b"\xc0\x0c", 28, addr))
    assert s.answers[0][2] == str(ipaddress.IPv6Address(addr))


LABEL = st.one_of(st.binary(min_size=1, max_size=12), st.sampled_from([b"a" * 63, b"b" * 64]))
NAME = st.one_of(
    st.lists(LABEL, max_size=4).map(lambda labels: wire_name(*labels)),
    st.tuples(st.lists(LABEL, max_size=2), st.integers(0, 120)).map(
        lambda t: wire_name(*t[0])[:-1] + struct.pack(">H", 0xC000 | t[1])
    ),
    st.binary(max_size=8),
)
TYPES = [1, 2, 5, 6, 10, 12, 15, 16, 28, 29, 33, 39, 41, 64, 65, 99]
RDATA = st.one_of(
    NAME,
    st.tuples(st.binary(min_size=2, max_size=6), NAME).map(lambda t: t[0] + t[1]),
    st.lists(st.binary(max_size=5), min_size=1, max_size=3).map(
        lambda xs: b"".join(bytes([len(x)]) + x for x in xs)
    ),
    st.binary(max_size=24),
    st.sampled_from([b"", bytes(4), bytes(16), b"\x00" * 15, b"\x00\x0a\x00\x02ab"]),
)
RECORD = st.tuples(NAME, st.sampled_from(TYPES), RDATA, st.integers(0, 2**32 - 1)).map(
    lambda t: rr(t[0], t[1], t[2], ttl=t[3])
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(RECORD, max_size=8), st.integers(0, 8), st.integers(0, 3), st.binary(max_size=3))
def test_random_records(
    c_summarize: Any, records: list[bytes], an: int, ns: int, tail: bytes
) -> None:
    an = min(an, len(records))
    ns = min(ns, len(records) - an)
    ar = len(records) - an - ns
    check(c_summarize, header(qd=1, an=an, ns=ns, ar=ar) + QUESTION + b"".join(records) + tail)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_real_messages(c_summarize: Any, seed: bytes, data: st.DataObject) -> None:
    msg = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["truncate", "flip", "pointer", "count"]))
        if not msg:
            break
        at = data.draw(st.integers(0, len(msg) - 1))
        if kind == "truncate":
            del msg[at:]
        elif kind == "flip":
            msg[at] ^= data.draw(st.integers(1, 255))
        elif kind == "pointer":
            target = data.draw(st.integers(0, min(len(msg) + 4, 0x3FFF)))
            msg[at : at + 2] = struct.pack(">H", 0xC000 | target)
        elif len(msg) >= 12:
            i = data.draw(st.integers(2, 5))
            msg[2 * i : 2 * i + 2] = struct.pack(">H", data.draw(st.integers(0, 0xFFFF)))
    check(c_summarize, bytes(msg))
