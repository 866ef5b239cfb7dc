"""DNS message parser: unit, adversarial (dpkt-style), Scapy round trips, tshark conformance.

Conformance against Wireshark 4.0.17 (``tshark-reference/dns.tsv``): every
frame of every capture present on disk is compared (the whole run takes about
a second, so no sampling is needed; ``CI=true`` changes nothing).  Frames that
cannot be compared are counted by class: IP fragments (not reassembled yet),
tunnelled DNS (our decoder stops at the outer IP header), DNS that tshark found
on other ports or inside ICMP errors, snaplen-cut payloads, and DNS-over-TCP
messages spanning segments.

Classes of difference, each normalized or counted in the test:

1. Name escaping.  tshark prints label bytes through ``format_text``: valid
   UTF-8 as is, control bytes as C escapes or ``\\ooo`` *octal*, backslash and
   dots inside labels unescaped, the root as ``<Root>``.  We print BIND's
   presentation format (``\\DDD`` decimal, ``\\.``, ``\\\\``).  The test
   converts our text to tshark's rendering; invalid UTF-8 turns into U+FFFD,
   where tshark and Python replace different spans, so runs of U+FFFD are
   collapsed on both sides (iodine tunnel names).
2. mDNS cache-flush / unicast-response bits live in the class field, which
   dns.tsv does not list; nothing to normalize.
3. RFC 2136 UPDATE (opcode 5): tshark names the counts ZOCOUNT/PRCOUNT/...,
   so its answer-count column is empty; answer_count is not compared there.
4. rcode: tshark's column is the header's 4 bits and only for responses; we
   compare ``rcode & 0xF`` for responses.
5. Damaged messages.  tshark continues past damage with placeholders
   (``<Unknown extended label>``, ``<Name too long>``, ``<Name contains a
   pointer that loops>``) and follows forward pointers; we stop at the first
   damage by design (no forward pointers: loops impossible).  Such frames are
   compared but their differences are counted as ``damaged_differs``; every
   one of them must carry an anomaly code.  Undamaged messages must agree
   100%.
"""

from __future__ import annotations

import csv
import os
import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import (
    DNS,
    DNSQR,
    DNSRR,
    DNSRRMX,
    DNSRROPT,
    DNSRRSOA,
    DNSRRSRV,
    EDNS0TLV,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.dns import (
    ANOMALIES,
    DnsMessage,
    Mx,
    Opt,
    Soa,
    Srv,
    Svcb,
    parse_message,
    split_tcp_messages,
)

FULL = os.environ.get("CI") == "true" or os.environ.get("NETSIFT_FULL_CORPUS") == "1"


# --------------------------------------------------------------- builders


def header(ident: int = 0x1234, flags: int = 0x0100, qd: int = 0, an: int = 0, ns: int = 0,
           ar: int = 0) -> bytes:
    return struct.pack(">HHHHHH", ident, flags, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"


def rr(name: bytes, rtype: int, rdata: bytes, rclass: int = 1, ttl: int = 300) -> bytes:
    return name + struct.pack(">HHIH", rtype, rclass, ttl, len(rdata)) + rdata


EXAMPLE = wire_name(b"www", b"example", b"com")


def real_response() -> bytes:
    """A response with compression in every section, built by hand."""
    q = EXAMPLE + struct.pack(">HH", 1, 1)
    ptr = b"\xc0\x0c"  # the question name at offset 12
    answers = (
        rr(ptr, 5, wire_name(b"edge", b"example", b"net"))
        + rr(b"\xc0\x2d", 1, bytes([192, 0, 2, 7]))  # the CNAME target at offset 45
        + rr(ptr, 28, bytes.fromhex("20010db8000000000000000000000001"))
    )
    auth = rr(b"\xc0\x10", 2, wire_name(b"ns1") [:-1] + b"\xc0\x10")  # ns1.example.com
    add = rr(b"\x00", 41, b"", rclass=1232, ttl=0x01008000)
    return header(flags=0x8180, qd=1, an=3, ns=1, ar=1) + q + answers + auth + add


# ------------------------------------------------------------ unit tests


def test_real_response_parses_fully() -> None:
    m = parse_message(real_response())
    assert m.anomalies == ()
    assert (m.id, m.qr, m.rd, m.ra, m.opcode) == (0x1234, True, True, True, 0)
    assert [(q.name, q.qtype, q.qclass) for q in m.questions] == [("www.example.com", 1, 1)]
    assert [(r.name, r.rtype, r.rdata) for r in m.answers] == [
        ("www.example.com", 5, "edge.example.net"),
        ("edge.example.net", 1, "192.0.2.7"),
        ("www.example.com", 28, "2001:db8::1"),
    ]
    assert m.authority[0].rdata == "ns1.example.com"
    assert m.authority[0].name == "example.com"
    opt = m.opt
    assert opt == Opt(udp_size=1232, extended_rcode=1, version=0, do=True, options=())
    assert m.rcode == (1 << 4) | 0  # extended RCODE 16 (BADVERS/BADSIG, RFC 6891 §9)


def test_typed_rdata() -> None:
    txt = b"\x05hello\x00\x03abc"
    srv = struct.pack(">HHH", 10, 20, 5060) + wire_name(b"sip", b"example")
    soa = wire_name(b"ns") + wire_name(b"admin") + struct.pack(">IIIII", 1, 2, 3, 4, 5)
    mx = struct.pack(">H", 10) + wire_name(b"mail")
    svcb = struct.pack(">H", 1) + b"\x00" + struct.pack(">HH", 1, 3) + b"\x02h2"
    opt_opts = struct.pack(">HH", 10, 8) + b"cookie!!"
    body = (
        rr(b"\x00", 16, txt) + rr(b"\x00", 33, srv) + rr(b"\x00", 6, soa) + rr(b"\x00", 15, mx)
        + rr(b"\x00", 65, svcb) + rr(b"\x00", 10, b"\x00\xff") + rr(b"\x00", 12, wire_name(b"p"))
        + rr(b"\x00", 99, b"raw!")
    )
    msg = header(flags=0x8400, an=8, ar=1) + body + rr(b"\x00", 41, opt_opts, rclass=4096)
    m = parse_message(msg)
    assert m.anomalies == ()
    assert m.aa and not m.rd
    assert [r.rdata for r in m.answers] == [
        (b"hello", b"", b"abc"),
        Srv(10, 20, 5060, "sip.example"),
        Soa("ns", "admin", 1, 2, 3, 4, 5),
        Mx(10, "mail"),
        Svcb(1, ".", ((1, b"\x02h2"),)),
        b"\x00\xff",
        "p",
        b"raw!",
    ]
    assert m.opt == Opt(4096, 0, 0, False, ((10, b"cookie!!"),))


def test_flags_bits() -> None:
    m = parse_message(header(flags=0xFFBF))
    assert (m.qr, m.opcode, m.aa, m.tc, m.rd, m.ra, m.ad, m.cd, m.rcode) == (
        True, 15, True, True, True, True, True, True, 15)


def test_name_escaping() -> None:
    msg = header(qd=1) + wire_name(b"a.b", b"c\\d", b"sp ace\x00\xff") + b"\x00\x01\x00\x01"
    assert parse_message(msg).questions[0].name == "a\\.b.c\\\\d.sp\\032ace\\000\\255"
    root = header(qd=1) + b"\x00\x00\x01\x00\x01"
    assert parse_message(root).questions[0].name == "."


def test_anomaly_codes_are_snake_case_and_listed() -> None:
    assert len(set(ANOMALIES)) == len(ANOMALIES)
    assert all(code.replace("_", "").isalpha() and code.islower() for code in ANOMALIES)


def test_trailing_bytes() -> None:
    m = parse_message(header(qd=1) + EXAMPLE + b"\x00\x01\x00\x01" + b"junk")
    assert m.questions and m.anomalies == ("trailing_bytes",)


def test_rdata_overrun_keeps_record_and_goes_on() -> None:
    bad_a = rr(b"\x00", 1, b"\x01\x02\x03")
    cname_past_rdlength = b"\x00" + struct.pack(">HHIH", 5, 1, 0, 2) + b"\x03abc\x00"
    good = rr(b"\x00", 1, b"\x01\x02\x03\x04")
    m = parse_message(header(an=2) + bad_a + good)
    assert m.anomalies == ("rdata_overrun",)
    assert [r.rdata for r in m.answers] == [b"\x01\x02\x03", "1.2.3.4"]
    m2 = parse_message(header(an=1) + cname_past_rdlength)
    assert "rdata_overrun" in m2.anomalies or "truncated_message" in m2.anomalies


def test_update_deletions_have_empty_rdata() -> None:
    m = parse_message(header(flags=0x2800, an=1) + rr(EXAMPLE, 1, b"", rclass=255, ttl=0))
    assert m.anomalies == () and m.answers[0].rdata == b""


def test_short_header_keeps_id_and_flags() -> None:
    m = parse_message(b"\xab\xcd\x81\x80\x00")
    assert (m.id, m.qr, m.rcode, m.anomalies) == (0xABCD, True, 0, ("truncated_message",))
    assert parse_message(b"").anomalies == ("truncated_message",)


# ---------------------------------------------------- adversarial (dpkt)


def test_pointer_to_itself() -> None:
    m = parse_message(header(qd=1) + b"\xc0\x0c" + b"\x00\x01\x00\x01")
    assert m.anomalies == ("pointer_loop_or_forward",) and m.questions == ()


def test_circular_pointers() -> None:
    # Two names pointing at each other: offset 12 -> 29, 29 -> 12.
    q1 = b"\x01a\xc0\x1d" + b"\x00\x01\x00\x01"  # offsets 12..19
    body = q1 + b"\x00" * 9  # pad so the second name starts at offset 29
    q2 = b"\x01b\xc0\x0c" + b"\x00\x01\x00\x01"
    m = parse_message(header(qd=2) + body + q2)
    assert "pointer_loop_or_forward" in m.anomalies
    # A backward chain that loops back is impossible: each jump must go lower.
    chain = header(qd=2) + b"\x01x\x00\x00\x01\x00\x01" + b"\x01y\xc0\x0c\x00\x01\x00\x01"
    assert parse_message(chain).questions[1].name == "y.x"


def test_forward_pointer() -> None:
    msg = header(qd=1) + b"\xc0\x12" + b"\x00\x01\x00\x01" + wire_name(b"later")
    assert parse_message(msg).anomalies == ("pointer_loop_or_forward",)


def test_pointer_into_own_name_is_forward() -> None:
    # "a" then a pointer back to the start of this same name: would loop.
    msg = header(qd=1) + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"
    assert parse_message(msg).anomalies == ("pointer_loop_or_forward",)


def test_label_of_63_ok_and_64_too_long() -> None:
    ok = header(qd=1) + wire_name(b"a" * 63) + b"\x00\x01\x00\x01"
    assert parse_message(ok).anomalies == ()
    bad = header(qd=1) + bytes([64]) + b"a" * 64 + b"\x00" + b"\x00\x01\x00\x01"
    assert parse_message(bad).anomalies == ("label_too_long",)
    reserved = header(qd=1) + b"\x80" + b"\x00\x01\x00\x01"
    assert parse_message(reserved).anomalies == ("bad_label_type",)


def test_name_of_255_ok_and_256_too_long() -> None:
    # 4 labels of 62 octets: 4 * 63 + 1 = 253 octets; add a 1-octet label: 255.
    base = [b"x" * 62] * 4
    ok = header(qd=1) + wire_name(*base, b"y") + b"\x00\x01\x00\x01"
    assert parse_message(ok).anomalies == ()
    bad = header(qd=1) + wire_name(*base, b"yz") + b"\x00\x01\x00\x01"  # 256 octets
    assert parse_message(bad).anomalies == ("name_too_long",)
    # The limit holds across compression pointers too.
    first = wire_name(*base)  # 253 octets at offset 12
    via_ptr = b"\x02yz\xc0\x0c"
    msg = header(qd=2) + first + b"\x00\x01\x00\x01" + via_ptr + b"\x00\x01\x00\x01"
    m = parse_message(msg)
    assert len(m.questions) == 1 and m.anomalies == ("name_too_long",)


def test_truncation_at_every_offset_keeps_a_prefix() -> None:
    full_bytes = real_response()
    full = parse_message(full_bytes)
    for cut in range(len(full_bytes)):
        m = parse_message(full_bytes[:cut])
        assert m.anomalies, cut
        assert set(m.anomalies) <= {"truncated_message", "too_many_records"}, (cut, m.anomalies)
        assert m.questions == full.questions[: len(m.questions)]
        assert m.answers == full.answers[: len(m.answers)]
        assert m.authority == full.authority[: len(m.authority)]
        assert m.additional == full.additional[: len(m.additional)]


def test_65535_counts_and_no_records() -> None:
    m = parse_message(header(qd=65535, an=65535, ns=65535, ar=65535))
    assert m.anomalies == ("too_many_records",)
    assert m.counts == (65535,) * 4 and m.questions == ()
    # With a few records present, those are kept and the rest capped.
    body = b"".join(rr(b"\x00", 1, bytes([10, 0, 0, i])) for i in range(3))
    m = parse_message(header(an=65535) + body)
    assert len(m.answers) == 3 and "too_many_records" in m.anomalies


@settings(max_examples=2000 if FULL else 300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    m = parse_message(data)
    assert isinstance(m, DnsMessage)
    assert set(m.anomalies) <= set(ANOMALIES)
    assert len(m.questions) <= max(0, len(data) - 12) // 5


@settings(max_examples=1000 if FULL else 200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bodies_behind_a_plausible_header(body: bytes) -> None:
    m = parse_message(header(qd=2, an=3, ns=1, ar=2) + body)
    assert set(m.anomalies) <= set(ANOMALIES)


# ------------------------------------------------------------- TCP split


def test_split_tcp_messages() -> None:
    a = real_response()
    b = header(ident=7, qd=1) + EXAMPLE + b"\x00\x01\x00\x01"
    stream = struct.pack(">H", len(a)) + a + struct.pack(">H", len(b)) + b
    msgs, tail = split_tcp_messages(stream + b"\x00")
    assert msgs == [a, b] and tail == b"\x00"
    msgs, tail = split_tcp_messages(stream[:-3])
    assert msgs == [a] and tail == stream[len(a) + 2 : -3]
    # The caller completes the tail with the next segment.
    msgs2, tail2 = split_tcp_messages(tail + stream[-3:])
    assert msgs2 == [b] and tail2 == b""
    assert split_tcp_messages(b"") == ([], b"")
    assert split_tcp_messages(b"\x00\x00") == ([b""], b"")


# ------------------------------------------------------ Scapy round trip


def test_scapy_built_messages_round_trip() -> None:
    # Explicit MACs and addresses: Scapy must not resolve anything on the network.
    frame = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="192.0.2.53")
        / UDP(sport=40000, dport=53)
        / DNS(
            id=0xBEEF, qr=1, aa=1, rd=1, ra=1, rcode=3,
            qd=[DNSQR(qname="www.example.org", qtype="A")],
            an=[
                DNSRR(rrname="www.example.org", type="CNAME", rdata="cdn.example.net", ttl=60),
                DNSRR(rrname="cdn.example.net", type="A", rdata="198.51.100.9", ttl=30),
                DNSRR(rrname="cdn.example.net", type="AAAA", rdata="2001:db8::9"),
                DNSRR(rrname="example.org", type="TXT", rdata=[b"v=spf1 -all", b"x"]),
                DNSRRMX(rrname="example.org", preference=5, exchange="mx.example.org"),
                DNSRRSRV(rrname="_sip._udp.example.org", priority=1, weight=2, port=5060,
                         target="sip.example.org"),
            ],
            ns=[DNSRRSOA(rrname="example.org", mname="ns.example.org", rname="h.example.org",
                         serial=7, refresh=8, retry=9, expire=10, minimum=11)],
            ar=[DNSRROPT(rclass=1232, z=0x8000, rdata=[EDNS0TLV(optcode=10, optdata=b"12345678")])],
        )
    )
    raw = bytes(frame)
    payload = raw[14 + 20 + 8 :]
    m = parse_message(payload)
    assert m.anomalies == ()
    assert (m.id, m.qr, m.aa, m.rd, m.ra, m.rcode) == (0xBEEF, True, True, True, True, 3)
    assert m.questions[0].name == "www.example.org"
    assert [r.rdata for r in m.answers] == [
        "cdn.example.net", "198.51.100.9", "2001:db8::9", (b"v=spf1 -all", b"x"),
        Mx(5, "mx.example.org"), Srv(1, 2, 5060, "sip.example.org"),
    ]
    assert m.authority[0].rdata == Soa("ns.example.org", "h.example.org", 7, 8, 9, 10, 11)
    assert m.opt == Opt(1232, 0, 0, True, ((10, b"12345678"),))
    # And back: Scapy's view of the same bytes agrees with ours.
    theirs = DNS(payload)
    assert theirs.id == m.id and theirs.ancount == len(m.answers)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
             min_size=1, max_size=4),
    st.integers(0, 0xFFFF),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=5),
)
def test_scapy_round_trip_property(labels: list[str], ident: int,
                                   addrs: list[tuple[int, int]]) -> None:
    name = ".".join(labels)
    an = [DNSRR(rrname=name, type="A", rdata=f"10.0.{a}.{b}") for a, b in addrs]
    payload = bytes(DNS(id=ident, qr=1, qd=[DNSQR(qname=name)], an=an))
    m = parse_message(payload)
    assert m.anomalies == ()
    assert m.questions[0].name == name and m.id == ident
    assert [r.rdata for r in m.answers] == [f"10.0.{a}.{b}" for a, b in addrs]


# ------------------------------------------------ conformance with tshark

DNS_PORTS = frozenset({53, 5353, 5355})
TSV_COLUMNS = ("dns_id", "is_response", "rcode", "qry_name", "qry_type", "answer_count",
               "a", "aaaa", "cname")
_C_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


def _labels(text: str) -> list[bytes]:
    """Undo our presentation escaping (see netsift.dns) into label octets."""
    if text == ".":
        return []
    labels: list[bytes] = []
    cur = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1].isdigit():
            cur.append(int(text[i + 1 : i + 4]))
            i += 4
        elif ch == "\\":
            cur.append(ord(text[i + 1]))
            i += 2
        elif ch == ".":
            labels.append(bytes(cur))
            cur = bytearray()
            i += 1
        else:
            cur.append(ord(ch))
            i += 1
    labels.append(bytes(cur))
    return labels


def _collapse_replacements(text: str) -> str:
    while "\ufffd\ufffd" in text:
        text = text.replace("\ufffd\ufffd", "\ufffd")
    return text


def tshark_name(text: str) -> str:
    """Our name text rendered the way tshark 4.0's format_text prints it."""
    labels = _labels(text)
    if not labels:
        return "<Root>"
    out = []
    for label in labels:
        chars = []
        for ch in label.decode("utf-8", "replace"):
            o = ord(ch)
            if o < 0x20 or o == 0x7F:
                chars.append(_C_ESCAPES.get(o, f"\\{o:03o}"))
            else:
                chars.append(ch)
        out.append("".join(chars))
    return _collapse_replacements(".".join(out))


def _our_columns(msgs: list[DnsMessage]) -> dict[str, str]:
    cols: dict[str, list[str]] = {k: [] for k in TSV_COLUMNS}
    for m in msgs:
        cols["dns_id"].append(f"0x{m.id:04x}")
        cols["is_response"].append(str(int(m.qr)))
        if m.qr:
            cols["rcode"].append(str(m.rcode & 0xF))
        for q in m.questions:
            cols["qry_name"].append(tshark_name(q.name))
            cols["qry_type"].append(str(q.qtype))
        if m.opcode != 5:
            cols["answer_count"].append(str(m.counts[1]))
        for r in m.answers + m.authority + m.additional:  # tshark's dns.a etc.: any section
            if isinstance(r.rdata, str):
                key = {1: "a", 28: "aaaa", 5: "cname"}.get(r.rtype)
                if key:
                    cols[key].append(tshark_name(r.rdata) if key == "cname" else r.rdata)
    return {k: ",".join(v) for k, v in cols.items()}


def _reference(corpus: Path) -> dict[str, dict[int, dict[str, str]]]:
    rows: dict[str, dict[int, dict[str, str]]] = {}
    with (corpus / "tshark-reference" / "dns.tsv").open(newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        head = next(reader)
        for row in reader:
            d = dict(zip(head, row, strict=True))
            rows.setdefault(d["file"], {})[int(d["frame"])] = d
    return rows


def _compare_file(path: Path, want: dict[int, dict[str, str]], stats: Counter[str],
                  diffs: list[tuple[str, int, list[str], tuple[str, ...]]]) -> None:
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            c = decode(batch)
            for i in range(len(batch)):
                ref = want.get(int(c.frame[i]))
                if ref is None:
                    continue
                if "," in ref["ip_src"] + ref["ipv6_src"] or (ref["ip_src"] and ref["ipv6_src"]):
                    stats["encapsulated"] += 1
                    continue
                if bool(c.is_fragment[i]):
                    stats["fragmented"] += 1
                    continue
                proto, ports = int(c.ip_proto[i]), {int(c.sport[i]), int(c.dport[i])}
                if proto not in (6, 17) or not ports & DNS_PORTS or (proto == 6 and 53 not in ports):
                    stats["other_port_or_icmp"] += 1
                    continue
                off, length = int(c.payload_off[i]), int(c.payload_len[i])
                data = batch.packet_bytes(i)
                if off < 0 or off + length > len(data):
                    stats["snaplen_cut"] += 1
                    continue
                payload = data[off : off + length]
                if proto == 6:
                    pieces, tail = split_tcp_messages(payload)
                    if tail or not pieces:
                        stats["tcp_multi_segment"] += 1
                        continue
                    msgs = [parse_message(p) for p in pieces]
                else:
                    msgs = [parse_message(payload)]
                ours = _our_columns(msgs)
                stats["compared"] += 1
                differing = [k for k in TSV_COLUMNS
                             if ours[k] != (ref[k] if k != "qry_name" and k != "cname"
                                            else _collapse_replacements(ref[k]))]
                if not differing:
                    stats["equal"] += 1
                    continue
                anomalies = tuple(a for m in msgs for a in m.anomalies)
                if anomalies:
                    stats["damaged_differs"] += 1
                diffs.append((f"{path.name}#{int(c.frame[i])}", len(differing), differing,
                              anomalies))


def test_conformance_with_tshark(corpus_dir: Path) -> None:
    reference = _reference(corpus_dir)
    stats: Counter[str] = Counter()
    diffs: list[tuple[str, int, list[str], tuple[str, ...]]] = []
    for rel, want in sorted(reference.items()):
        path = corpus_dir / rel
        if not path.is_file():
            stats["absent_files"] += 1
            continue
        stats["files"] += 1
        _compare_file(path, want, stats, diffs)
    print(f"\nDNS vs tshark: {dict(stats)}")
    for d in diffs:
        print("  differs:", d)
    assert stats["compared"] > 3000, stats
    # Every difference is on a damaged message (class 5); undamaged ones agree 100%.
    undamaged_diffs = [d for d in diffs if not d[3]]
    assert undamaged_diffs == []
    assert stats["damaged_differs"] == len(diffs) <= 40, stats
    comparable_clean = stats["compared"] - stats["damaged_differs"]
    assert stats["equal"] == comparable_clean


# --------------------------------------------- malformed corpus captures

#: capture -> anomaly codes expected among its DNS messages (empty: none is
#: expected, with the reason in the comment).
MALFORMED = {
    "dpkt/examples/data/truncated_dns.pcap": {"truncated_message"},  # last record cut
    "dpkt/examples/data/truncated_dns_2.pcap": {"truncated_message"},
    "ndpi/tests/cfgs/default/pcap/malformed_dns.pcap": {"name_too_long"},
    # Control bytes inside labels are legal on the wire (RFC 2181 §11): escaped, not flagged.
    "ndpi/tests/cfgs/default/pcap/dns-invalid-chars.pcap": set(),
    # A long but legal name (43 characters).
    "ndpi/tests/cfgs/default/pcap/dns_long_domainname.pcap": set(),
    # Its LOC record is a well-formed 16 octets (RFC 1876 §2); nothing to flag.
    "zeek/testing/btest/Traces/dns/loc-29-trunc.pcap": set(),
    # Well-formed SSHFP records: the "trunc" was a Zeek logging bug, not bad bytes.
    "zeek/testing/btest/Traces/dns/sshfp-trunc.pcap": set(),
}


@pytest.mark.parametrize("rel", sorted(MALFORMED))
def test_malformed_captures(corpus_dir: Path, rel: str) -> None:
    path = corpus_dir / rel
    if not path.is_file():
        pytest.skip(f"{rel} is not in this copy of the corpus")
    seen: set[str] = set()
    messages = 0
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            c = decode(batch)
            for i in range(len(batch)):
                if int(c.ip_proto[i]) != 17 or 53 not in (int(c.sport[i]), int(c.dport[i])):
                    continue
                data = batch.packet_bytes(i)
                off = int(c.payload_off[i])
                m = parse_message(data[off : min(off + int(c.payload_len[i]), len(data))])
                messages += 1
                seen.update(m.anomalies)
                if not m.anomalies:
                    assert m.questions
    assert messages > 0
    assert seen == MALFORMED[rel]
