"""QUIC Initial decryption and ClientHello reassembly (netsift.quic).

References:
- RFC 9001 Appendix A / RFC 9369 Appendix A: Initial keys from DCID
  0x8394c8f03e515708 and the client Initial of A.2 (v1 and v2).  The protected
  1200-byte packet is rebuilt here from the RFC's unprotected header and
  CRYPTO frame with a test-side protector, then checked against the RFC's
  protected header bytes and header-protection sample (both versions), and
  decrypted back.
- FoxIO's JA4 expected outputs: ``foxio-ja4/expected/python/*.json`` hold no
  ``q`` record (the Python reference does not fingerprint QUIC), so the QUIC
  records come from FoxIO's Rust snapshots ``expected/rust-insta/*.snap``.
- suricata-verify: ``quic.ja4`` counts in each test.yaml that has one.
- tshark (``tshark-reference/tls_hellos.tsv``): SNI and JA3 of every QUIC
  ClientHello tshark decrypted; captures whose Initials are draft versions
  (tshark decodes drafts, we decode v1/v2 only) are counted apart.
"""

from __future__ import annotations

import csv
import itertools
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.quic as quic
from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.quic import (
    ANOMALY_CODES,
    QUIC_V1,
    QUIC_V2,
    CryptoAssembler,
    QuicHello,
    client_initial_keys,
    read_datagram,
)
from netsift.tls import ja3, ja4
from quicgen import A2_CRYPTO_FRAME, varint

DCID = bytes.fromhex("8394c8f03e515708")
UDP = 17

# RFC 9001 §A.1 (v1) and RFC 9369 §A.1 (v2): client Initial keys from DCID.
KEY_VECTORS = {
    QUIC_V1: ("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
              "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
              "9f50449e04a0e810283a1e9933adedd2"),
    QUIC_V2: ("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
              "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f",
              "45b95e15235d6f45a6b19cbcb0294ba9"),
}

# Unprotected headers (packet number 2, 4-byte encoding, Length 0x449e = 1182).
A2_HEADER = {QUIC_V1: bytes.fromhex("c300000001088394c8f03e5157080000449e00000002"),
             QUIC_V2: bytes.fromhex("d36b3343cf088394c8f03e5157080000449e00000002")}
# Protected header and header-protection sample as printed in RFC 9001 §A.2 and
# RFC 9369 §A.2.
A2_PROTECTED = {QUIC_V1: ("c000000001088394c8f03e5157080000449e7b9aec34",
                          "d1b1c98dd7689fb8ec11d242b123dc9b"),
                QUIC_V2: ("d76b3343cf088394c8f03e5157080000449ea0c95e82",
                          "ffe67b6abcdb4298b485dd04de806071")}
PAYLOAD_BYTES = 1162  # A.2: frames padded so that the UDP datagram is 1200 bytes


# --------------------------------------------------------------------------- helpers


def protect(header: bytes, payload: bytes, dcid: bytes = DCID, version: int = QUIC_V1) -> bytes:
    """Test-side packet protection (RFC 9001 §5.3-§5.4), written from the RFC's A.2 steps.

    ``header`` is the unprotected long header ending with a 4-byte packet number.
    """
    keys = client_initial_keys(dcid, version)
    pn = int.from_bytes(header[-4:], "big")
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    pn_offset = len(header) - 4
    sample = sealed[:16]  # pn_offset + 4 is where the ciphertext starts
    enc = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(4):
        out[pn_offset + i] ^= mask[1 + i]
    return bytes(out)


def initial(payload: bytes, *, pn: int = 0, dcid: bytes = DCID, version: int = QUIC_V1,
            scid: bytes = b"", token: bytes = b"", key_dcid: bytes | None = None) -> bytes:
    """A protected client Initial carrying ``payload`` (padded to >= 20 bytes)."""
    payload = payload.ljust(20, b"\x00")
    ptype = 0b00 if version == QUIC_V1 else 0b01
    length = varint(4 + len(payload) + 16)
    header = (bytes([0xC3 | ptype << 4]) + version.to_bytes(4, "big") + bytes([len(dcid)]) + dcid
              + bytes([len(scid)]) + scid + varint(len(token)) + token + length
              + pn.to_bytes(4, "big"))
    return protect(header, payload, dcid if key_dcid is None else key_dcid, version)


def crypto_frame(offset: int, data: bytes) -> bytes:
    return b"\x06" + varint(offset) + varint(len(data)) + data


def a2_packet(version: int = QUIC_V1) -> bytes:
    return protect(A2_HEADER[version], A2_CRYPTO_FRAME.ljust(PAYLOAD_BYTES, b"\x00"),
                   version=version)


A2_HELLO = A2_CRYPTO_FRAME[4:]  # handshake message: type 1, length 0x0000ed


def _codes_ok(codes: tuple[str, ...]) -> bool:
    return all(c in ANOMALY_CODES for c in codes)


# --------------------------------------------------------------------------- RFC vectors


@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_initial_key_vectors(version: int) -> None:
    keys = client_initial_keys(DCID, version)
    assert (keys.secret.hex(), keys.key.hex(), keys.iv.hex(), keys.hp.hex()) == KEY_VECTORS[version]


def test_unknown_version_keys_refused() -> None:
    with pytest.raises(ValueError, match="QUIC version"):
        client_initial_keys(DCID, 0xFF00001D)


@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_a2_protected_header_matches_rfc(version: int) -> None:
    packet = a2_packet(version)
    assert len(packet) == 1200
    assert (packet[:22].hex(), packet[22:38].hex()) == A2_PROTECTED[version]


@pytest.mark.parametrize("version", [QUIC_V1, QUIC_V2])
def test_a2_client_initial_decrypts_to_client_hello(version: int) -> None:
    read = read_datagram(a2_packet(version))
    assert read.anomalies == ()
    [packet] = read.packets
    assert (packet.version, packet.dcid, packet.scid, packet.packet_number) == (version, DCID, b"", 2)
    assert packet.crypto == ((0, A2_HELLO),)
    assert packet.frame_types == (0x06, 0x00) and packet.anomalies == ()
    [hello] = CryptoAssembler().feed(a2_packet(version))
    ch = hello.client_hello
    assert ch is not None and hello.message == A2_HELLO
    assert ch.sni == "example.com" and ch.alpn == (b"alpn",)
    # 2 ciphers; 11 extensions (0000 ff01 000a 0010 0005 0033 002b 000d 002d 001c 0039)
    assert ja4(ch, proto="q").hash.startswith("q13d0211an_")


def test_v1_packet_with_v2_version_field_fails_authentication() -> None:
    packet = bytearray(a2_packet(QUIC_V1))
    packet[0] = (packet[0] & 0xCF) | 0x10  # v2 Initial type bits
    packet[1:5] = QUIC_V2.to_bytes(4, "big")
    assert read_datagram(bytes(packet)).anomalies == ("quic_decrypt_failed",)


# --------------------------------------------------------------------------- frames, coalescing


def test_coalesced_packets_and_skipped_types() -> None:
    hello = A2_HELLO
    first = initial(crypto_frame(0, hello[:100]), pn=0)
    second = initial(b"\x01\x02\x05\x00\x00\x00" + crypto_frame(100, hello[100:]), pn=1)
    # A Handshake packet (v1 type 2) in between is skipped by its Length.
    handshake = bytes([0xE0]) + (1).to_bytes(4, "big") + b"\x00\x00" + varint(30) + bytes(30)
    read = read_datagram(first + handshake + second + bytes(40))  # trailing zeros: padding
    assert read.anomalies == ()
    assert [p.packet_number for p in read.packets] == [0, 1]
    assert read.packets[1].frame_types == (0x01, 0x02, 0x06)  # payload shorter than 20: none padded
    [found] = CryptoAssembler().feed(first + handshake + second)
    assert found.message == hello and found.packets == 2


def test_ack_ecn_and_connection_close_frames() -> None:
    frames = (b"\x03\x05\x00\x01\x00\x01\x01\x07\x08\x09"  # ACK_ECN with one extra range
              + b"\x1c\x0a\x06\x03abc" + crypto_frame(0, b"x"))
    [packet] = read_datagram(initial(frames)).packets
    assert packet.frame_types[:3] == (0x03, 0x1C, 0x06) and packet.anomalies == ()


@pytest.mark.parametrize(("frames", "code"), [
    (b"\x08\x00", "quic_unknown_frame"),  # STREAM is not allowed in an Initial
    (b"\x06\x00\x40\x50abc", "quic_bad_frame"),  # CRYPTO longer than the payload
    (b"\x02\x01\x00\xbf\xff\xff\xff\xff\xff\xff\xff", "quic_bad_frame"),  # absurd ACK range count
])
def test_bad_frames(frames: bytes, code: str) -> None:
    [packet] = read_datagram(initial(frames, dcid=b"\x01\x02\x03\x04")).packets
    assert packet.anomalies == (code,)


def test_short_header_retry_and_version_negotiation_end_the_walk() -> None:
    assert read_datagram(b"\x40" + bytes(50)) == quic.DatagramRead()
    retry = bytes([0xF0]) + (1).to_bytes(4, "big") + b"\x00\x00" + bytes(30)
    assert read_datagram(retry) == quic.DatagramRead()
    assert read_datagram(b"\x80\x00\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x01") == quic.DatagramRead()


@pytest.mark.parametrize(("data", "code"), [
    (b"\xc0\xff\x00\x00\x1d" + bytes(30), "quic_unknown_version"),
    (b"\xc0\x00\x00\x00\x01\x15" + bytes(40), "quic_bad_cid_length"),
    (b"\xc0\x00\x00\x00\x01\x00\x15" + bytes(40), "quic_bad_cid_length"),
    (b"\xc0\x00\x00\x00\x01\x00\x00\x00\x05" + bytes(5), "quic_bad_length"),
    (b"\xc0\x00\x00\x00\x01\x00\x00\x00\xbf\xff\xff\xff" + bytes(100), "quic_truncated"),  # huge
    (b"\xc0\x00\x00\x00\x01\x08\x01\x02", "quic_truncated"),
])
def test_header_anomalies(data: bytes, code: str) -> None:
    read = read_datagram(data)
    assert read.packets == () and read.anomalies == (code,)


# --------------------------------------------------------------------------- adversarial


def test_truncated_at_every_length() -> None:
    packet = a2_packet()
    for n in range(len(packet)):
        read = read_datagram(packet[:n])
        assert read.packets == () and _codes_ok(read.anomalies)
        assert n == 0 or read.anomalies, n


def test_every_corrupted_byte_is_an_anomaly_or_harmless() -> None:
    packet = a2_packet()
    rng = random.Random(9001)
    for pos in range(len(packet)):
        bad = bytearray(packet)
        bad[pos] ^= 1 << rng.randrange(8)
        read = read_datagram(bytes(bad))
        assert _codes_ok(read.anomalies)
        if pos >= 5:  # past the first byte and the version: the AEAD covers it all
            assert read.packets == (), pos
            assert read.anomalies, pos


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1500))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert _codes_ok(read_datagram(data).anomalies)
    assembler = CryptoAssembler()
    assembler.feed(data)
    assert all(c in ANOMALY_CODES for c in assembler.anomalies)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_decrypted_payloads_never_raise(frames: bytes) -> None:
    read = read_datagram(initial(frames))
    assert len(read.packets) == 1 and _codes_ok(read.packets[0].anomalies)


def _split(hello: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    bounds = [0, *sorted(cuts), len(hello)]
    return [(a, hello[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


def test_crypto_out_of_order_and_overlapping_across_packets() -> None:
    hello = A2_HELLO
    pieces = _split(hello, [30, 90, 200])
    overlapping = (20, hello[20:120])  # overlaps pieces 0-2 with the same bytes
    order = [pieces[3], overlapping, pieces[2], pieces[0], pieces[1]]
    assembler = CryptoAssembler()
    results: list[QuicHello] = []
    for pn, (offset, data) in enumerate(order):
        results += assembler.feed(initial(crypto_frame(offset, data), pn=pn))
        if pn < 3:
            assert results == []
    [found] = results
    assert found.message == hello and found.anomalies == () and found.packets == 4
    # A retransmission after completion does not yield the hello again.
    assert assembler.feed(initial(crypto_frame(0, hello), pn=9)) == []


def test_crypto_out_of_order_in_one_packet() -> None:
    frames = b"".join(crypto_frame(o, d) for o, d in reversed(_split(A2_HELLO, [10, 50, 51])))
    [found] = CryptoAssembler().feed(initial(frames))
    assert found.message == A2_HELLO


def test_overlap_mismatch_keeps_first_copy() -> None:
    hello = A2_HELLO
    assembler = CryptoAssembler()
    assembler.feed(initial(crypto_frame(0, hello[:100])))
    forged = b"X" * 50 + hello[150:]
    [found] = assembler.feed(initial(crypto_frame(100, forged[:0]) + crypto_frame(50, hello[50:100])
                                     + crypto_frame(100, hello[100:]), pn=1))
    assert found.message == hello
    assembler = CryptoAssembler()
    assembler.feed(initial(crypto_frame(0, hello[:100])))
    [found] = assembler.feed(initial(crypto_frame(50, b"Z" * 50 + hello[100:]), pn=1))
    assert found.message == hello and "quic_crypto_overlap_mismatch" in found.anomalies


def test_byte_bound_and_claimed_huge_hello() -> None:
    assembler = CryptoAssembler(max_bytes=512)
    assert assembler.feed(initial(crypto_frame(600, b"abc"))) == []
    assert assembler.anomalies == {"quic_crypto_over_bound": 1} and assembler.dropped_frames == 1
    # A ClientHello header claiming 16 MiB is abandoned, not waited for.
    huge = initial(crypto_frame(0, b"\x01\xff\xff\xff" + bytes(100)), dcid=b"\x09" * 8)
    assert assembler.feed(huge) == []
    assert assembler.anomalies["quic_crypto_over_bound"] == 2
    assert assembler.feed(initial(crypto_frame(0, b"\x02\x00\x00\x01\x00"), dcid=b"\x07")) == []
    assert assembler.anomalies["quic_not_client_hello"] == 1


def test_flow_fallback_to_first_dcid_keys() -> None:
    first = initial(crypto_frame(0, A2_HELLO[:100]), dcid=b"\xaa" * 8)
    second = initial(crypto_frame(100, A2_HELLO[100:]), pn=1, dcid=b"\xbb" * 20,
                     key_dcid=b"\xaa" * 8)
    assembler = CryptoAssembler()
    assert assembler.feed(first, flow="c") == []
    [found] = assembler.feed(second, flow="c")
    assert found.message == A2_HELLO and found.dcid == b"\xaa" * 8
    # Without the flow the second packet cannot be authenticated.
    assembler = CryptoAssembler()
    assembler.feed(first)
    assert assembler.feed(second) == [] and assembler.anomalies == {"quic_decrypt_failed": 1}
    # The fallback is per flow: another flow does not borrow these keys.
    assembler = CryptoAssembler()
    assembler.feed(first, flow="c")
    assert assembler.feed(second, flow="other") == []


def test_connection_cap_evicts_oldest() -> None:
    assembler = CryptoAssembler(max_connections=2)
    for i in range(3):
        assembler.feed(initial(crypto_frame(0, A2_HELLO[:50]), dcid=bytes([i]) * 8))
    assert assembler.evicted == 1
    # The evicted first connection starts again from nothing.
    assert assembler.feed(initial(crypto_frame(50, A2_HELLO[50:]), dcid=bytes([0]) * 8)) == []
    [found] = assembler.feed(initial(crypto_frame(50, A2_HELLO[50:]), dcid=bytes([2]) * 8))
    assert found.message == A2_HELLO


def test_anomaly_codes_are_stable_snake_case() -> None:
    assert len(set(ANOMALY_CODES)) == len(ANOMALY_CODES)
    assert all(re.fullmatch(r"quic_[a-z_]+", c) for c in ANOMALY_CODES)


# --------------------------------------------------------------------------- references


def quic_hellos(path: Path, by_flow: bool = True) -> Iterator[tuple[int, int, int, QuicHello]]:
    """(frame, client port, server port, hello) for each ClientHello, UDP payloads in capture order."""
    assembler = CryptoAssembler()
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            cols = decode(batch)
            for i in range(len(batch)):
                if (int(cols.ip_proto[i]) != UDP or cols.is_fragment[i]
                        or int(cols.payload_len[i]) <= 0):
                    continue
                off = int(cols.payload_off[i])
                payload = batch.packet_bytes(i)[off:off + int(cols.payload_len[i])]
                flow = (int(cols.ip_src_hi[i]), int(cols.ip_src_lo[i]), int(cols.ip_dst_hi[i]),
                        int(cols.ip_dst_lo[i]), int(cols.sport[i]), int(cols.dport[i]))
                for hello in assembler.feed(payload, flow if by_flow else None):
                    yield int(cols.frame[i]), int(cols.sport[i]), int(cols.dport[i]), hello


def _snap_records(path: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    for line in path.read_text().splitlines():
        m = re.match(r"^(- |  )(\w+): (.*)$", line)
        if m:
            if m.group(1) == "- ":
                records.append({})
            if records:
                records[-1][m.group(2)] = m.group(3)
    return records


@pytest.mark.corpus
def test_foxio_ja4_quic(corpus_dir: Path) -> None:
    base = corpus_dir / "foxio-ja4"
    python_q = sum(str(v).startswith("q") for f in (base / "expected/python").glob("*.json")
                   for v in re.findall(r'"JA4(?:\.\d+)?": "([^"]*)"', f.read_text()))
    assert python_q == 0  # the Python reference emits no QUIC JA4; the Rust snapshots do
    expected: Counter[tuple[str, str, str, str]] = Counter()
    for snap in sorted((base / "expected/rust-insta").glob("ja4__insta@*.snap")):
        pcap = snap.name.removeprefix("ja4__insta@").removesuffix(".snap")
        for r in _snap_records(snap):
            if r.get("ja4", "").startswith("q"):
                expected[(pcap, r["src_port"], r.get("tls_server_name", ""), r["ja4"])] += 1
    assert sum(expected.values()) == 50
    ours: Counter[tuple[str, str, str, str]] = Counter()
    for pcap in {key[0] for key in expected}:
        for _frame, sport, _dport, hello in quic_hellos(base / "pcap" / pcap):
            ch = hello.client_hello
            assert ch is not None
            ours[(pcap, str(sport), ch.sni or "", ja4(ch, proto="q").hash)] += 1
    assert ours == expected  # 50/50


@pytest.mark.corpus
def test_suricata_verify_quic_ja4(corpus_dir: Path) -> None:
    tests = corpus_dir / "suricata-verify" / "tests"
    checked = 0
    for name in ("ja4-quic", "ja4-tls-quic"):
        spec = (tests / name / "test.yaml").read_text()
        wanted = re.findall(r"count: (\d+)\s+match:\s+event_type: quic\s+quic\.ja4: (\S+)", spec)
        assert wanted, name
        got = Counter(ja4(h.client_hello, proto="q").hash
                      for _f, _s, _d, h in quic_hellos(tests / name / "input.pcap")
                      if h.client_hello is not None)
        for count, value in wanted:
            assert got[value] == int(count), (name, value)
            checked += int(count)
    assert checked == 12


def _initial_versions(path: Path) -> set[int]:
    versions: set[int] = set()
    with CaptureReader(str(path)) as reader:
        for batch in reader.batches():
            cols = decode(batch)
            for i in range(len(batch)):
                off, n = int(cols.payload_off[i]), int(cols.payload_len[i])
                if int(cols.ip_proto[i]) == UDP and n >= 5:
                    payload = batch.packet_bytes(i)[off:off + 5]
                    if payload[0] & 0x80:
                        versions.add(int.from_bytes(payload[1:5], "big"))
    return versions


@pytest.mark.corpus
def test_tshark_quic_sni_and_ja3(corpus_dir: Path) -> None:
    rows: dict[str, Counter[tuple[str, str]]] = {}
    with (corpus_dir / "tshark-reference" / "tls_hellos.tsv").open() as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["udp_srcport"] and row["tls_handshake_type(1=CH,2=SH)"] == "1":
                rows.setdefault(row["file"], Counter())[(row["sni"], row["ja3"])] += 1
    agree = differ = drafts = 0
    differences: list[str] = []
    for name, want in sorted(rows.items()):
        path = corpus_dir / name
        if not path.is_file():
            continue
        if not _initial_versions(path) & {QUIC_V1, QUIC_V2}:
            drafts += sum(want.values())  # draft/other versions: out of scope, tshark decodes them
            continue
        got = Counter((h.client_hello.sni or "", ja3(h.client_hello).hash)
                      for _f, _s, _d, h in quic_hellos(path) if h.client_hello is not None)
        agree += sum((want & got).values())
        missed, extra = want - got, got - want
        differ += sum(missed.values()) + sum(extra.values())
        differences += [f"{name}: tshark {k}" for k in missed] + [f"{name}: ours {k}" for k in extra]
    print(f"tshark QUIC hellos: {agree} agree, {differ} differ, {drafts} draft-version skipped")
    print(*differences, sep="\n")
    assert differences == KNOWN_TSHARK_DIFFERENCES
    assert (agree, differ, drafts) == (107, 3, 212)


@pytest.mark.corpus
def test_client_keeps_first_keys_after_dcid_change(corpus_dir: Path) -> None:
    """The two captures where the ClientHello continues under a new DCID need ``flow``."""
    for name, sni in [("ndpi/tests/cfgs/default/pcap/quic_frags_different_dcid.pcapng",
                       "cdnjs.cloudflare.com"),
                      ("zeek/testing/btest/Traces/quic/quic-decrypt-fail-google-de-51833.pcap",
                       "www.google.de")]:
        path = corpus_dir / name
        if not path.is_file():
            pytest.skip(f"{name} is absent")
        assert [h.client_hello.sni for *_, h in quic_hellos(path) if h.client_hello] == [sni]
        assert list(quic_hellos(path, by_flow=False)) == []


#: - quic_0RTT.pcap holds two connections: frame 5 is QUIC v1 (agrees), frame 1 is
#:   draft-28 (0xff00001c), which tshark decrypts and we do not decode.
#: - quic-retry*.pcap: after the server's Retry the client sends its ClientHello
#:   again under the new DCID and new keys (RFC 9000 §17.2.5.2, RFC 9001 §5.2).
#:   We report both hellos (one per DCID); tshark keeps one connection across the
#:   Retry and shows the reassembled hello once.  Same SNI and JA3 both times.
KNOWN_TSHARK_DIFFERENCES = [
    "ndpi/tests/cfgs/default/pcap/quic_0RTT.pcap: tshark ('abcd', 'a7b629a5bd67bfc25e2c78b3daa4c12f')",
    "suricata-verify/tests/quic-retry-multiple/input.pcap: ours "
    "('public-api.wordpress.com', '399f55fb0c66675d155fb160088d1143')",
    "suricata-verify/tests/quic-retry/input.pcap: ours ('www.gravatar.com', '0b0b4e88770444edb82150180c407471')",
]
