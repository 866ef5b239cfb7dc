"""TLS ClientHello/ServerHello parsing and the JA3, JA3N, JA3S and JA4 fingerprints.

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
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

__all__ = [
    "ANOMALY_CODES",
    "ClientFingerprints",
    "ClientHello",
    "Fingerprint",
    "HelloRead",
    "ServerHello",
    "client_fingerprints",
    "is_grease",
    "ja3",
    "ja3n",
    "ja3s",
    "ja4",
    "ja4_o",
    "parse_client_hello",
    "parse_server_hello",
    "read_hello",
    "server_fingerprint",
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


#: The 16 GREASE values as a set: ``v in _GREASE`` is ``is_grease(v)`` for every int.
_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))
_TRUNCATED = "tls_truncated"
_BAD_EXTENSION = "tls_bad_extension"
_new = object.__new__
_pack = struct.pack
_unpack_from = struct.unpack_from
_unpack_type_length = struct.Struct(">HH").unpack_from


def _u16s(data: bytes, start: int, stop: int) -> tuple[int, ...]:
    """The big-endian u16 values in ``data[start:stop]``; a trailing odd byte is ignored."""
    count = (stop - start) >> 1
    if count <= 0:
        return ()
    unpack = _U16_UNPACK.get(count)
    if unpack is None:
        # struct's own cache of compiled formats holds 100 entries: hellos with many
        # different list lengths would compile a format per call
        unpack = _U16_UNPACK[count] = struct.Struct(f">{count}H").unpack_from
    return unpack(data, start)


#: compiled ``>{n}H`` unpackers by n (at most 32,768: a u16 length field's worth of u16s)
_U16_UNPACK: dict[int, Any] = {}


def _u16_list(data: bytes) -> tuple[int, ...]:
    return _u16s(data, 0, len(data))


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

    @cached_property
    def extension_types(self) -> tuple[int, ...]:
        """Extension type codes in wire order (the parser fills this in as it reads them)."""
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

    @cached_property
    def extension_types(self) -> tuple[int, ...]:
        """Extension type codes in wire order (the parser fills this in as it reads them)."""
        return tuple(e.type for e in self.extensions)


# The parsers below run once per hello, so they work on integer offsets into one
# bytes object: no cursor object, no per-field method calls, no exceptions on the
# normal path.  Results are built with object.__new__ and a filled-in instance
# __dict__, which is what the generated dataclass __init__ would leave behind
# (none of these classes has a __post_init__ or slots), at a fraction of its cost.


def _read_extensions(
    d: bytes, p: int, end: int, anomalies: list[str],
) -> tuple[list[Extension], list[int], dict[int, bytes]]:
    """Extensions block (RFC 8446 §4.2) in ``d[p:end]``; keeps complete ones if it is cut short.

    Returns the extensions, their types and the data of the first extension of each type.
    """
    extensions: list[Extension] = []
    types: list[int] = []
    first: dict[int, bytes] = {}
    if p >= end:
        return extensions, types, first  # no extensions block at all (legal before TLS 1.2)
    if end - p < 2:
        anomalies.append(_TRUNCATED)  # the block length itself is cut; read its one byte
        stop = end
    else:
        stop = p + 2 + ((d[p] << 8) | d[p + 1])
        p += 2
        if stop > end:
            anomalies.append(_TRUNCATED)
            stop = end
        elif stop < end:
            anomalies.append("tls_trailing_bytes")
    unpack = _unpack_type_length
    append_extension = extensions.append
    append_type = types.append
    while p + 4 <= stop:
        etype, length = unpack(d, p)
        nxt = p + 4 + length
        if nxt > stop:
            break  # p stays before the stop: flagged below
        extension = _new(Extension)
        attrs = extension.__dict__
        attrs["type"] = etype
        attrs["data"] = body = d[p + 4:nxt]
        append_extension(extension)
        append_type(etype)
        if etype not in first:
            first[etype] = body
        p = nxt
    if len(first) != len(types):
        anomalies.append("tls_duplicate_extension")
    if p != stop and _TRUNCATED not in anomalies:  # a header or a body cut short
        anomalies.append(_TRUNCATED)
    return extensions, types, first


def _span(data: bytes, width: int, anomalies: list[str]) -> tuple[int, int]:
    """Where the list inside an extension lies in ``data``, after its u8 (width 1) or u16 length.

    A length that disagrees with the extension's own is flagged; one running past
    the end gives everything after the length field.
    """
    n = len(data)
    if n < width:
        anomalies.append(_BAD_EXTENSION)
        return n, n
    stop = width + (data[0] if width == 1 else (data[0] << 8) | data[1])
    if stop != n:
        anomalies.append(_BAD_EXTENSION)
        if stop > n:
            return width, n
    return width, stop


def _inner(data: bytes | None, read: str, anomalies: list[str]) -> bytes:
    """The list inside an extension, prefixed by a u8 or u16 length."""
    if data is None:
        return b""
    start, stop = _span(data, 1 if read == "u8" else 2, anomalies)
    return data[start:stop]


def _u16_vector(data: bytes | None, width: int, anomalies: list[str]) -> tuple[int, ...]:
    """The u16 list inside an extension (none when the extension is absent); see :func:`_span`."""
    if data is None:
        return ()
    n = len(data)
    if n < width:
        anomalies.append(_BAD_EXTENSION)
        return ()
    stop = width + (data[0] if width == 1 else (data[0] << 8) | data[1])
    if stop != n:
        anomalies.append(_BAD_EXTENSION)
        if stop > n:
            stop = n
    count = (stop - width) >> 1
    return _unpack_from(f">{count}H", data, width) if count > 0 else ()


def _sni(data: bytes | None, anomalies: list[str]) -> str | None:
    """First host_name of server_name (RFC 6066 §3); None if absent or unreadable."""
    if data is None:
        return None
    p, stop = _span(data, 2, anomalies)
    while p < stop:
        if p + 3 > stop:
            break
        nxt = p + 3 + ((data[p + 1] << 8) | data[p + 2])
        if nxt > stop:
            break
        if data[p] == 0:
            return data[p + 3:nxt].decode("ascii", "replace")
        p = nxt
    else:
        return None
    anomalies.append(_BAD_EXTENSION)
    return None


def _alpn(data: bytes | None, anomalies: list[str]) -> tuple[bytes, ...]:
    """ProtocolNameList (RFC 7301 §3.1)."""
    if data is None:
        return ()
    p, stop = _span(data, 2, anomalies)
    out: list[bytes] = []
    while p < stop:
        nxt = p + 1 + data[p]
        if nxt > stop:
            anomalies.append(_BAD_EXTENSION)
            break
        out.append(data[p + 1:nxt])
        p = nxt
    return tuple(out)


def _dedupe(codes: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes)) if codes else ()


# The C fast path (``netsift._tls``, see _tls.c): ``parse_hello_body(d, p, end, kind,
# Extension)`` walks a hello body exactly as _client_hello (kind 1) / _server_hello
# (kind 2) below and returns the fields they compute as a plain tuple (the extensions
# as Extension instances made as _read_extensions makes them), or None whenever those
# functions would note any anomaly -- then they run in full.  The Python code stays
# the specification; tests/test_tls_c.py holds the two together.
_parse_hello_body: Callable[[bytes, int, int, int, type], tuple[Any, ...] | None] | None
try:
    from ._tls import parse_hello_body as _imported_parse_hello_body

    _parse_hello_body = _imported_parse_hello_body
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _parse_hello_body = None


def _client_from_fields(fields: tuple[Any, ...], record_version: int | None) -> ClientHello:
    """The ClientHello of a clean body from the C fast path's tuple (no anomalies)."""
    version, ciphers, types, extensions, sni, alpn, versions, groups, formats, sigalgs = fields
    hello = _new(ClientHello)
    object.__setattr__(hello, "__dict__", {
        "legacy_version": version,
        "record_version": record_version,
        "cipher_suites": ciphers,
        "extensions": extensions,
        "sni": sni,
        "alpn": alpn,
        "supported_versions": versions,
        "supported_groups": groups,
        "ec_point_formats": formats,
        "signature_algorithms": sigalgs,
        "anomalies": (),
        "extension_types": types,
    })
    return hello


def _server_from_fields(fields: tuple[Any, ...], record_version: int | None) -> ServerHello:
    """The ServerHello of a clean body from the C fast path's tuple (no anomalies)."""
    version, cipher, types, extensions, chosen, alpn = fields
    hello = _new(ServerHello)
    object.__setattr__(hello, "__dict__", {
        "legacy_version": version,
        "record_version": record_version,
        "cipher_suite": cipher,
        "extensions": extensions,
        "supported_version": chosen,
        "alpn": alpn,
        "anomalies": (),
        "extension_types": types,
    })
    return hello


def _client_hello(d: bytes, p: int, end: int, record_version: int | None) -> ClientHello | None:
    """A ClientHello body in ``d[p:end]`` (see :func:`parse_client_hello`)."""
    if _parse_hello_body is not None:
        fields = _parse_hello_body(d, p, end, HANDSHAKE_CLIENT_HELLO, Extension)
        if fields is not None:
            return _client_from_fields(fields, record_version)
    anomalies: list[str] = []
    if end - p > MAX_HELLO_BYTES:
        anomalies.append("tls_hello_too_long")
        end = p + MAX_HELLO_BYTES
    if end - p < 2:
        return None
    version = (d[p] << 8) | d[p + 1]
    ciphers: tuple[int, ...] = ()
    extensions: list[Extension] = []
    types: list[int] = []
    first: dict[int, bytes] = {}
    complete = False
    p += 34  # legacy_version, random
    if p < end:
        p += 1 + d[p]  # legacy_session_id
        if p + 2 <= end:
            claimed = (d[p] << 8) | d[p + 1]
            p += 2
            stop = p + claimed if p + claimed <= end else end
            ciphers = _u16s(d, p, stop)
            if stop - p == claimed and not claimed & 1:
                p = stop
                if p < end:
                    p += 1 + d[p]  # legacy_compression_methods
                    if p <= end:
                        extensions, types, first = _read_extensions(d, p, end, anomalies)
                        complete = True
    if not complete:
        anomalies.append(_TRUNCATED)
    sni = _sni(first.get(EXT_SERVER_NAME), anomalies)
    alpn = _alpn(first.get(EXT_ALPN), anomalies)
    versions = _u16_vector(first.get(EXT_SUPPORTED_VERSIONS), 1, anomalies)
    groups = _u16_vector(first.get(EXT_SUPPORTED_GROUPS), 2, anomalies)
    formats_data = first.get(EXT_EC_POINT_FORMATS)
    if formats_data is None:
        formats: tuple[int, ...] = ()
    else:
        start, stop = _span(formats_data, 1, anomalies)
        formats = tuple(formats_data[start:stop])
    sigalgs = _u16_vector(first.get(EXT_SIGNATURE_ALGORITHMS), 2, anomalies)
    hello = _new(ClientHello)
    object.__setattr__(hello, "__dict__", {
        "legacy_version": version,
        "record_version": record_version,
        "cipher_suites": ciphers,
        "extensions": tuple(extensions),
        "sni": sni,
        "alpn": alpn,
        "supported_versions": versions,
        "supported_groups": groups,
        "ec_point_formats": formats,
        "signature_algorithms": sigalgs,
        "anomalies": _dedupe(anomalies),
        "extension_types": tuple(types),
    })
    return hello


def _server_hello(d: bytes, p: int, end: int, record_version: int | None) -> ServerHello | None:
    """A ServerHello body in ``d[p:end]`` (see :func:`parse_server_hello`)."""
    if _parse_hello_body is not None:
        fields = _parse_hello_body(d, p, end, HANDSHAKE_SERVER_HELLO, Extension)
        if fields is not None:
            return _server_from_fields(fields, record_version)
    anomalies: list[str] = []
    if end - p > MAX_HELLO_BYTES:
        anomalies.append("tls_hello_too_long")
        end = p + MAX_HELLO_BYTES
    if end - p < 2:
        return None
    version = (d[p] << 8) | d[p + 1]
    cipher: int | None = None
    extensions: list[Extension] = []
    types: list[int] = []
    first: dict[int, bytes] = {}
    complete = False
    p += 34  # legacy_version, random
    if p <= end:
        draft = TLS13_DRAFT_FIRST <= version < TLS13_DRAFT_SESSION_ID
        if not draft:
            p = p + 1 + d[p] if p < end else end + 1  # legacy_session_id_echo
        if p + 2 <= end:
            cipher = (d[p] << 8) | d[p + 1]
            p += 2
            if not draft:
                p += 1  # legacy_compression_method
            if p <= end:
                extensions, types, first = _read_extensions(d, p, end, anomalies)
                complete = True
    if not complete:
        anomalies.append(_TRUNCATED)
    sv = first.get(EXT_SUPPORTED_VERSIONS)
    chosen: int | None = None
    if sv is not None:
        if len(sv) == 2:
            chosen = (sv[0] << 8) | sv[1]
        else:
            anomalies.append(_BAD_EXTENSION)
    alpn = _alpn(first.get(EXT_ALPN), anomalies)
    hello = _new(ServerHello)
    object.__setattr__(hello, "__dict__", {
        "legacy_version": version,
        "record_version": record_version,
        "cipher_suite": cipher,
        "extensions": tuple(extensions),
        "supported_version": chosen,
        "alpn": alpn,
        "anomalies": _dedupe(anomalies),
        "extension_types": tuple(types),
    })
    return hello


def parse_client_hello(data: bytes, record_version: int | None = None) -> ClientHello | None:
    """Parse a ClientHello handshake message body (after the 4-byte handshake header).

    Returns None only when not even ``legacy_version`` is present; otherwise a
    :class:`ClientHello` with every field that could be read and the anomaly
    codes met on the way.
    """
    if type(data) is not bytes:
        data = bytes(data)
    return _client_hello(data, 0, len(data), record_version)


def parse_server_hello(data: bytes, record_version: int | None = None) -> ServerHello | None:
    """Parse a ServerHello handshake message body (after the 4-byte handshake header)."""
    if type(data) is not bytes:
        data = bytes(data)
    return _server_hello(data, 0, len(data), record_version)


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


def _hello_read(hello: ClientHello | ServerHello | None, complete: bool, consumed: int,
                anomalies: tuple[str, ...]) -> HelloRead:
    read = _new(HelloRead)
    object.__setattr__(read, "__dict__", {
        "hello": hello, "complete": complete, "consumed": consumed, "anomalies": anomalies})
    return read


def _parse_message(d: bytes, start: int, end: int, record_version: int | None,
                   anomalies: list[str]) -> ClientHello | ServerHello | None:
    """The hello whose 4-byte handshake header is at ``d[start]`` and whose body ends at ``end``."""
    if d[start] == HANDSHAKE_CLIENT_HELLO:
        return _client_hello(d, start + HANDSHAKE_HEADER_BYTES, end, record_version)
    if d[start] == HANDSHAKE_SERVER_HELLO:
        return _server_hello(d, start + HANDSHAKE_HEADER_BYTES, end, record_version)
    anomalies.append("tls_unexpected_message")
    return None


def read_hello(data: bytes) -> HelloRead:
    """Read a ClientHello or ServerHello from TLS record-layer bytes (RFC 8446 §5.1).

    Handshake fragments of consecutive records are concatenated until the
    first handshake message is complete.  Leading change_cipher_spec records
    (TLS 1.3 middlebox compatibility, RFC 8446 §D.4, sent before a second
    ClientHello) are skipped.
    """
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    anomalies: list[str] = []
    hello: ClientHello | ServerHello | None
    # The usual case: one handshake record holding the whole hello, parsed in place.
    if n >= RECORD_HEADER_BYTES + HANDSHAKE_HEADER_BYTES and data[0] == CONTENT_HANDSHAKE \
            and data[1] in (3, 0xFE):
        length = (data[3] << 8) | data[4]
        end = 9 + ((data[6] << 16) | (data[7] << 8) | data[8])
        if end <= RECORD_HEADER_BYTES + length and end <= n:
            if length > MAX_RECORD_BYTES:
                anomalies.append("tls_record_too_long")
            kind = data[5]
            if kind == HANDSHAKE_CLIENT_HELLO:
                hello = _client_hello(data, 9, end, (data[1] << 8) | data[2])
            elif kind == HANDSHAKE_SERVER_HELLO:
                hello = _server_hello(data, 9, end, (data[1] << 8) | data[2])
            else:
                anomalies.append("tls_unexpected_message")
                hello = None
            if hello is not None and hello.anomalies:
                anomalies.extend(hello.anomalies)
            read = _new(HelloRead)
            object.__setattr__(read, "__dict__", {
                "hello": hello,
                "complete": True,
                "consumed": min(RECORD_HEADER_BYTES + length, n),
                "anomalies": tuple(dict.fromkeys(anomalies)) if anomalies else (),
            })
            return read
    # Anything else: a hello spread over records, cut short, or not a hello at all.
    fragments: list[bytes] = []
    have = 0
    need: int | None = None
    record_version: int | None = None
    pos = 0
    while need is None or have < need:
        if n - pos < RECORD_HEADER_BYTES:
            break
        ctype = data[pos]
        length = (data[pos + 3] << 8) | data[pos + 4]
        if ctype == CONTENT_CHANGE_CIPHER_SPEC and not fragments and data[pos + 1] == 3:
            pos = min(pos + RECORD_HEADER_BYTES + length, n)  # a record cut short ends at the input
            continue
        if ctype != CONTENT_HANDSHAKE or data[pos + 1] not in (3, 0xFE):
            anomalies.append("tls_record_interleaved" if fragments else "tls_not_handshake")
            break
        if length > MAX_RECORD_BYTES:
            anomalies.append("tls_record_too_long")
        if record_version is None:
            record_version = (data[pos + 1] << 8) | data[pos + 2]
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
        anomalies.append(_TRUNCATED)
    if not message:
        return _hello_read(None, False, pos, _dedupe(anomalies))
    # the message never runs past ``need``: every fragment was cut to it
    hello = _parse_message(message, 0, len(message), record_version, anomalies)
    if hello is not None:
        anomalies.extend(a for a in hello.anomalies if complete or a != _TRUNCATED)
    return _hello_read(hello, complete, pos, _dedupe(anomalies))


# --------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class Fingerprint:
    """A fingerprint's raw pre-hash string and its hash."""

    raw: str
    hash: str


def _fingerprint(raw: str, hashed: str) -> Fingerprint:
    fp = _new(Fingerprint)
    attrs = fp.__dict__
    attrs["raw"] = raw
    attrs["hash"] = hashed
    return fp


def _md5(text: str) -> Fingerprint:
    return _fingerprint(text, hashlib.md5(text.encode("ascii"), usedforsecurity=False).hexdigest())


def _dec(values: tuple[int, ...] | list[int]) -> str:
    return "-".join([str(v) for v in values if v not in _GREASE])


def _hex(values: list[int]) -> str:
    """``f"{v:04x}"`` of each value, comma-separated."""
    try:
        return _pack(f">{len(values)}H", *values).hex(",", 2)
    except struct.error:  # outside 0..0xffff: only in a hand-built hello
        return ",".join(f"{v:04x}" for v in values)


def _sorted_hex(values: list[int]) -> str:
    """The values' 4-digit hex codes, sorted as strings (as ints while they fit in 16 bits)."""
    try:
        return _pack(f">{len(values)}H", *sorted(values)).hex(",", 2)
    except struct.error:
        return ",".join(sorted(f"{v:04x}" for v in values))


def _ja3_raw(version: int, ciphers: tuple[int, ...], extensions: list[int],
             groups: tuple[int, ...], formats: tuple[int, ...]) -> str:
    """The JA3 string; ``extensions`` already without GREASE (and sorted for JA3N)."""
    return f"{version},{_dec(ciphers)},{'-'.join(map(str, extensions))},{_dec(groups)},{_dec(formats)}"


def _ungreased(values: tuple[int, ...]) -> list[int]:
    return [v for v in values if v not in _GREASE]


def ja3(ch: ClientHello) -> Fingerprint:
    """JA3: ``SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats``."""
    return _md5(_ja3_raw(ch.legacy_version, ch.cipher_suites, _ungreased(ch.extension_types),
                         ch.supported_groups, ch.ec_point_formats))


def ja3n(ch: ClientHello) -> Fingerprint:
    """JA3N: JA3 with the (GREASE-free) extension codes sorted numerically."""
    return _md5(_ja3_raw(ch.legacy_version, ch.cipher_suites,
                         sorted(_ungreased(ch.extension_types)),
                         ch.supported_groups, ch.ec_point_formats))


def ja3s(sh: ServerHello) -> Fingerprint:
    """JA3S: ``SSLVersion,Cipher,Extensions`` of a ServerHello."""
    return _ja3s(sh.legacy_version, sh.cipher_suite, sh.extension_types)


def _ja3s(version: int, cipher: int | None, extension_types: tuple[int, ...]) -> Fingerprint:
    return _md5(f"{version},{'' if cipher is None else cipher},{_dec(extension_types)}")


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


def _sha12(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii")).hexdigest()[:12] if raw else JA4_EMPTY_HASH


def _ja4_pair(legacy_version: int, cipher_suites: tuple[int, ...],
              extension_types: tuple[int, ...], signature_algorithms: tuple[int, ...],
              supported_versions: tuple[int, ...], alpn: tuple[bytes, ...],
              proto: str) -> tuple[Fingerprint, Fingerprint]:
    """(JA4 with JA4_r, JA4_o with JA4_ro); ``alpn`` needs only the first value."""
    if proto not in JA4_PROTOCOLS:
        raise ValueError(f"JA4 protocol must be one of {', '.join(JA4_PROTOCOLS)}, not {proto!r}")
    ciphers = _ungreased(cipher_suites)
    extensions = _ungreased(extension_types)
    versions = _ungreased(supported_versions)
    version = JA4_VERSIONS.get(max(versions) if versions else legacy_version, "00")
    sni = "d" if EXT_SERVER_NAME in extension_types else "i"
    a = (f"{proto}{version}{sni}{min(len(ciphers), JA4_MAX_COUNT):02d}"
         f"{min(len(extensions), JA4_MAX_COUNT):02d}{_ja4_alpn(alpn)}")
    sigalgs = _hex(_ungreased(signature_algorithms))
    suffix = "_" + sigalgs if sigalgs else ""
    # JA4.md: "If there are no extensions in the sorted extensions list" (SNI and
    # ALPN removed), c is all zeros -- for JA4_o too, as FoxIO's python/ja4.py does
    # (socks-https-example.pcap: only SNI present gives JA4_o ..._000000000000).
    sorted_extensions = [e for e in extensions if e != EXT_SERVER_NAME and e != EXT_ALPN]
    b_raw, b_raw_o = _sorted_hex(ciphers), _hex(ciphers)
    c_raw, c_raw_o = _sorted_hex(sorted_extensions) + suffix, _hex(extensions) + suffix
    if sorted_extensions:
        c_hash, c_hash_o = _sha12(c_raw), _sha12(c_raw_o)
    else:
        c_hash = c_hash_o = JA4_EMPTY_HASH
    return (_fingerprint(f"{a}_{b_raw}_{c_raw}", f"{a}_{_sha12(b_raw)}_{c_hash}"),
            _fingerprint(f"{a}_{b_raw_o}_{c_raw_o}", f"{a}_{_sha12(b_raw_o)}_{c_hash_o}"))


def _ja4(ch: ClientHello, proto: str) -> tuple[Fingerprint, Fingerprint]:
    return _ja4_pair(ch.legacy_version, ch.cipher_suites, ch.extension_types,
                     ch.signature_algorithms, ch.supported_versions, ch.alpn[:1], proto)


def ja4(ch: ClientHello, proto: str = "t") -> Fingerprint:
    """JA4 (``hash``) and JA4_r (``raw``): sorted ciphers; sorted extensions without SNI/ALPN.

    ``proto`` is ``t`` (TLS over TCP), ``q`` (QUIC) or ``d`` (DTLS).
    """
    return _ja4(ch, proto)[0]


def ja4_o(ch: ClientHello, proto: str = "t") -> Fingerprint:
    """JA4_o (``hash``) and JA4_ro (``raw``): ciphers and extensions in wire order, SNI/ALPN kept."""
    return _ja4(ch, proto)[1]


# --------------------------------------------------------------------------- cached fingerprints

#: Entries kept by each of the :func:`client_fingerprints` and :func:`server_fingerprint`
#: caches (least recently used dropped first).  A capture has far fewer distinct
#: client stacks than hellos, so nearly every lookup is a hit.
FINGERPRINT_CACHE_SIZE = 4096


class ClientFingerprints(NamedTuple):
    """The client fingerprints of one ClientHello (see :func:`client_fingerprints`).

    Each is the :class:`Fingerprint` the function of the same name returns:
    ``ja4.hash`` is JA4 and ``ja4.raw`` JA4_r, ``ja4_o.hash`` is JA4_o and
    ``ja4_o.raw`` JA4_ro (also as :attr:`ja4_r` and :attr:`ja4_ro`).
    """

    ja3: Fingerprint
    ja3n: Fingerprint
    ja4: Fingerprint
    ja4_o: Fingerprint

    @property
    def ja4_r(self) -> str:
        return self.ja4.raw

    @property
    def ja4_ro(self) -> str:
        return self.ja4_o.raw


def _client_fingerprints(legacy_version: int, cipher_suites: tuple[int, ...],
                         extension_types: tuple[int, ...], supported_groups: tuple[int, ...],
                         ec_point_formats: tuple[int, ...], signature_algorithms: tuple[int, ...],
                         supported_versions: tuple[int, ...], alpn: tuple[bytes, ...],
                         proto: str) -> ClientFingerprints:
    """Every input of JA3, JA3N, JA4 and JA4_o, and nothing else: the cache key."""
    extensions = _ungreased(extension_types)
    fp, fp_o = _ja4_pair(legacy_version, cipher_suites, extension_types, signature_algorithms,
                         supported_versions, alpn, proto)
    head = f"{legacy_version},{_dec(cipher_suites)},"
    tail = f",{_dec(supported_groups)},{_dec(ec_point_formats)}"
    return ClientFingerprints(
        _md5(head + "-".join(map(str, extensions)) + tail),
        _md5(head + "-".join(map(str, sorted(extensions))) + tail),
        fp,
        fp_o,
    )


_client_fingerprints_cached = lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)(_client_fingerprints)
_ja3s_cached = lru_cache(maxsize=FINGERPRINT_CACHE_SIZE)(_ja3s)


def client_fingerprints(ch: ClientHello, proto: str = "t") -> ClientFingerprints:
    """JA3, JA3N, JA4 and JA4_o of a ClientHello, from a bounded LRU cache.

    The same values as :func:`ja3`, :func:`ja3n`, :func:`ja4` and :func:`ja4_o`.
    The cache is keyed on exactly what they read: legacy and supported versions,
    cipher suites, extension types in wire order (which also give SNI presence),
    supported groups, point formats, signature algorithms, the first ALPN value
    and ``proto`` -- not on the random, session id, key shares or SNI text, so
    hellos from one client stack share an entry.
    """
    key = (ch.legacy_version, ch.cipher_suites, ch.extension_types, ch.supported_groups,
           ch.ec_point_formats, ch.signature_algorithms, ch.supported_versions, ch.alpn[:1],
           proto)
    try:
        return _client_fingerprints_cached(*key)
    except TypeError:  # a hand-built hello holding lists: unhashable, compute uncached
        return _client_fingerprints(*key)


def server_fingerprint(sh: ServerHello) -> Fingerprint:
    """JA3S of a ServerHello (the same as :func:`ja3s`), from a bounded LRU cache.

    Keyed on the legacy version, the cipher suite and the extension types in wire order.
    """
    try:
        return _ja3s_cached(sh.legacy_version, sh.cipher_suite, sh.extension_types)
    except TypeError:
        return _ja3s(sh.legacy_version, sh.cipher_suite, sh.extension_types)
