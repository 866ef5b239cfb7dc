"""Test-only oracle: a frozen copy of ``netsift.tls`` as it was before the fast rewrite.

tests/test_tls_fast.py compares the current parser and fingerprints against this
straightforward ``_Reader``-based implementation.  Do not optimise or "fix" it: its
job is to stay what the fast code was checked against.  The original module
docstring follows.

TLS ClientHello/ServerHello parsing and the JA3, JA3N, JA3S and JA4 fingerprints.

Pure functions on bytes: nothing here knows about packets, flows or reports.

Parsing follows RFC 8446 §4.1.2/§4.1.3 (hello layouts), §5.1 (record layer),
RFC 6066 §3 (server_name), RFC 7301 §3.1 (ALPN), RFC 8422 §5.1 (supported
groups, EC point formats), RFC 8446 §4.2.1/§4.2.3 (supported_versions,
signature_algorithms) and RFC 8701 (GREASE).  Bad bytes never raise: the
parser keeps what it could read and lists anomaly codes (from
:data:`ANOMALY_CODES`) on the result.

Fingerprints, each returning the raw pre-hash string and the hash
(:class:`Fingerprint`):

- :func:`ja3`, :func:`ja3s` — salesforce/ja3 (BSD-3), ``README.md`` and
  ``python/ja3/ja3.py``: decimal values in wire order, GREASE removed, MD5.
- :func:`ja3n` — JA3 with the extensions sorted (fooinha/nginx-ssl-ja3 PR#49,
  browserleaks ``ja3n_text``), stable across Chrome's extension shuffling.
- :func:`ja4` / :func:`ja4_o` — FoxIO-LLC/ja4 ``technical_details/JA4.md``
  (JA4 client fingerprint, BSD-3): ``JA4``/``JA4_r`` and ``JA4_o``/``JA4_ro``.
  GREASE is also removed from signature algorithms (biandratti/huginn-net
  PR#323, FoxIO ``sigalg-grease.pcapng``).  Duplicate extensions are kept in
  the sorted list (FoxIO's ``python/common.py`` collapses them with ``set()``
  in the hash while counting them; we hash what was on the wire).

JA4S, JA4H and the other JA4+ methods are deliberately absent: they are under
the FoxIO License 1.1, not BSD.

Bounds: a handshake message longer than :data:`MAX_HELLO_BYTES` (the largest
hello the field widths allow) is flagged and parsed only up to what is
present; nothing is ever allocated from a claimed length.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = [
    "ANOMALY_CODES",
    "ClientHello",
    "Fingerprint",
    "HelloRead",
    "ServerHello",
    "is_grease",
    "ja3",
    "ja3n",
    "ja3s",
    "ja4",
    "ja4_o",
    "parse_client_hello",
    "parse_server_hello",
    "read_hello",
]

#: Every anomaly code this module emits (stable identifiers, Zeek "weird" style).
ANOMALY_CODES = (
    "tls_truncated",  # bytes end before a length field says they should
    "tls_not_handshake",  # the first record is not a TLS handshake record
    "tls_unexpected_message",  # handshake message type is not the hello asked for
    "tls_record_interleaved",  # a non-handshake record arrives before the hello is complete
    "tls_record_too_long",  # record length above 2^14 + 2048 (RFC 5246 §6.2.3)
    "tls_hello_too_long",  # handshake length above MAX_HELLO_BYTES
    "tls_bad_extension",  # an extension's contents disagree with its own length
    "tls_duplicate_extension",  # an extension type appears twice (RFC 8446 §4.2 forbids it)
    "tls_trailing_bytes",  # bytes after the extensions block
)

# Content types (RFC 8446 §5.1) and handshake types (§4).
CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
HANDSHAKE_SERVER_HELLO = 2
HANDSHAKE_HEADER_BYTES = 4
RECORD_HEADER_BYTES = 5
#: Largest legal TLSCiphertext fragment (RFC 5246 §6.2.3): 2^14 + 2048.
MAX_RECORD_BYTES = 2**14 + 2048
#: Largest ClientHello the field widths allow: version 2, random 32, session id
#: 1+255, cipher suites 2+65534, compression 1+255, extensions 2+65535.
MAX_HELLO_BYTES = 2 + 32 + 1 + 255 + 2 + 65534 + 1 + 255 + 2 + 65535

#: TLS 1.3 drafts announce version 0x7f00 + draft number; before draft 22
#: (draft-ietf-tls-tls13-22 §4.1.3) a ServerHello had no session id echo and
#: no compression method.
TLS13_DRAFT_FIRST = 0x7F00
TLS13_DRAFT_SESSION_ID = 0x7F16

# Extension types (IANA TLS ExtensionType registry).
EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_GROUPS = 0x000A
EXT_EC_POINT_FORMATS = 0x000B
EXT_SIGNATURE_ALGORITHMS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B

#: JA4 version codes (JA4.md "TLS Version").
JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
JA4_PROTOCOLS = ("t", "q", "d")  # TLS over TCP, QUIC, DTLS
JA4_EMPTY_HASH = "000000000000"
JA4_MAX_COUNT = 99


def is_grease(value: int) -> bool:
    """True for the 16 RFC 8701 GREASE values 0x0a0a, 0x1a1a, ... 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


class _Short(Exception):
    """Internal: a length ran past the end of the bytes (never escapes this module)."""


class _Reader:
    """A cursor over bytes whose reads raise :class:`_Short` past the end."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise _Short
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())


def _u16_list(data: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))


@dataclass(frozen=True)
class Extension:
    """One extension as it was on the wire."""

    type: int
    data: bytes


@dataclass(frozen=True)
class ClientHello:
    """A parsed ClientHello; fields hold what could be read (see ``anomalies``)."""

    legacy_version: int
    record_version: int | None = None
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[Extension, ...] = ()
    sni: str | None = None
    alpn: tuple[bytes, ...] = ()
    supported_versions: tuple[int, ...] = ()
    supported_groups: tuple[int, ...] = ()
    ec_point_formats: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()
    anomalies: tuple[str, ...] = ()

    @property
    def extension_types(self) -> tuple[int, ...]:
        return tuple(e.type for e in self.extensions)


@dataclass(frozen=True)
class ServerHello:
    """A parsed ServerHello (or HelloRetryRequest, which shares its layout)."""

    legacy_version: int
    record_version: int | None = None
    cipher_suite: int | None = None
    extensions: tuple[Extension, ...] = ()
    supported_version: int | None = None
    alpn: tuple[bytes, ...] = ()
    anomalies: tuple[str, ...] = ()

    @property
    def extension_types(self) -> tuple[int, ...]:
        return tuple(e.type for e in self.extensions)


def _read_extensions(r: _Reader, anomalies: list[str]) -> list[Extension]:
    """Extensions block (RFC 8446 §4.2); keeps complete ones if it is cut short."""
    out: list[Extension] = []
    if r.remaining() == 0:
        return out  # no extensions block at all (legal before TLS 1.2)
    try:
        block = r.vec16()
    except _Short:
        anomalies.append("tls_truncated")
        block = r.take(r.remaining())
    if r.remaining():
        anomalies.append("tls_trailing_bytes")
    er = _Reader(block)
    seen: set[int] = set()
    try:
        while er.remaining():
            etype = er.u16()
            out.append(Extension(etype, er.vec16()))
            if etype in seen and "tls_duplicate_extension" not in anomalies:
                anomalies.append("tls_duplicate_extension")
            seen.add(etype)
    except _Short:
        if "tls_truncated" not in anomalies:
            anomalies.append("tls_truncated")
    return out


def _first(extensions: list[Extension], etype: int) -> bytes | None:
    for e in extensions:
        if e.type == etype:
            return e.data
    return None


def _inner(data: bytes | None, read: str, anomalies: list[str]) -> bytes:
    """The list inside an extension, prefixed by a u8 or u16 length."""
    if data is None:
        return b""
    r = _Reader(data)
    try:
        inner = r.vec8() if read == "u8" else r.vec16()
    except _Short:
        anomalies.append("tls_bad_extension")
        return data[1 if read == "u8" else 2:]
    if r.remaining():
        anomalies.append("tls_bad_extension")
    return inner


def _sni(data: bytes | None, anomalies: list[str]) -> str | None:
    """First host_name of server_name (RFC 6066 §3); None if absent or unreadable."""
    if data is None:
        return None
    r = _Reader(_inner(data, "u16", anomalies))
    try:
        while r.remaining():
            name_type = r.u8()
            name = r.vec16()
            if name_type == 0:
                return name.decode("ascii", "replace")
    except _Short:
        anomalies.append("tls_bad_extension")
    return None


def _alpn(data: bytes | None, anomalies: list[str]) -> tuple[bytes, ...]:
    """ProtocolNameList (RFC 7301 §3.1)."""
    if data is None:
        return ()
    r = _Reader(_inner(data, "u16", anomalies))
    out: list[bytes] = []
    try:
        while r.remaining():
            out.append(r.vec8())
    except _Short:
        anomalies.append("tls_bad_extension")
    return tuple(out)


def _dedupe(codes: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def _open_hello(data: bytes) -> tuple[_Reader, int, list[str]] | None:
    """A reader over a hello body (capped at MAX_HELLO_BYTES), its legacy version, anomalies so far."""
    data = bytes(data)
    anomalies: list[str] = []
    if len(data) > MAX_HELLO_BYTES:
        anomalies.append("tls_hello_too_long")
        data = data[:MAX_HELLO_BYTES]
    r = _Reader(data)
    try:
        version = r.u16()
    except _Short:
        return None
    return r, version, anomalies


def parse_client_hello(data: bytes, record_version: int | None = None) -> ClientHello | None:
    """Parse a ClientHello handshake message body (after the 4-byte handshake header).

    Returns None only when not even ``legacy_version`` is present; otherwise a
    :class:`ClientHello` with every field that could be read and the anomaly
    codes met on the way.
    """
    opened = _open_hello(data)
    if opened is None:
        return None
    r, version, anomalies = opened
    ciphers: tuple[int, ...] = ()
    extensions: list[Extension] = []
    try:
        r.take(32)  # random
        r.vec8()  # legacy_session_id
        raw = r.u16()
        body = r.take(min(raw, r.remaining()))
        ciphers = _u16_list(body)
        if len(body) < raw or raw % 2:
            raise _Short
        r.vec8()  # legacy_compression_methods
        extensions = _read_extensions(r, anomalies)
    except _Short:
        anomalies.append("tls_truncated")
    sv = _first(extensions, EXT_SUPPORTED_VERSIONS)
    return ClientHello(
        legacy_version=version,
        record_version=record_version,
        cipher_suites=ciphers,
        extensions=tuple(extensions),
        sni=_sni(_first(extensions, EXT_SERVER_NAME), anomalies),
        alpn=_alpn(_first(extensions, EXT_ALPN), anomalies),
        supported_versions=_u16_list(_inner(sv, "u8", anomalies)) if sv is not None else (),
        supported_groups=_u16_list(_inner(_first(extensions, EXT_SUPPORTED_GROUPS), "u16", anomalies)),
        ec_point_formats=tuple(_inner(_first(extensions, EXT_EC_POINT_FORMATS), "u8", anomalies)),
        signature_algorithms=_u16_list(
            _inner(_first(extensions, EXT_SIGNATURE_ALGORITHMS), "u16", anomalies)),
        anomalies=_dedupe(anomalies),
    )


def parse_server_hello(data: bytes, record_version: int | None = None) -> ServerHello | None:
    """Parse a ServerHello handshake message body (after the 4-byte handshake header)."""
    opened = _open_hello(data)
    if opened is None:
        return None
    r, version, anomalies = opened
    cipher: int | None = None
    extensions: list[Extension] = []
    try:
        r.take(32)  # random
        short = TLS13_DRAFT_FIRST <= version < TLS13_DRAFT_SESSION_ID
        if not short:
            r.vec8()  # legacy_session_id_echo
        cipher = r.u16()
        if not short:
            r.u8()  # legacy_compression_method
        extensions = _read_extensions(r, anomalies)
    except _Short:
        anomalies.append("tls_truncated")
    sv = _first(extensions, EXT_SUPPORTED_VERSIONS)
    chosen: int | None = None
    if sv is not None:
        if len(sv) == 2:
            chosen = int.from_bytes(sv, "big")
        else:
            anomalies.append("tls_bad_extension")
    return ServerHello(
        legacy_version=version,
        record_version=record_version,
        cipher_suite=cipher,
        extensions=tuple(extensions),
        supported_version=chosen,
        alpn=_alpn(_first(extensions, EXT_ALPN), anomalies),
        anomalies=_dedupe(anomalies),
    )


@dataclass(frozen=True)
class HelloRead:
    """What :func:`read_hello` found in record-layer bytes.

    ``complete`` is False when the bytes end before the hello does (more TCP
    payload may finish it); ``hello`` then holds what the present bytes gave.
    ``consumed`` is how many input bytes the records carrying the hello used.
    """

    hello: ClientHello | ServerHello | None
    complete: bool
    consumed: int
    anomalies: tuple[str, ...] = field(default=())


def read_hello(data: bytes) -> HelloRead:
    """Read a ClientHello or ServerHello from TLS record-layer bytes (RFC 8446 §5.1).

    Handshake fragments of consecutive records are concatenated until the
    first handshake message is complete.  Leading change_cipher_spec records
    (TLS 1.3 middlebox compatibility, RFC 8446 §D.4, sent before a second
    ClientHello) are skipped.
    """
    anomalies: list[str] = []
    fragments: list[bytes] = []
    have = 0
    need: int | None = None
    record_version: int | None = None
    pos = 0
    n = len(data)
    while need is None or have < need:
        if n - pos < RECORD_HEADER_BYTES:
            break
        ctype = data[pos]
        version = int.from_bytes(data[pos + 1:pos + 3], "big")
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        if ctype == CONTENT_CHANGE_CIPHER_SPEC and not fragments and data[pos + 1] == 3:
            pos = min(pos + RECORD_HEADER_BYTES + length, n)  # a record cut short ends at the input
            continue
        if ctype != CONTENT_HANDSHAKE or data[pos + 1] not in (3, 0xFE):
            anomalies.append("tls_record_interleaved" if fragments else "tls_not_handshake")
            break
        if length > MAX_RECORD_BYTES:
            anomalies.append("tls_record_too_long")
        if record_version is None:
            record_version = version
        fragment = data[pos + RECORD_HEADER_BYTES:pos + RECORD_HEADER_BYTES + length]
        pos += RECORD_HEADER_BYTES + len(fragment)
        if need is not None:
            fragment = fragment[:need - have]  # later messages in the record are not ours
        fragments.append(fragment)
        have += len(fragment)
        if need is None and have >= HANDSHAKE_HEADER_BYTES:
            head = b"".join(fragments)
            need = HANDSHAKE_HEADER_BYTES + int.from_bytes(head[1:4], "big")
            if need - HANDSHAKE_HEADER_BYTES > MAX_HELLO_BYTES:
                anomalies.append("tls_hello_too_long")
                need = HANDSHAKE_HEADER_BYTES + MAX_HELLO_BYTES
            fragments = [head[:need]]
            have = len(fragments[0])
        if len(fragment) < length:
            break  # the record itself is cut short
    message = b"".join(fragments)
    complete = need is not None and have >= need
    if not complete and "tls_not_handshake" not in anomalies:
        anomalies.append("tls_truncated")
    if len(message) < 1:
        return HelloRead(None, False, pos, _dedupe(anomalies))
    body = message[HANDSHAKE_HEADER_BYTES:need]
    hello: ClientHello | ServerHello | None
    if message[0] == HANDSHAKE_CLIENT_HELLO:
        hello = parse_client_hello(body, record_version)
    elif message[0] == HANDSHAKE_SERVER_HELLO:
        hello = parse_server_hello(body, record_version)
    else:
        anomalies.append("tls_unexpected_message")
        hello = None
    if hello is not None:
        anomalies.extend(a for a in hello.anomalies if complete or a != "tls_truncated")
    return HelloRead(hello, complete, pos, _dedupe(anomalies))


# --------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint's raw pre-hash string and its hash."""

    raw: str
    hash: str


def _md5(text: str) -> Fingerprint:
    return Fingerprint(text, hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest())


def _dec(values: tuple[int, ...] | list[int]) -> str:
    return "-".join(str(v) for v in values if not is_grease(v))


def ja3(ch: ClientHello) -> Fingerprint:
    """JA3: ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``."""
    return _md5(",".join((
        str(ch.legacy_version),
        _dec(ch.cipher_suites),
        _dec(ch.extension_types),
        _dec(ch.supported_groups),
        _dec(ch.ec_point_formats),
    )))


def ja3n(ch: ClientHello) -> Fingerprint:
    """JA3N: JA3 with the (GREASE-free) extension codes sorted numerically."""
    return _md5(",".join((
        str(ch.legacy_version),
        _dec(ch.cipher_suites),
        _dec(sorted(ch.extension_types)),
        _dec(ch.supported_groups),
        _dec(ch.ec_point_formats),
    )))


def ja3s(sh: ServerHello) -> Fingerprint:
    """JA3S: ``SSLVersion,Cipher,Extensions`` of a ServerHello."""
    cipher = "" if sh.cipher_suite is None else str(sh.cipher_suite)
    return _md5(",".join((str(sh.legacy_version), cipher, _dec(sh.extension_types))))


def _ja4_alpn(alpn: tuple[bytes, ...]) -> str:
    """First and last character of the first ALPN value; hex nibbles if not alphanumeric."""
    if not alpn or not alpn[0]:
        return "00"
    value = alpn[0]
    first, last = chr(value[0]), chr(value[-1])
    if first.isascii() and first.isalnum() and last.isascii() and last.isalnum():
        return first + last
    hexed = value.hex()
    return hexed[0] + hexed[-1]


def _ja4_a(ch: ClientHello, proto: str) -> str:
    if proto not in JA4_PROTOCOLS:
        raise ValueError(f"JA4 protocol must be one of {', '.join(JA4_PROTOCOLS)}, not {proto!r}")
    versions = [v for v in ch.supported_versions if not is_grease(v)]
    version = JA4_VERSIONS.get(max(versions) if versions else ch.legacy_version, "00")
    sni = "d" if EXT_SERVER_NAME in ch.extension_types else "i"
    ciphers = sum(1 for c in ch.cipher_suites if not is_grease(c))
    extensions = sum(1 for e in ch.extension_types if not is_grease(e))
    return (f"{proto}{version}{sni}{min(ciphers, JA4_MAX_COUNT):02d}"
            f"{min(extensions, JA4_MAX_COUNT):02d}{_ja4_alpn(ch.alpn)}")


def _sha12(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii")).hexdigest()[:12] if raw else JA4_EMPTY_HASH


def _ja4(ch: ClientHello, proto: str, original: bool) -> Fingerprint:
    ciphers = [f"{c:04x}" for c in ch.cipher_suites if not is_grease(c)]
    extensions = [f"{e:04x}" for e in ch.extension_types if not is_grease(e)]
    # JA4.md: "If there are no extensions in the sorted extensions list" (SNI and
    # ALPN removed), c is all zeros -- for JA4_o too, as FoxIO's python/ja4.py does
    # (socks-https-example.pcap: only SNI present gives JA4_o ..._000000000000).
    sorted_extensions = sorted(e for e in extensions if e not in ("0000", "0010"))
    if not original:
        ciphers.sort()
        extensions = sorted_extensions
    sigalgs = ",".join(f"{s:04x}" for s in ch.signature_algorithms if not is_grease(s))
    b_raw = ",".join(ciphers)
    ext_raw = ",".join(extensions)
    c_raw = ext_raw + ("_" + sigalgs if sigalgs else "")
    a = _ja4_a(ch, proto)
    c_hash = _sha12(c_raw) if sorted_extensions else JA4_EMPTY_HASH
    return Fingerprint(f"{a}_{b_raw}_{c_raw}", f"{a}_{_sha12(b_raw)}_{c_hash}")


def ja4(ch: ClientHello, proto: str = "t") -> Fingerprint:
    """JA4 (``hash``) and JA4_r (``raw``): sorted ciphers; sorted extensions without SNI/ALPN.

    ``proto`` is ``t`` (TLS over TCP), ``q`` (QUIC) or ``d`` (DTLS).
    """
    return _ja4(ch, proto, original=False)


def ja4_o(ch: ClientHello, proto: str = "t") -> Fingerprint:
    """JA4_o (``hash``) and JA4_ro (``raw``): ciphers and extensions in wire order, SNI/ALPN kept."""
    return _ja4(ch, proto, original=True)
