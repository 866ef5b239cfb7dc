"""The fast TLS parser and the fingerprint caches against a frozen copy of the old code.

``tests/tls_reference.py`` is ``netsift.tls`` as it was before the offset-based
rewrite (a ``_Reader`` cursor, one method call per field).  Every result of the
current module must equal the reference one field by field, anomaly tuples
included:

- on every hello buffer our test stand-in for reassembly builds from the
  captures that ``tshark-reference/tls_hellos.tsv`` lists and from FoxIO's
  ``foxio-ja4/pcap`` (every partial buffer of a multi-segment hello too);
- on built hellos cut at every length, and on Hypothesis-mutated, truncated,
  spliced and random bytes.

The cached :func:`~netsift.tls.client_fingerprints` and
:func:`~netsift.tls.server_fingerprint` must equal the uncached functions, and
the cache must be keyed on what the fingerprints read and nothing else.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.tls as tls
import tls_reference as ref
from netsift.tls import ClientFingerprints, ClientHello, ServerHello
from tcp_segments import tcp_segments
from test_tls import (
    CHROME_CIPHERS,
    alpn_ext,
    chrome_extensions,
    client_hello_body,
    ext,
    handshake,
    records,
    server_hello_body,
    sni_ext,
    u16_list_ext,
    versions_ext,
)

PROTOS = ("t", "q", "d")


# --------------------------------------------------------------------------- comparison


def plain(value: Any) -> Any:
    """A dataclass tree as (class name, ((field, value), ...)), comparable across the two modules."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple((f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def check_hello(new: ClientHello | ServerHello | None, old: Any) -> None:
    assert plain(new) == plain(old)
    if new is None:
        return
    assert repr(new) == repr(old)
    assert type(new).__name__ == type(old).__name__
    assert new.extension_types == old.extension_types
    assert new.anomalies == old.anomalies
    # built without __init__, the result must still be an ordinary instance
    rebuilt = type(new)(**{f.name: getattr(new, f.name) for f in dataclasses.fields(new)})
    assert rebuilt == new and hash(rebuilt) == hash(new)
    assert rebuilt.extension_types == new.extension_types
    if isinstance(new, ClientHello):
        check_client_fingerprints(new, old)
    else:
        check_server_fingerprint(new, old)


def check_client_fingerprints(new: ClientHello, old: Any) -> None:
    want_ja3, want_ja3n = plain(ref.ja3(old)), plain(ref.ja3n(old))
    assert plain(tls.ja3(new)) == want_ja3 and plain(tls.ja3n(new)) == want_ja3n
    for proto in PROTOS:
        want_ja4, want_ja4_o = plain(ref.ja4(old, proto)), plain(ref.ja4_o(old, proto))
        assert plain(tls.ja4(new, proto)) == want_ja4
        assert plain(tls.ja4_o(new, proto)) == want_ja4_o
        for fps in (tls.client_fingerprints(new, proto), tls.client_fingerprints(new, proto)):
            assert plain(fps.ja3) == want_ja3 and plain(fps.ja3n) == want_ja3n
            assert plain(fps.ja4) == want_ja4 and plain(fps.ja4_o) == want_ja4_o
            assert (fps.ja4_r, fps.ja4_ro) == (fps.ja4.raw, fps.ja4_o.raw)


def check_server_fingerprint(new: ServerHello, old: Any) -> None:
    want = plain(ref.ja3s(old))
    assert plain(tls.ja3s(new)) == want
    assert plain(tls.server_fingerprint(new)) == want
    assert plain(tls.server_fingerprint(new)) == want


def check_read(data: bytes) -> None:
    new, old = tls.read_hello(data), ref.read_hello(data)
    assert (new.complete, new.consumed, new.anomalies) == (old.complete, old.consumed, old.anomalies)
    check_hello(new.hello, old.hello)
    assert plain(new) == plain(old)


def check_bodies(body: bytes) -> None:
    """Both hello parsers on a handshake body, with and without a record version."""
    for record_version in (None, 0x0301):
        check_hello(tls.parse_client_hello(body, record_version),
                    ref.parse_client_hello(body, record_version))
        check_hello(tls.parse_server_hello(body, record_version),
                    ref.parse_server_hello(body, record_version))


def check_everything(data: bytes) -> None:
    """``data`` as record-layer bytes, as a handshake message and as a hello body."""
    check_read(data)
    check_bodies(data)
    check_bodies(data[4:])


# --------------------------------------------------------------------------- built hellos


def chrome_records(size: int = 1 << 14) -> bytes:
    return records(handshake(1, client_hello_body(
        [0x0A0A, *CHROME_CIPHERS], chrome_extensions(grease=True))), size=size)


def server_records() -> bytes:
    return records(handshake(2, server_hello_body(
        0x1301, [ext(0x2B, b"\x03\x04"), ext(0x33, b"\x00\x1d\x00\x02ab"), alpn_ext(b"h2")])))


def draft_server_body() -> bytes:
    return b"\x7f\x13" + b"\x00" * 32 + b"\x13\x02" + b"\x00\x04" + ext(0x28, b"")


#: Hellos exercising every branch: GREASE, several records, CCS first, a trailing
#: message, duplicates, bad inner lengths, trailing bytes, a draft ServerHello.
BASES: dict[str, bytes] = {
    "chrome": chrome_records(),
    "chrome_split": chrome_records(size=37),
    "chrome_ccs_first": b"\x14\x03\x03\x00\x01\x01" + chrome_records(size=200),
    "chrome_then_message": records(handshake(1, client_hello_body(CHROME_CIPHERS, chrome_extensions()))
                                   + handshake(11, b"\x00" * 10)),
    "duplicates": records(handshake(1, client_hello_body([0x2F], [
        ext(0x17, b""), sni_ext(b"a.example"), ext(0x17, b""), sni_ext(b"b.example")]))),
    "bad_inner_lengths": records(handshake(1, client_hello_body([0x2F, 0x35], [
        ext(0, b"\x00\x09\x00\x00\x05ab"), ext(0x10, b"\x00\x05\x02h2\x09"),
        ext(0x2B, b"\x05\x03\x04"), ext(0x0A, b"\x00\x02\x00\x1d\x00"), ext(0x0B, b"\x03\x00"),
        ext(0x0D, b"\x00"), ext(0x33, b"")]))),
    "no_extensions": records(handshake(1, client_hello_body([0x2F], [])[:-2])),
    "trailing_bytes": records(handshake(1, client_hello_body([0x2F], [ext(0x17, b"")]) + b"\x00")),
    "server": server_records(),
    "server_draft": records(handshake(2, draft_server_body())),
    "server_and_certificate": server_records()[:-1] + b"\x0b\x00\x00\x03\x00\x00\x00",
    "dtls_like": b"\x16\xfe\xfd" + chrome_records()[3:],
}


@pytest.mark.parametrize("name", sorted(BASES))
def test_built_hellos_cut_at_every_length(name: str) -> None:
    data = BASES[name]
    for n in range(len(data) + 1):
        check_everything(data[:n])


def test_huge_claimed_lengths_match_reference() -> None:
    for data in (
        b"\x16\x03\x01\xff\xff\x01\xff\xff\xff" + b"\x03\x03" + b"\x00" * 40,
        b"\x16\x03\x01\x00\x10\x01\x00\x00\x0c" + b"\x03\x03" + b"\x00" * 10,
        b"\x03\x03" + b"\x00" * 33 + b"\xff\xff" + b"\x00" * 8,
        b"\x03\x03" + b"\x00" * 32 + b"\xff" + b"\x00" * 8,
        b"\x03\x03" + b"\x00" * 35 + b"\x01\x00" + b"\xff\xff" + ext(0x17, b""),
        b"\x03\x03" + b"\x00" * tls.MAX_HELLO_BYTES,
    ):
        check_everything(data)


def test_inputs_other_than_bytes() -> None:
    data = BASES["chrome_split"]
    for wrapped in (bytearray(data), memoryview(data)):
        check_read(wrapped)  # type: ignore[arg-type]
        body = wrapped[9:]
        check_hello(tls.parse_client_hello(body), ref.parse_client_hello(body))  # type: ignore[arg-type]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "length"]))
        i = draw(st.integers(0, len(raw)))
        if kind == "set" and i < len(raw):
            raw[i] = draw(st.integers(0, 255))
        elif kind == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del raw[i:i + draw(st.integers(1, 4))]
        elif i + 1 < len(raw):  # a length field's worth: two bytes at once
            raw[i:i + 2] = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\xff\xff", b"\x00\x04"]))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut] if draw(st.booleans()) else raw)


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_mutated_and_truncated_hellos_match_reference(data: bytes) -> None:
    check_everything(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_match_reference(data: bytes) -> None:
    check_everything(data)
    check_read(b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data)
    check_read(b"\x16\x03\x03" + (len(data) + 4).to_bytes(2, "big") + b"\x01"
               + len(data).to_bytes(3, "big") + data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 0xFFFF), max_size=40), st.lists(st.integers(0, 0xFFFF), max_size=40),
       st.lists(st.integers(0, 0xFFFF), max_size=20), st.lists(st.binary(max_size=5), max_size=3),
       st.lists(st.sampled_from([0x0301, 0x0302, 0x0303, 0x0304, 0x0A0A, 0x7F1C, 0xFEFD]),
                max_size=4),
       st.integers(0, 0xFFFF))
def test_fingerprints_of_arbitrary_lists_match_reference(
        ciphers: list[int], types: list[int], sigalgs: list[int], alpn: list[bytes],
        versions: list[int], version: int) -> None:
    exts = [ext(t, b"") for t in types] + [u16_list_ext(0x0D, sigalgs)]
    if alpn:
        exts.append(ext(0x10, (sum(len(a) + 1 for a in alpn)).to_bytes(2, "big")
                        + b"".join(bytes([len(a)]) + a for a in alpn)))
    if versions:
        exts.append(versions_ext(versions))
    check_bodies(client_hello_body(ciphers, exts, version=version))


def test_hand_built_hellos_outside_the_wire_ranges() -> None:
    """Values a parser never produces still fingerprint as the reference does."""
    for values in ((0x10000, 0x2F, 5), (-1, 0x2F), (0x1FFFF, 0, 0x10)):
        new = ClientHello(0x0303, cipher_suites=values, extensions=tuple(
            tls.Extension(v, b"") for v in values), signature_algorithms=values)
        old = ref.ClientHello(0x0303, cipher_suites=values, extensions=tuple(
            ref.Extension(v, b"") for v in values), signature_algorithms=values)
        check_client_fingerprints(new, old)


# --------------------------------------------------------------------------- corpus


def hello_buffers(path: Path) -> Iterator[bytes]:
    """Every buffer ``tests/tls_hellos.py`` hands to ``read_hello`` for this capture."""
    pending: dict[tuple[int, ...], bytearray] = {}
    for segment in tcp_segments(path):
        key = segment.direction
        payload = segment.payload
        if key in pending:
            buf = pending.pop(key)
            buf += payload
        elif payload[:1] in (b"\x14", b"\x15", b"\x16"):
            buf = bytearray(payload)
        else:
            continue
        yield bytes(buf)
        read = ref.read_hello(bytes(buf))
        if not (read.complete or len(buf) > 1 << 18 or "tls_truncated" not in read.anomalies):
            pending[key] = buf


def corpus_captures(corpus: Path) -> list[Path]:
    names: set[str] = set()
    table = corpus / "tshark-reference" / "tls_hellos.tsv"
    if table.is_file():
        with table.open(newline="") as f:
            names.update(row["file"] for row in csv.DictReader(f, delimiter="\t"))
    paths = {corpus / name for name in names}
    paths.update((corpus / "foxio-ja4" / "pcap").glob("*.pcap*"))
    return sorted(p for p in paths if p.is_file())


@pytest.mark.corpus
def test_corpus_hellos_match_reference(corpus_dir: Path) -> None:
    captures = corpus_captures(corpus_dir)
    if not captures:
        pytest.skip("no TLS captures in the corpus")
    buffers = hellos = 0
    for path in captures:
        for data in hello_buffers(path):
            buffers += 1
            check_read(data)
            old = ref.read_hello(data)
            if old.hello is not None:
                hellos += 1
    # 380 captures listed by tshark plus FoxIO's: keep the count honest
    assert hellos >= 3000, (buffers, hellos)


# --------------------------------------------------------------------------- the caches


def _client(ciphers: list[int], name: bytes = b"a.example", fill: int = 0x42,
            key_share: bytes = b"\x00\x1d\x00\x20" + b"\x11" * 32) -> ClientHello:
    exts = chrome_extensions()
    assert exts[0][:2] == b"\x00\x33" and exts[3][:2] == b"\x00\x00"
    exts[0] = ext(0x33, len(key_share).to_bytes(2, "big") + key_share)
    exts[3] = sni_ext(name)
    body = client_hello_body(ciphers, exts, session_id=bytes([fill]) * 32)
    body = body[:2] + bytes([fill]) * 32 + body[34:]  # the random
    ch = tls.parse_client_hello(body)
    assert ch is not None and ch.anomalies == ()
    return ch


def test_client_cache_key_ignores_sni_text_random_session_and_key_share() -> None:
    cache = tls._client_fingerprints_cached
    first = _client(CHROME_CIPHERS)
    other = _client(CHROME_CIPHERS, name=b"another-host.example.org", fill=0x99,
                    key_share=b"\x00\x1d\x00\x20" + b"\x77" * 32)
    assert (first.sni, other.sni) == ("a.example", "another-host.example.org")
    cache.cache_clear()
    a = tls.client_fingerprints(first)
    b = tls.client_fingerprints(other)
    assert b is a  # the same cache entry
    info = cache.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 1, 1)
    assert tls.client_fingerprints(first, "q") is not a  # proto is part of the key
    assert cache.cache_info().misses == 2


def test_client_cache_key_keeps_cipher_order_and_first_alpn() -> None:
    cache = tls._client_fingerprints_cached
    cache.cache_clear()
    a = tls.client_fingerprints(_client(CHROME_CIPHERS))
    swapped = [CHROME_CIPHERS[1], CHROME_CIPHERS[0], *CHROME_CIPHERS[2:]]
    b = tls.client_fingerprints(_client(swapped))
    assert cache.cache_info().misses == 2 and cache.cache_info().hits == 0
    assert a.ja4 == b.ja4 and a.ja3 != b.ja3 and a.ja4_o != b.ja4_o
    h1 = tls.parse_client_hello(client_hello_body(CHROME_CIPHERS, [alpn_ext(b"http/1.1", b"h2")]))
    h2 = tls.parse_client_hello(client_hello_body(CHROME_CIPHERS, [alpn_ext(b"h2", b"http/1.1")]))
    h3 = tls.parse_client_hello(client_hello_body(CHROME_CIPHERS, [alpn_ext(b"h2", b"spdy/3")]))
    assert h1 is not None and h2 is not None and h3 is not None
    assert tls.client_fingerprints(h1).ja4.hash[8:10] == "h1"
    assert tls.client_fingerprints(h2).ja4.hash[8:10] == "h2"
    assert tls.client_fingerprints(h3) is tls.client_fingerprints(h2)  # later ALPN values unused


def test_caches_are_bounded_lru() -> None:
    cache = tls._client_fingerprints_cached
    assert cache.cache_info().maxsize == tls.FINGERPRINT_CACHE_SIZE == 4096
    assert tls._ja3s_cached.cache_info().maxsize == tls.FINGERPRINT_CACHE_SIZE
    cache.cache_clear()
    for i in range(tls.FINGERPRINT_CACHE_SIZE + 10):
        tls.client_fingerprints(_client([0x1000 + i]))
    assert cache.cache_info().currsize == tls.FINGERPRINT_CACHE_SIZE


def test_server_cache_key() -> None:
    tls._ja3s_cached.cache_clear()
    one = tls.parse_server_hello(server_hello_body(0x1301, [ext(0x2B, b"\x03\x04"),
                                                            ext(0x33, b"\x00\x1d\x00\x02ab")]))
    two = tls.parse_server_hello(server_hello_body(0x1301, [ext(0x2B, b"\x03\x04"),
                                                            ext(0x33, b"\x00\x1d\x00\x02cd")]))
    three = tls.parse_server_hello(server_hello_body(0x1302, [ext(0x2B, b"\x03\x04")]))
    assert one is not None and two is not None and three is not None
    assert tls.server_fingerprint(one) is tls.server_fingerprint(two)
    assert tls.server_fingerprint(three) != tls.server_fingerprint(one)
    assert tls.server_fingerprint(one) == tls.ja3s(one)


def test_client_fingerprints_shape_and_errors() -> None:
    ch = _client(CHROME_CIPHERS)
    fps = tls.client_fingerprints(ch)
    assert isinstance(fps, ClientFingerprints) and isinstance(fps.ja4, tls.Fingerprint)
    assert fps == (tls.ja3(ch), tls.ja3n(ch), tls.ja4(ch), tls.ja4_o(ch))
    assert fps.ja4.hash == "t13d1516h2_8daaf6152771_e5627efa2ab1"
    with pytest.raises(ValueError, match="JA4 protocol"):
        tls.client_fingerprints(ch, "x")
    # a hand-built hello with lists (unhashable) is computed without the cache
    listed = dataclasses.replace(ch, cipher_suites=list(ch.cipher_suites))  # type: ignore[arg-type]
    assert tls.client_fingerprints(listed) == fps
