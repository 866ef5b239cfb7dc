"""Fuzz the QUIC client Initial reader: netsift.quic.

Two kinds of input, told apart by the first byte:

- first byte with the high bit set (a long header, as every real Initial
  datagram starts): the input is a UDP payload, read as it is;
- otherwise: the rest of the input is the *decrypted* frame payload.  It is
  cut into 1-4 pieces (bits 1-2 of the first byte), each sealed into a valid
  client Initial (QUIC v1 or v2 by bit 0) for one connection ID, so that the
  frame parser, the CRYPTO reassembly and the ClientHello inside are reached
  (random bytes never pass AES-GCM authentication).

Checks, for every input:

- ``read_datagram`` and ``CryptoAssembler.feed`` never raise and report only
  codes from ``quic.ANOMALY_CODES``; the assembler keeps no more than
  ``max_bytes`` of CRYPTO data per connection (checked with a small bound);
- every ClientHello found gets its fingerprints with the QUIC ``q`` protocol.
"""

from __future__ import annotations

import sys

import atheris
from _common import main
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from quicgen import varint  # tests/ (on the path through _common)

with atheris.instrument_imports(include=["netsift"]):
    from netsift import quic, tls

DCID = bytes.fromhex("8394c8f03e515708")  # RFC 9001 §A.2
SMALL_CRYPTO_BYTES = 512


def seal(payload: bytes, pn: int, version: int) -> bytes:
    """A protected client Initial carrying ``payload`` (RFC 9001 §5.3-§5.4)."""
    payload = payload.ljust(20, b"\x00")  # room for the header-protection sample
    keys = quic.client_initial_keys(DCID, version)
    ptype = 0b00 if version == quic.QUIC_V1 else 0b01
    header = (bytes([0xC3 | ptype << 4]) + version.to_bytes(4, "big") + bytes([len(DCID)]) + DCID
              + b"\x00" + b"\x00" + varint(4 + len(payload) + 16) + pn.to_bytes(4, "big"))
    nonce = (int.from_bytes(keys.iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(keys.key).encrypt(nonce, payload, header)
    enc = Cipher(algorithms.AES(keys.hp), modes.ECB()).encryptor()
    mask = enc.update(sealed[:16]) + enc.finalize()
    out = bytearray(header + sealed)
    out[0] ^= mask[0] & 0x0F
    for i in range(4):
        out[len(header) - 4 + i] ^= mask[1 + i]
    return bytes(out)


def datagrams(data: bytes) -> list[bytes]:
    if not data or data[0] & 0x80:
        return [data]
    version = quic.QUIC_V2 if data[0] & 1 else quic.QUIC_V1
    pieces = 1 + (data[0] >> 1) % 4
    frames = data[1:]
    size = -(-len(frames) // pieces) or 1
    return [seal(frames[i:i + size], n, version)
            for n, i in enumerate(range(0, max(len(frames), 1), size))]


def check_codes(codes: object) -> None:
    assert set(codes) <= set(quic.ANOMALY_CODES), codes  # type: ignore[call-overload]


def test_one_input(data: bytes) -> None:
    grams = datagrams(data)
    for gram in (*grams, b"".join(grams)):
        read = quic.read_datagram(gram)
        check_codes(read.anomalies)
        for packet in read.packets:
            check_codes(packet.anomalies)
    for assembler in (quic.CryptoAssembler(), quic.CryptoAssembler(max_bytes=SMALL_CRYPTO_BYTES)):
        for gram in grams:
            for hello in assembler.feed(gram, flow="client"):
                check_codes(hello.anomalies)
                if hello.client_hello is not None:
                    tls.client_fingerprints(hello.client_hello, "q")
        check_codes(assembler.anomalies)
        for conn in assembler._open.values():
            assert conn.stored <= assembler.max_bytes
            check_codes(conn.anomalies)


if __name__ == "__main__":
    main(test_one_input, max_len=4096)
    sys.exit(0)
