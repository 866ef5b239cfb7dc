"""TLS hello parsing and JA3/JA3N/JA3S/JA4 against the specs, FoxIO, tshark and hostile bytes.

References:

- Spec vectors from ../shared/reference/LANDSCAPE.md §2.1 (salesforce/ja3
  README) and §2.2 (FoxIO-LLC/ja4 technical_details/JA4.md).
- FoxIO's own outputs: ``foxio-ja4/expected/python/<pcap>.json`` for the
  captures in ``foxio-ja4/pcap``; matched by client 5-tuple, the n-th
  ``JA4.n`` of a stream against our n-th ClientHello of that 5-tuple.  All
  expected JA4 records there are TLS over TCP (no ``q``/``d`` record), and
  every one must match, JA4, JA4_r, JA4_o and JA4_ro.
- Wireshark: ``tshark-reference/tls_hellos.tsv`` (ja3/ja3_full, ja3s/ja3s_full
  per hello frame).  tshark reports a hello at the frame where the TLS
  record ends, so a ServerHello sharing its record with a certificate that
  spans segments is matched to our hello of the same ports started earlier
  (``record_spans_segments``).  Classes not compared, each counted: hellos
  over UDP (QUIC, DTLS), frames where tshark computed no value, hellos our
  test stand-in does not find (tunnels the fast decoder does not open —
  4in6/6in4/VXLAN/Geneve/GTP/CAPWAP/PPPoE —, TLS inside OpenVPN framing, a
  PROXY-protocol preamble), and hellos spanning several segments.  The
  disagreements are listed in :data:`TSHARK_DISAGREEMENTS` with their reason.

Hellos are cut out of captures by ``tests/tls_hellos.py``, a test-only
stand-in for the flow reassembly of issue 3.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import re
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.tls as tls
from netsift.tls import (
    ANOMALY_CODES,
    ClientHello,
    Extension,
    ServerHello,
    is_grease,
    ja3,
    ja3n,
    ja3s,
    ja4,
    ja4_o,
    parse_client_hello,
    parse_server_hello,
    read_hello,
)
from tls_hellos import tls_hellos

GREASE = tuple(0x0A0A + 0x1010 * i for i in range(16))


# --------------------------------------------------------------------------- builders


def _u16(v: int) -> bytes:
    return v.to_bytes(2, "big")


def ext(etype: int, data: bytes) -> bytes:
    return _u16(etype) + _u16(len(data)) + data


def sni_ext(name: bytes) -> bytes:
    entry = b"\x00" + _u16(len(name)) + name
    return ext(0, _u16(len(entry)) + entry)


def alpn_ext(*values: bytes) -> bytes:
    body = b"".join(bytes([len(v)]) + v for v in values)
    return ext(0x10, _u16(len(body)) + body)


def u16_list_ext(etype: int, values: list[int] | tuple[int, ...]) -> bytes:
    body = b"".join(_u16(v) for v in values)
    return ext(etype, _u16(len(body)) + body)


def versions_ext(values: list[int]) -> bytes:
    body = b"".join(_u16(v) for v in values)
    return ext(0x2B, bytes([len(body)]) + body)


def client_hello_body(ciphers: list[int] | tuple[int, ...], extensions: list[bytes],
                      version: int = 0x0303, session_id: bytes = b"\x11" * 32) -> bytes:
    block = b"".join(extensions)
    return (_u16(version) + b"\x42" * 32 + bytes([len(session_id)]) + session_id
            + _u16(2 * len(ciphers)) + b"".join(_u16(c) for c in ciphers) + b"\x01\x00"
            + _u16(len(block)) + block)


def server_hello_body(cipher: int, extensions: list[bytes], version: int = 0x0303) -> bytes:
    block = b"".join(extensions)
    return _u16(version) + b"\x24" * 32 + b"\x00" + _u16(cipher) + b"\x00" + _u16(len(block)) + block


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def records(message: bytes, size: int = 1 << 14, version: int = 0x0301) -> bytes:
    out = b""
    for i in range(0, len(message), size):
        frag = message[i:i + size]
        out += b"\x16" + _u16(version) + _u16(len(frag)) + frag
    return out


#: The ClientHello behind JA4.md's example ``t13d1516h2_8daaf6152771_e5627efa2ab1``
#: (wire order from FoxIO's tls-handshake.pcapng, stream 33).
CHROME_CIPHERS = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
                  0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
CHROME_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def chrome_extensions(grease: bool = False) -> list[bytes]:
    exts = [
        ext(0x0033, b"\x00\x00"), ext(0xFF01, b"\x00"), versions_ext([0x0304, 0x0303]),
        sni_ext(b"example.com"), ext(0x4469, b""), ext(0x001B, b""), ext(0x000B, b"\x01\x00"),
        ext(0x0012, b""), ext(0x0017, b""), ext(0x0005, b""), u16_list_ext(0x000D, CHROME_SIGALGS),
        u16_list_ext(0x000A, [0x001D, 0x0017, 0x0018]), ext(0x002D, b"\x01\x01"),
        alpn_ext(b"h2", b"http/1.1"), ext(0x0023, b""), ext(0x0015, b"\x00\x00"),
    ]
    if grease:
        exts = [ext(6682, b""), *exts, ext(64250, b"\x00")]
    return exts


def chrome_hello(grease: bool = False) -> ClientHello:
    ciphers = ([0x2A2A] if grease else []) + CHROME_CIPHERS
    ch = parse_client_hello(client_hello_body(ciphers, chrome_extensions(grease)))
    assert ch is not None
    return ch


# --------------------------------------------------------------------------- spec vectors


def test_grease_table() -> None:
    assert [v for v in range(0x10000) if is_grease(v)] == list(GREASE)
    assert not is_grease(0xEEEE)


@pytest.mark.parametrize(("raw", "md5"), [
    ("769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0",
     "ada70206e40642a3e4461f35503241d5"),
    ("769,4-5-10-9-100-98-3-6-19-18-99,,,", "de350869b8c85de67a350c8d186f11e6"),
])
def test_ja3_spec_vectors(raw: str, md5: str) -> None:
    version, ciphers, exts, groups, formats = raw.split(",")
    ints = [int(c) for c in ciphers.split("-")]
    ext_bytes = []
    for e in exts.split("-") if exts else []:
        if int(e) == 10:
            ext_bytes.append(u16_list_ext(10, [int(g) for g in groups.split("-")]))
        elif int(e) == 11:
            ext_bytes.append(ext(11, bytes([1, int(formats)])))
        else:
            ext_bytes.append(sni_ext(b"a.example"))
    # GREASE anywhere must not change JA3
    greased = [ext(47802, b""), *ext_bytes] if exts else []
    body = client_hello_body([2570, *ints], greased, version=int(version))
    if not exts:
        body = body[:-2]  # no extensions block at all, as in SSL 3.0/TLS 1.0 hellos
    ch = parse_client_hello(body)
    assert ch is not None and ch.anomalies == ()
    fp = ja3(ch)
    assert (fp.raw, fp.hash) == (raw, md5)
    assert fp.hash == hashlib.md5(raw.encode()).hexdigest()


def test_ja4_spec_vectors() -> None:
    b_raw = "002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    c_raw = ("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
             "0403,0804,0401,0503,0805,0501,0806,0601")
    assert hashlib.sha256(b_raw.encode()).hexdigest()[:12] == "8daaf6152771"
    assert hashlib.sha256(c_raw.encode()).hexdigest()[:12] == "e5627efa2ab1"
    for grease in (False, True):
        fp = ja4(chrome_hello(grease))
        assert fp.hash == "t13d1516h2_8daaf6152771_e5627efa2ab1"
        assert fp.raw == f"t13d1516h2_{b_raw}_{c_raw}"


def test_ja4_o_keeps_wire_order_and_sni_alpn() -> None:
    fp = ja4_o(chrome_hello(grease=True))
    assert fp.raw == (
        "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
        "0033,ff01,002b,0000,4469,001b,000b,0012,0017,0005,000d,000a,002d,0010,0023,0015_"
        "0403,0804,0401,0503,0805,0501,0806,0601")
    _a, b, c = fp.hash.split("_")
    assert b == hashlib.sha256(fp.raw.split("_")[1].encode()).hexdigest()[:12]
    assert c == hashlib.sha256("_".join(fp.raw.split("_")[2:]).encode()).hexdigest()[:12]


def _hello(ciphers: list[int] | None = None, exts: list[bytes] | None = None,
           version: int = 0x0303) -> ClientHello:
    ch = parse_client_hello(client_hello_body(
        [0x002F] if ciphers is None else ciphers, [] if exts is None else exts, version))
    assert ch is not None
    return ch


@pytest.mark.parametrize(("values", "code"), [
    ((b"http/1.1",), "h1"), ((b"h2", b"http/1.1"), "h2"), ((b"h",), "hh"),
    ((b"\xab",), "ab"), ((b"\xab\xcd",), "ad"), ((b"\x30\xab",), "3b"), ((b"\xab\x30",), "a0"),
    ((b"",), "00"), ((b"", b"h2"), "00"), ((), "00"), ((b"a-b",), "ab"), ((b"-ab",), "22"),
])
def test_ja4_alpn_rules(values: tuple[bytes, ...], code: str) -> None:
    assert ja4(_hello(exts=[alpn_ext(*values)])).hash[8:10] == code
    assert ja4(_hello()).hash[8:10] == "00"  # no ALPN extension


def test_ja4_version_rules() -> None:
    assert ja4(_hello(exts=[versions_ext([0x3A3A, 0x0304, 0x0303])])).hash[1:3] == "13"
    assert ja4(_hello(exts=[versions_ext([0x0303, 0x0302])], version=0x0301)).hash[1:3] == "12"
    assert ja4(_hello(version=0x0300)).hash[1:3] == "s3"
    assert ja4(_hello(version=0x1234)).hash[1:3] == "00"
    assert ja4(_hello(version=0xFEFD), proto="d").hash[:3] == "dd2"
    with pytest.raises(ValueError, match="JA4 protocol"):
        ja4(_hello(), proto="x")


def test_ja4_sni_flag_and_counts_capped_at_99() -> None:
    many = list(range(1, 150))
    exts = [ext(0x1000 + i, b"") for i in range(120)]
    fp = ja4(_hello(ciphers=many + list(GREASE), exts=[*exts, ext(0, b"\xff")]))
    assert fp.hash[:10] == "t12d999900"  # SNI flag set even though the name does not parse
    assert ja4(_hello()).hash[3] == "i"


def test_ja4_sni_alpn_counted_but_not_hashed() -> None:
    only = ja4(_hello(exts=[sni_ext(b"x.example"), alpn_ext(b"h2")]))
    assert only.hash == f"t12d0102h2_{hashlib.sha256(b'002f').hexdigest()[:12]}_000000000000"
    assert only.raw == "t12d0102h2_002f_"
    assert ja4_o(_hello(exts=[sni_ext(b"x.example")])).hash.endswith("_000000000000")


def test_ja4_empty_lists() -> None:
    fp = ja4(_hello(ciphers=[], exts=[]))
    assert fp.hash == "t12i000000_000000000000_000000000000"
    assert fp.raw == "t12i000000__"


def test_ja4_sigalgs_grease_removed_and_order_kept() -> None:
    fp = ja4(_hello(exts=[ext(0x000B, b"\x01\x00"),
                          u16_list_ext(0x000D, [0x0A0A, 0x0804, 0x0403, 0xDADA])]))
    assert fp.raw.endswith("_000b,000d_0804,0403")
    no_sigalgs = ja4(_hello(exts=[ext(0x000B, b"\x01\x00")]))
    assert no_sigalgs.raw.endswith("_000b")
    assert no_sigalgs.hash.endswith(hashlib.sha256(b"000b").hexdigest()[:12])


def test_ja3n_sorts_extensions_and_ja3s() -> None:
    ch = chrome_hello(grease=True)
    assert ja3(ch).raw.split(",")[2] == "51-65281-43-0-17513-27-11-18-23-5-13-10-45-16-35-21"
    assert ja3n(ch).raw.split(",")[2] == "0-5-10-11-13-16-18-21-23-27-35-43-45-51-17513-65281"
    sh = parse_server_hello(server_hello_body(0xC02F, [ext(0xFF01, b"\x00"), ext(0, b""),
                                                       ext(0x0B, b"\x01\x00")]))
    assert sh is not None
    assert ja3s(sh).raw == "771,49199,65281-0-11"
    assert ja3s(sh).hash == hashlib.md5(b"771,49199,65281-0-11").hexdigest()


def test_client_hello_fields() -> None:
    read = read_hello(records(handshake(1, client_hello_body(CHROME_CIPHERS, chrome_extensions()))))
    ch = read.hello
    assert isinstance(ch, ClientHello) and read.complete and read.anomalies == ()
    assert ch.record_version == 0x0301 and ch.legacy_version == 0x0303
    assert ch.sni == "example.com" and ch.alpn == (b"h2", b"http/1.1")
    assert ch.supported_versions == (0x0304, 0x0303)
    assert ch.supported_groups == (0x1D, 0x17, 0x18) and ch.ec_point_formats == (0,)
    assert ch.signature_algorithms == tuple(CHROME_SIGALGS)
    assert ch.extensions[0] == Extension(0x33, b"\x00\x00")


def test_server_hello_fields_and_draft_layout() -> None:
    read = read_hello(records(handshake(2, server_hello_body(
        0x1301, [ext(0x2B, b"\x03\x04"), alpn_ext(b"h2")]))))
    sh = read.hello
    assert isinstance(sh, ServerHello) and read.complete
    assert (sh.cipher_suite, sh.supported_version, sh.alpn) == (0x1301, 0x0304, (b"h2",))
    # TLS 1.3 draft 19: no session id echo, no compression method
    body = _u16(0x7F13) + b"\x00" * 32 + _u16(0x1302) + _u16(4) + ext(0x28, b"")
    draft = parse_server_hello(body)
    assert draft is not None and draft.anomalies == ()
    assert ja3s(draft).raw == "32531,4866,40"


def test_hello_spanning_records_and_trailing_messages() -> None:
    message = handshake(1, client_hello_body(CHROME_CIPHERS, chrome_extensions()))
    whole = read_hello(records(message))
    split = read_hello(records(message, size=50) + b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00")
    assert split.complete and split.hello == whole.hello and split.anomalies == ()
    # a second handshake message in the same record is not part of the hello
    shared = read_hello(records(message + handshake(11, b"\x00" * 10)))
    assert shared.complete and shared.hello == whole.hello
    # a change_cipher_spec before a second ClientHello (RFC 8446 §D.4) is skipped
    ccs = read_hello(b"\x14\x03\x03\x00\x01\x01" + records(message))
    assert ccs.complete and ccs.hello == whole.hello


def test_duplicate_extension_is_kept_and_flagged() -> None:
    ch = _hello(exts=[ext(0x17, b""), sni_ext(b"a.example"), ext(0x17, b""), sni_ext(b"b.example")])
    assert "tls_duplicate_extension" in ch.anomalies
    assert ch.extension_types == (0x17, 0, 0x17, 0) and ch.sni == "a.example"
    assert ja4(ch).raw.endswith("_0017,0017") and ja4(ch).hash[6:8] == "04"


def test_anomaly_codes_are_stable_snake_case() -> None:
    assert len(set(ANOMALY_CODES)) == len(ANOMALY_CODES)
    assert all(re.fullmatch(r"tls_[a-z0-9_]+", c) for c in ANOMALY_CODES)
    assert sorted(tls.__all__) == tls.__all__


def test_not_handshake_and_unexpected_message() -> None:
    assert read_hello(b"GET / HTTP/1.1\r\n").anomalies == ("tls_not_handshake",)
    assert read_hello(records(handshake(11, b"\x00" * 8))).anomalies == ("tls_unexpected_message",)
    first = records(handshake(1, client_hello_body([1], [])), size=20)[:25]
    mixed = read_hello(first + b"\x17\x03\x03\x00\x01\x00")
    assert mixed.anomalies == ("tls_record_interleaved", "tls_truncated")


# --------------------------------------------------------------------------- adversarial


def _valid_records() -> bytes:
    return records(handshake(1, client_hello_body(
        [0x0A0A, *CHROME_CIPHERS], chrome_extensions(grease=True))), size=200)


def _codes_ok(codes: tuple[str, ...]) -> bool:
    return all(c in ANOMALY_CODES for c in codes)


def test_truncated_at_every_length() -> None:
    data = _valid_records()
    for n in range(len(data)):
        read = read_hello(data[:n])
        assert not read.complete and "tls_truncated" in read.anomalies and _codes_ok(read.anomalies)
        if read.hello is not None:
            assert _codes_ok(read.hello.anomalies)
    block = b"".join(chrome_extensions())
    body = client_hello_body(CHROME_CIPHERS, chrome_extensions())
    no_extensions_block = len(body) - 2 - len(block)  # a legal place to end
    for n in range(len(body)):
        ch = parse_client_hello(body[:n])
        assert (ch is None) == (n < 2)
        if ch is not None:
            assert (ch.anomalies == ()) == (n == no_extensions_block) and _codes_ok(ch.anomalies)
            ja3(ch), ja3n(ch), ja4(ch), ja4_o(ch)


def test_huge_claimed_lengths_allocate_nothing_big() -> None:
    tracemalloc.start()
    try:
        read = read_hello(b"\x16\x03\x01\xff\xff\x01\xff\xff\xff" + b"\x03\x03" + b"\x00" * 40)
        over = parse_client_hello(b"\x03\x03" + b"\x00" * 33 + b"\xff\xff" + b"\x00" * 8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert "tls_hello_too_long" in read.anomalies and "tls_record_too_long" in read.anomalies
    assert not read.complete and isinstance(read.hello, ClientHello)
    assert over is not None and over.anomalies == ("tls_truncated",)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    for candidate in (data, b"\x16\x03\x01" + data, b"\x16\x03\x03" + _u16(len(data)) + data):
        read = read_hello(candidate)
        assert _codes_ok(read.anomalies)
    for parse in (parse_client_hello, parse_server_hello):
        hello = parse(data)
        if hello is not None:
            assert _codes_ok(hello.anomalies)
    ch = parse_client_hello(data)
    if ch is not None:
        ja3(ch), ja3n(ch), ja4(ch), ja4_o(ch)
    sh = parse_server_hello(data)
    if sh is not None:
        ja3s(sh)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_hellos_never_raise(data: st.DataObject) -> None:
    raw = bytearray(_valid_records())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    read = read_hello(bytes(raw))
    assert _codes_ok(read.anomalies)
    if isinstance(read.hello, ClientHello):
        ja3(read.hello), ja4(read.hello), ja4_o(read.hello)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(GREASE), max_size=6), st.lists(st.integers(0, 6), max_size=6),
       st.permutations(range(16)))
def test_grease_everywhere_changes_nothing(grease: list[int], where: list[int],
                                           order: list[int]) -> None:
    """GREASE in ciphers, extensions, groups, versions and sigalgs leaves every fingerprint alone."""
    exts = [chrome_extensions()[i] for i in order]
    ciphers = list(CHROME_CIPHERS)
    sigalgs = list(CHROME_SIGALGS)
    groups = [0x1D, 0x17, 0x18]
    for g, w in zip(grease, where, strict=False):
        ciphers.insert(w, g)
        sigalgs.insert(w, g)
        groups.insert(w % 3, g)
        exts.insert(w, ext(g, b"\x00" * (w % 3)))
    exts = [u16_list_ext(0x0D, sigalgs) if e.startswith(b"\x00\x0d") else
            u16_list_ext(0x0A, groups) if e.startswith(b"\x00\x0a") else
            versions_ext([*grease, 0x0304, 0x0303]) if e.startswith(b"\x00\x2b") else e for e in exts]
    greased = parse_client_hello(client_hello_body(ciphers, exts))
    plain = parse_client_hello(client_hello_body(CHROME_CIPHERS, [chrome_extensions()[i] for i in order]))
    assert greased is not None and plain is not None
    for fingerprint in (ja3, ja3n, ja4):
        assert fingerprint(greased) == fingerprint(plain)
    assert ja4(greased).hash == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    assert ja4_o(greased) == ja4_o(plain)


# --------------------------------------------------------------------------- FoxIO's outputs


def _foxio_expected(path: Path) -> dict[tuple[object, ...], list[tuple[str, ...]]]:
    want: dict[tuple[object, ...], list[tuple[str, ...]]] = {}
    for rec in sorted(json.loads(path.read_text()), key=lambda r: r["stream"]):
        for key in sorted((k for k in rec if k.startswith("JA4.")), key=lambda k: int(k[4:])):
            n = key[4:]
            tup = (ipaddress.ip_address(rec["src"]), ipaddress.ip_address(rec["dst"]),
                   int(rec["srcport"]), int(rec["dstport"]))
            want.setdefault(tup, []).append(
                (rec[key], rec[f"JA4_r.{n}"], rec[f"JA4_o.{n}"], rec[f"JA4_ro.{n}"]))
    return want


@pytest.mark.corpus
def test_ja4_matches_foxio_expected_outputs(corpus_dir: Path) -> None:
    root = corpus_dir / "foxio-ja4"
    if not (root / "expected" / "python").is_dir():
        pytest.skip("foxio-ja4/expected/python is absent from the corpus")
    counts: Counter[str] = Counter()
    mismatches: list[str] = []
    for expected in sorted((root / "expected" / "python").glob("*.json")):
        want = _foxio_expected(expected)
        if not want:
            continue
        got: dict[tuple[object, ...], list[tuple[str, ...]]] = {}
        for h in tls_hellos(root / "pcap" / expected.name.removesuffix(".json")):
            if isinstance(h.read.hello, ClientHello):
                fp, fo = ja4(h.read.hello), ja4_o(h.read.hello)
                got.setdefault((h.src, h.dst, h.sport, h.dport), []).append(
                    (fp.hash, fp.raw, fo.hash, fo.raw))
                counts["multi_segment_hellos"] += h.segments > 1
        for tup, records_ in want.items():
            for i, w in enumerate(records_):
                if w[0][0] in "qd":
                    counts["not_tcp"] += 1  # QUIC needs decryption, DTLS is not TCP
                    continue
                g = got.get(tup, [])
                if i < len(g) and g[i] == w:
                    counts["matched"] += 1
                else:
                    mismatches.append(f"{expected.name} {tup} #{i + 1}: want {w[0]} got "
                                      f"{g[i][0] if i < len(g) else None}")
    assert mismatches == []
    # 150 JA4 records in 12 captures, none QUIC or DTLS; keep the count honest
    assert counts["matched"] == 150 and counts["not_tcp"] == 0, counts


# --------------------------------------------------------------------------- tshark

#: (capture, frame) -> why we disagree with Wireshark on a malformed hello.
TSHARK_DISAGREEMENTS = {
    ("ndpi/tests/cfgs/default/pcap/tls_cipher_lens.pcap", 5):
        "cipher-suite length runs past the hello: we keep no ciphers and print all five "
        "JA3 fields ('769,,,,'); Wireshark prints a three-field string ('769,,')",
    ("ndpi/tests/cfgs/default/pcap/tls_invalid_reads.pcap", 4):
        "compression/extension bytes are truncated: we print empty extension, group and "
        "format fields; Wireshark stops after the ciphers ('769,4-...-37,')",
    ("suricata-verify/tests/tls/tls13-draft14/tls13_draft14.pcap", 6):
        "TLS 1.3 draft-14 ServerHello with legacy version 0x0304: the session-id length byte "
        "runs past the hello so we read no cipher; Wireshark prints 44205 (0xacad), "
        "random bytes read as a cipher",
}


@pytest.mark.corpus
def test_ja3_and_ja3s_match_tshark(corpus_dir: Path) -> None:
    table = corpus_dir / "tshark-reference" / "tls_hellos.tsv"
    if not table.is_file():
        pytest.skip("tshark-reference/tls_hellos.tsv is absent from the corpus")
    by_file: dict[str, dict[int, dict[str, str]]] = {}
    with table.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            by_file.setdefault(row["file"], {})[int(row["frame"])] = row
    counts: Counter[str] = Counter()
    disagreements: dict[tuple[str, int], str] = {}
    for name, frames in by_file.items():
        path = corpus_dir / name
        if not path.is_file():
            counts["capture_absent"] += len(frames)
            continue
        found = list(tls_hellos(path))
        at = {h.frame: h for h in reversed(found)}
        for frame, row in frames.items():
            if not (row["ja3"] or row["ja3s"]):
                counts["tshark_no_value"] += 1
                continue
            if not row["tcp_srcport"]:
                counts["udp_quic_or_dtls"] += 1
                continue
            h = at.get(frame)
            if h is None:  # tshark names the frame where the TLS record ends
                sport, dport = int(row["tcp_srcport"]), int(row["tcp_dstport"])
                earlier = [x for x in found if x.frame < frame and (x.sport, x.dport) == (sport, dport)]
                if not earlier:
                    counts["not_found"] += 1  # tunnels, OpenVPN framing, PROXY preamble
                    continue
                h = earlier[-1]
                counts["record_spans_segments"] += 1
            if h.segments > 1:
                counts["hello_spans_segments"] += 1
                continue
            hello = h.read.hello
            if isinstance(hello, ClientHello) and row["ja3"]:
                fp, want, kind = ja3(hello), (row["ja3_full"], row["ja3"]), "ja3"
            elif isinstance(hello, ServerHello) and row["ja3s"]:
                fp, want, kind = ja3s(hello), (row["ja3s_full"], row["ja3s"]), "ja3s"
            else:
                counts["other"] += 1
                continue
            if (fp.raw, fp.hash) == want:
                counts[f"{kind}_agree"] += 1
            else:
                disagreements[(name, frame)] = f"ours {fp.raw!r} tshark {want[0]!r}"
    assert set(disagreements) == set(TSHARK_DISAGREEMENTS), disagreements
    assert counts["ja3_agree"] >= 1550 and counts["ja3s_agree"] >= 1400, counts
    assert counts["not_found"] <= 30 and counts["other"] == 0, counts
