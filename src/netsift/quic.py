"""QUIC Initial packets: header protection, decryption, frames and the ClientHello.

Pure functions on UDP payloads, plus one small stateful reassembler.  Nothing
here knows about flows or reports.

- Packet layout: RFC 9000 §17.2 (long header), §17.2.2 (Initial), §12.2
  (coalesced packets in one datagram), §16 (variable-length integers),
  §19 (frames: PADDING, PING, ACK, CRYPTO, CONNECTION_CLOSE are the ones an
  Initial may carry, §12.4 table 3).
- Initial keys: RFC 9001 §5.2 — ``initial_secret = HKDF-Extract(salt, DCID)``,
  ``client_initial_secret = HKDF-Expand-Label(initial_secret, "client in")``,
  then ``"quic key"``/``"quic iv"``/``"quic hp"``; HKDF-Expand-Label is
  RFC 8446 §7.1.  AEAD is AES-128-GCM with nonce = iv XOR packet number
  (RFC 9001 §5.3); header protection is the AES-ECB mask of a 16-byte sample
  taken 4 bytes after the packet number's start (§5.4.1-§5.4.3).
- QUIC v2: RFC 9369 §3 — version 0x6b3343cf, its own initial salt, labels
  ``"quicv2 key"``/``"quicv2 iv"``/``"quicv2 hp"``, and long-header packet
  types rotated (Initial = 0b01, 0-RTT = 0b10, Handshake = 0b11, Retry = 0b00).
- Test vectors: RFC 9001 Appendix A, RFC 9369 Appendix A.

Only the client's Initial keys are derived: the keys come from the Destination
Connection ID of the packet itself, which is right for every client Initial
before the server answers (the whole first flight, so the ClientHello) and
after a Retry.  A server's Initial (or a client Initial sent after the server
changed the DCID) fails authentication and is reported as
``quic_decrypt_failed``; a caller that knows the direction feeds only
client-to-server datagrams.  Draft versions (0xff0000xx) are not decoded.

Bad bytes never raise: every problem is an anomaly code from
:data:`ANOMALY_CODES`.  Bounds: a CID longer than 20 bytes is refused
(RFC 9000 §17.2); :class:`CryptoAssembler` keeps at most
:data:`MAX_CRYPTO_BYTES` of CRYPTO data per connection and at most
:data:`MAX_CONNECTIONS` connections, counting what it drops and evicts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from netsift.tls import (
    HANDSHAKE_CLIENT_HELLO,
    HANDSHAKE_HEADER_BYTES,
    ClientHello,
    parse_client_hello,
)

__all__ = [
    "ANOMALY_CODES",
    "MAX_CONNECTIONS",
    "MAX_CRYPTO_BYTES",
    "QUIC_V1",
    "QUIC_V2",
    "CryptoAssembler",
    "DatagramRead",
    "InitialKeys",
    "InitialPacket",
    "QuicHello",
    "client_initial_keys",
    "read_datagram",
]

#: Every anomaly code this module emits (stable identifiers, Zeek "weird" style).
ANOMALY_CODES = (
    "quic_truncated",  # bytes end before a header field or the Length says they should
    "quic_unknown_version",  # a long header with a version other than v1/v2 (or negotiation)
    "quic_bad_cid_length",  # a connection ID longer than 20 bytes (RFC 9000 §17.2)
    "quic_bad_length",  # Length too small for a packet number and a header-protection sample
    "quic_decrypt_failed",  # AES-GCM authentication failed (not a client Initial, or corrupted)
    "quic_bad_frame",  # a frame's fields run past the payload
    "quic_unknown_frame",  # a frame type not allowed in an Initial; parsing stops there
    "quic_crypto_over_bound",  # CRYPTO data beyond MAX_CRYPTO_BYTES of a connection: dropped
    "quic_crypto_overlap_mismatch",  # overlapping CRYPTO data disagrees; one copy is kept
    "quic_not_client_hello",  # CRYPTO stream at offset 0 is not a ClientHello
)

QUIC_V1 = 0x00000001  # RFC 9000 §15
QUIC_V2 = 0x6B3343CF  # RFC 9369 §3.1

MAX_CID_BYTES = 20  # RFC 9000 §17.2: "MUST NOT exceed 20 bytes" in QUIC v1
#: CRYPTO bytes kept per connection: a ClientHello with post-quantum key shares
#: is ~2 KB; 64 KiB leaves room for any real one and bounds memory.
MAX_CRYPTO_BYTES = 1 << 16
#: Connections the assembler tracks at once; the least recently fed is evicted.
MAX_CONNECTIONS = 4096

SAMPLE_BYTES = 16  # RFC 9001 §5.4.2
SAMPLE_OFFSET = 4  # sample starts 4 bytes after the packet number's first byte
TAG_BYTES = 16  # AES-128-GCM tag


@dataclass(frozen=True)
class _Version:
    """Per-version constants: initial salt (RFC 9001 §5.2, RFC 9369 §3.3.1),
    HKDF labels (RFC 9369 §3.3.2) and long-header type codes (RFC 9369 §3.2)."""

    salt: bytes
    label_prefix: str
    initial_type: int
    retry_type: int


VERSIONS: dict[int, _Version] = {
    QUIC_V1: _Version(bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"), "quic", 0b00, 0b11),
    QUIC_V2: _Version(bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"), "quicv2", 0b01, 0b00),
}

# Frame types (RFC 9000 §19, table 3 of §12.4).
FRAME_PADDING = 0x00
FRAME_PING = 0x01
FRAME_ACK = 0x02
FRAME_ACK_ECN = 0x03
FRAME_CRYPTO = 0x06
FRAME_CONNECTION_CLOSE = 0x1C


class _Short(Exception):
    """Internal: a read ran past the end of the buffer."""


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Short
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        """RFC 9000 §16: the two high bits of the first byte give the length."""
        first = self.u8()
        n = 1 << (first >> 6)
        return int.from_bytes(bytes([first & 0x3F]) + self.take(n - 1), "big")


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class InitialKeys:
    """Client Initial packet protection keys (RFC 9001 §5.2)."""

    secret: bytes
    key: bytes
    iv: bytes
    hp: bytes


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    """HKDF-Expand-Label with an empty context (RFC 8446 §7.1)."""
    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def client_initial_keys(dcid: bytes, version: int = QUIC_V1) -> InitialKeys:
    """Client Initial keys from the client's Destination Connection ID.

    Raises ValueError for a version other than :data:`QUIC_V1`/:data:`QUIC_V2`.
    """
    spec = VERSIONS.get(version)
    if spec is None:
        raise ValueError(f"QUIC version must be 0x{QUIC_V1:08x} or 0x{QUIC_V2:08x}, not 0x{version:08x}")
    extract = hmac.HMAC(spec.salt, hashes.SHA256())  # HKDF-Extract (RFC 5869 §2.2)
    extract.update(dcid)
    client = _hkdf_expand_label(extract.finalize(), "client in", 32)
    p = spec.label_prefix
    return InitialKeys(client, _hkdf_expand_label(client, f"{p} key", 16),
                       _hkdf_expand_label(client, f"{p} iv", 12),
                       _hkdf_expand_label(client, f"{p} hp", 16))


def _hp_mask(hp: bytes, sample: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()  # RFC 9001 §5.4.3
    return encryptor.update(sample) + encryptor.finalize()


# --------------------------------------------------------------------------- packets


@dataclass(frozen=True)
class InitialPacket:
    """One decrypted client Initial packet and its frames."""

    version: int
    dcid: bytes
    scid: bytes
    token: bytes
    packet_number: int
    key_dcid: bytes  # the DCID the keys were derived from (``dcid`` unless a fallback was given)
    frame_types: tuple[int, ...] = ()
    crypto: tuple[tuple[int, bytes], ...] = ()  # (offset, data) of each CRYPTO frame, wire order
    anomalies: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatagramRead:
    """What :func:`read_datagram` found in one UDP payload."""

    packets: tuple[InitialPacket, ...] = ()
    anomalies: tuple[str, ...] = ()  # datagram-level codes (those of each packet are on it)


def _parse_frames(payload: bytes) -> tuple[tuple[int, ...], tuple[tuple[int, bytes], ...], str | None]:
    """Frames of a decrypted Initial payload (RFC 9000 §19); stops at the first bad one."""
    r = _Reader(payload)
    types: list[int] = []
    crypto: list[tuple[int, bytes]] = []
    try:
        while r.pos < len(payload):
            ftype = r.varint()
            if ftype == FRAME_PADDING:
                # A run of padding is one frame for the record; skip it at once.
                end = r.pos
                while end < len(payload) and payload[end] == 0:
                    end += 1
                r.pos = end
            elif ftype == FRAME_PING:
                pass
            elif ftype in (FRAME_ACK, FRAME_ACK_ECN):  # §19.3
                r.varint()  # Largest Acknowledged
                r.varint()  # ACK Delay
                ranges = r.varint()  # ACK Range Count
                r.varint()  # First ACK Range
                if ranges > len(payload):  # each range needs at least 2 bytes
                    raise _Short
                for _ in range(ranges):
                    r.varint()  # Gap
                    r.varint()  # ACK Range Length
                if ftype == FRAME_ACK_ECN:
                    for _ in range(3):  # ECT0, ECT1, ECN-CE counts (§19.3.2)
                        r.varint()
            elif ftype == FRAME_CRYPTO:  # §19.6
                offset = r.varint()
                crypto.append((offset, r.take(r.varint())))
            elif ftype == FRAME_CONNECTION_CLOSE:  # §19.19
                r.varint()  # Error Code
                r.varint()  # Frame Type
                r.take(r.varint())  # Reason Phrase
            else:
                types.append(ftype)
                return tuple(types), tuple(crypto), "quic_unknown_frame"
            types.append(ftype)
    except _Short:
        return tuple(types), tuple(crypto), "quic_bad_frame"
    return tuple(types), tuple(crypto), None


def _read_packet(data: bytes, start: int, anomalies: list[str],
                 key_dcid: bytes | None) -> tuple[InitialPacket | None, int | None]:
    """One long-header packet at ``start``: (decrypted Initial or None, offset of the next packet)."""
    r = _Reader(data, start)
    try:
        first = r.u8()
        version = int.from_bytes(r.take(4), "big")
        spec = VERSIONS.get(version)
        if spec is None:
            anomalies.append("quic_unknown_version")
            return None, None
        dcid_len = r.u8()
        if dcid_len > MAX_CID_BYTES:
            anomalies.append("quic_bad_cid_length")
            return None, None
        dcid = r.take(dcid_len)
        scid_len = r.u8()
        if scid_len > MAX_CID_BYTES:
            anomalies.append("quic_bad_cid_length")
            return None, None
        scid = r.take(scid_len)
        ptype = (first >> 4) & 0x03
        if ptype == spec.retry_type:  # Retry has no Length: it ends the datagram (§17.2.5)
            return None, None
        token = b""
        if ptype == spec.initial_type:
            token = r.take(r.varint())
        length = r.varint()
        pn_offset = r.pos
    except _Short:
        anomalies.append("quic_truncated")
        return None, None
    end = pn_offset + length
    if end > len(data):
        anomalies.append("quic_truncated")
        return None, None
    if ptype != spec.initial_type:  # 0-RTT or Handshake: skip, keys unknown
        return None, end
    if length < SAMPLE_OFFSET + SAMPLE_BYTES:
        anomalies.append("quic_bad_length")
        return None, end
    if key_dcid is None:
        key_dcid = dcid
    keys = client_initial_keys(key_dcid, version)
    sample = data[pn_offset + SAMPLE_OFFSET:pn_offset + SAMPLE_OFFSET + SAMPLE_BYTES]
    mask = _hp_mask(keys.hp, sample)
    first_clear = first ^ (mask[0] & 0x0F)  # long header: low 4 bits protected (§5.4.1)
    pn_len = (first_clear & 0x03) + 1
    pn_bytes = bytes(b ^ m for b, m in zip(data[pn_offset:pn_offset + pn_len], mask[1:1 + pn_len],
                                                 strict=True))
    # With no earlier packet to decode against, the truncated number is the number
    # (RFC 9000 §A.3 with largest_pn absent); client Initials start at 0.
    packet_number = int.from_bytes(pn_bytes, "big")
    header = bytes([first_clear]) + data[start + 1:pn_offset] + pn_bytes
    nonce = bytes(a ^ b for a, b in zip(keys.iv, packet_number.to_bytes(12, "big"), strict=True))
    try:
        plain = AESGCM(keys.key).decrypt(nonce, data[pn_offset + pn_len:end], header)
    except InvalidTag:
        anomalies.append("quic_decrypt_failed")
        return None, end
    types, crypto, problem = _parse_frames(plain)
    packet = InitialPacket(version, dcid, scid, token, packet_number, key_dcid, types, crypto,
                           (problem,) if problem else ())
    return packet, end


def read_datagram(payload: bytes, key_dcid: bytes | None = None) -> DatagramRead:
    """Every client Initial packet in a UDP payload, decrypted, with its frames.

    Coalesced packets (RFC 9000 §12.2) are walked by their Length; 0-RTT and
    Handshake packets are skipped; a short-header packet, a Retry or a
    Version Negotiation packet ends the walk (they carry no Length).  Trailing
    zero bytes after the last packet are padding, not an anomaly.

    Keys come from each packet's own DCID unless ``key_dcid`` is given: a
    client keeps the keys of its first DCID after switching to the server's
    connection ID (RFC 9001 §5.2), which only a caller that knows the
    connection can supply (see :class:`CryptoAssembler` ``flow``).
    """
    data = bytes(payload)
    packets: list[InitialPacket] = []
    anomalies: list[str] = []
    pos: int | None = 0
    while pos is not None and pos < len(data) and data[pos] & 0x80:
        if len(data) - pos >= 5 and data[pos + 1:pos + 5] == b"\x00\x00\x00\x00":
            break  # Version Negotiation (RFC 9000 §17.2.1): not an Initial, not an anomaly
        packet, pos = _read_packet(data, pos, anomalies, key_dcid)
        if packet is not None:
            packets.append(packet)
    return DatagramRead(tuple(packets), tuple(dict.fromkeys(anomalies)))


# --------------------------------------------------------------------------- reassembly


@dataclass(frozen=True)
class QuicHello:
    """A ClientHello reassembled from the CRYPTO frames of a connection's Initials."""

    version: int
    dcid: bytes
    message: bytes  # the handshake message, 4-byte header included
    client_hello: ClientHello | None
    packets: int  # Initial packets that contributed CRYPTO data
    anomalies: tuple[str, ...] = ()


@dataclass
class _Connection:
    version: int
    chunks: dict[int, bytes] = field(default_factory=dict)  # offset -> data
    stored: int = 0
    packets: int = 0
    anomalies: list[str] = field(default_factory=list)


@dataclass
class CryptoAssembler:
    """Reassembles the client's CRYPTO stream per Destination Connection ID.

    Feed UDP payloads in capture order with :meth:`feed`; it returns the
    ClientHellos that became complete (contiguous from offset 0 to the length
    in their handshake header).  Each connection keeps at most
    ``max_bytes`` of CRYPTO data (beyond it: ``quic_crypto_over_bound``,
    counted in ``dropped_frames``); at most ``max_connections`` are tracked,
    the least recently fed evicted first (``evicted``).  A connection whose
    hello was delivered is remembered only by its DCID, so retransmissions
    do not yield it twice.

    Connections are keyed by the DCID their keys come from (and the caller's ``flow``,
    so a connection replayed on another flow counts again).  When the caller
    passes a directional ``flow`` key (e.g. the client's 5-tuple), the
    assembler remembers the first DCID that decrypted on that flow, and a
    later client Initial that fails under its own DCID (the client switched
    to the server's connection ID but keeps its first keys, RFC 9001 §5.2)
    is retried with those keys; at most ``max_connections`` flows are kept.
    """

    max_bytes: int = MAX_CRYPTO_BYTES
    max_connections: int = MAX_CONNECTIONS
    evicted: int = 0
    dropped_frames: int = 0
    anomalies: dict[str, int] = field(default_factory=dict)
    _open: OrderedDict[tuple[Hashable, bytes], _Connection] = field(default_factory=OrderedDict)
    _done: OrderedDict[tuple[Hashable, bytes], None] = field(default_factory=OrderedDict)
    _flows: OrderedDict[Hashable, bytes] = field(default_factory=OrderedDict)

    def _count(self, code: str) -> None:
        self.anomalies[code] = self.anomalies.get(code, 0) + 1

    def feed(self, payload: bytes, flow: Hashable | None = None) -> list[QuicHello]:
        read = read_datagram(payload)
        if flow is not None:
            first = self._flows.get(flow)
            if first is not None and "quic_decrypt_failed" in read.anomalies:
                retry = read_datagram(payload, key_dcid=first)
                if len(retry.packets) > len(read.packets):
                    read = retry
            if first is None and read.packets:
                self._flows[flow] = read.packets[0].key_dcid
                if len(self._flows) > self.max_connections:
                    self._flows.popitem(last=False)
        for code in read.anomalies:
            self._count(code)
        out: list[QuicHello] = []
        for packet in read.packets:
            for code in packet.anomalies:
                self._count(code)
            hello = self._add(packet, flow)
            if hello is not None:
                out.append(hello)
        return out

    def _add(self, packet: InitialPacket, flow: Hashable | None = None) -> QuicHello | None:
        # per flow and DCID: the same connection replayed on another flow (a trace captured
        # twice, a test re-run) is a hello of its own, whichever flows it has met before
        key = (flow, packet.key_dcid)
        if key in self._done or not packet.crypto:
            return None
        conn = self._open.get(key)
        if conn is None:
            if len(self._open) >= self.max_connections:
                self._open.popitem(last=False)
                self.evicted += 1
            conn = self._open[key] = _Connection(packet.version)
        self._open.move_to_end(key)
        conn.packets += 1
        conn.anomalies.extend(packet.anomalies)
        for offset, data in packet.crypto:
            if offset + len(data) > self.max_bytes or conn.stored + len(data) > self.max_bytes:
                conn.anomalies.append("quic_crypto_over_bound")
                self._count("quic_crypto_over_bound")
                self.dropped_frames += 1
                continue
            # A chunk at an offset already held keeps only its new tail (first copy wins).
            while data and offset in conn.chunks:
                old = conn.chunks[offset]
                if data[:len(old)] != old[:len(data)]:
                    self._mismatch(conn)
                offset, data = offset + len(old), data[len(old):]
            if data:
                conn.stored += len(data)
                conn.chunks[offset] = data
        return self._complete(key, conn)

    def _contiguous(self, conn: _Connection) -> bytes:
        """The stream from offset 0 up to its first gap; in an overlap the chunk with the
        lower offset wins and a disagreement is flagged."""
        buf = bytearray()
        for offset in sorted(conn.chunks):
            data = conn.chunks[offset]
            if offset > len(buf):
                break
            overlap = buf[offset:offset + len(data)]
            if overlap != data[:len(overlap)]:
                self._mismatch(conn)
            buf += data[len(buf) - offset:]
        return bytes(buf)

    def _mismatch(self, conn: _Connection) -> None:
        if "quic_crypto_overlap_mismatch" not in conn.anomalies:
            conn.anomalies.append("quic_crypto_overlap_mismatch")
            self._count("quic_crypto_overlap_mismatch")

    def _complete(self, key: tuple[Hashable, bytes], conn: _Connection) -> QuicHello | None:
        stream = self._contiguous(conn)
        if len(stream) < HANDSHAKE_HEADER_BYTES:
            return None
        need = HANDSHAKE_HEADER_BYTES + int.from_bytes(stream[1:4], "big")
        if stream[0] != HANDSHAKE_CLIENT_HELLO:
            problem = "quic_not_client_hello"
        elif need > self.max_bytes:
            problem = "quic_crypto_over_bound"
        elif len(stream) >= need:
            self._finish(key)
            message = stream[:need]
            ch = parse_client_hello(message[HANDSHAKE_HEADER_BYTES:])
            return QuicHello(conn.version, key[1], message, ch, conn.packets,
                             tuple(dict.fromkeys(conn.anomalies)))
        else:
            return None
        conn.anomalies.append(problem)
        self._count(problem)
        self._finish(key)
        return None

    def _finish(self, key: tuple[Hashable, bytes]) -> None:
        self._open.pop(key, None)
        self._done[key] = None
        if len(self._done) > self.max_connections:
            self._done.popitem(last=False)
