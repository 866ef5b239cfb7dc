"""Community ID v1: the cross-tool flow identifier Zeek, Suricata and Arkime log.

Implements the Corelight "Community ID Flow Hashing" spec, version 1
(https://github.com/corelight/community-id-spec, README "Pseudo code" and
"Technical details"; reference implementation ``pycommunityid``,
``communityid/algo.py``, ``icmp.py`` and ``icmp6.py``).  The hashed input is,
in network byte order and 32-bit aligned::

    seed (2) . saddr (4|16) . daddr (4|16) . proto (1) . 0 (1) . sport (2) . dport (2)

and the identifier is ``"1:" + base64(sha1(input))``.  The rules, each as the
spec states it:

- Endpoint order: the numerically smaller ``(address, port)`` endpoint comes
  first; addresses are compared first, ports only when the addresses are equal.
- Ports are hashed only for TCP, UDP, SCTP, ICMP and ICMPv6
  (:data:`PORT_PROTOCOLS`).  Every other IP protocol hashes addresses and
  protocol alone (12 or 36 bytes): no zero ports are appended.
- ICMP/ICMPv6 use Zeek's mapping of type and code to ports: a type with a
  counterpart (echo request/reply, ...) becomes ``(type, counterpart type)``
  and is ordered like a port pair; any other type is one-way,
  ``(type, code)``, and is never reordered.  Callers pass the ICMP type as
  ``sport`` and the code as ``dport``.
- The seed is a 16-bit value (default 0), hashed first.

Addresses keep the family they are given in: an ``IPv6Address`` such as
``::ffff:1.2.3.4`` hashes as 16 bytes.  The column helpers follow netsift's
storage convention instead (:mod:`netsift.columns`): an IPv4-mapped (hi, lo)
pair *is* IPv4 and hashes as 4 bytes, as Suricata and Zeek hash the IPv4
packet it was decoded from.

:func:`community_id_input` returns the exact bytes hashed (the raw pre-hash
string, for tests and troubleshooting); :func:`community_id` the identifier.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "ICMP4_COUNTERPART",
    "ICMP6_COUNTERPART",
    "PORT_PROTOCOLS",
    "community_id",
    "community_id_from_halves",
    "community_id_input",
    "community_ids",
    "icmp_port_equivalents",
]

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132

#: Protocols whose Community ID includes the (port-like) 16-bit pair (spec, "Technical details").
PORT_PROTOCOLS: frozenset[int] = frozenset(
    {IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, IPPROTO_SCTP}
)

#: ICMPv4 two-way types and their counterparts (pycommunityid icmp.py; Zeek ICMP4_counterpart).
ICMP4_COUNTERPART: dict[int, int] = {
    8: 0,  # echo request -> echo reply (RFC 792)
    0: 8,
    13: 14,  # timestamp -> timestamp reply (RFC 792)
    14: 13,
    15: 16,  # information request -> information reply (RFC 792)
    16: 15,
    10: 9,  # router solicitation -> router advertisement (RFC 1256)
    9: 10,
    17: 18,  # address mask request -> address mask reply (RFC 950)
    18: 17,
}

#: ICMPv6 two-way types and their counterparts (pycommunityid icmp6.py; Zeek ICMP6_counterpart).
ICMP6_COUNTERPART: dict[int, int] = {
    128: 129,  # echo request -> echo reply (RFC 4443)
    129: 128,
    130: 131,  # MLD listener query -> MLD listener report (RFC 2710)
    131: 130,
    133: 134,  # router solicitation -> router advertisement (RFC 4861)
    134: 133,
    135: 136,  # neighbour solicitation -> neighbour advertisement (RFC 4861)
    136: 135,
    139: 140,  # node information query -> reply (RFC 4620; "who are you" in Zeek)
    140: 139,
    144: 145,  # home agent address discovery request -> reply (RFC 6275)
    145: 144,
}

_COUNTERPART: dict[int, dict[int, int]] = {
    IPPROTO_ICMP: ICMP4_COUNTERPART,
    IPPROTO_ICMPV6: ICMP6_COUNTERPART,
}

Address = str | ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_MAPPED_HI = 0
_V4_MAPPED_LO_PREFIX = 0xFFFF  # lo >> 32 of ::ffff:a.b.c.d


def icmp_port_equivalents(proto: int, icmp_type: int, icmp_code: int) -> tuple[int, int, bool]:
    """Zeek's ICMP/ICMPv6 "ports": ``(sport, dport, is_one_way)`` for a type and code.

    A type with a counterpart maps to ``(type, counterpart)`` and may be
    reordered; any other type is one-way and maps to ``(type, code)``.
    """
    counterpart = _COUNTERPART[proto].get(icmp_type)
    if counterpart is None:
        return icmp_type, icmp_code, True
    return icmp_type, counterpart, False


def _packed(address: Address) -> bytes:
    if isinstance(address, str):
        try:
            return ipaddress.ip_address(address).packed
        except ValueError:
            raise ValueError(f"{address!r} is not an IPv4 or IPv6 address") from None
    return address.packed


def _check_u16(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{what} must be between 0 and 65535, got {value}")


def _ordered_input(
    proto: int, src: bytes, dst: bytes, sport: int | None, dport: int | None, seed: int
) -> bytes:
    """The hashed bytes for packed addresses (the spec's tuple, ordered and packed)."""
    _check_u16(seed, "the Community ID seed")
    if not 0 <= proto <= 0xFF:
        raise ValueError(f"the IP protocol number must be between 0 and 255, got {proto}")
    if len(src) != len(dst):
        raise ValueError("source and destination addresses must be of the same IP version")
    head = seed.to_bytes(2, "big")
    if proto not in PORT_PROTOCOLS:
        if dst < src:
            src, dst = dst, src
        return head + src + dst + bytes((proto, 0))
    if sport is None or dport is None:
        raise ValueError(f"IP protocol {proto} needs both ports (ICMP: type and code)")
    _check_u16(sport, "the source port")
    _check_u16(dport, "the destination port")
    one_way = False
    if proto in _COUNTERPART:
        if sport > 0xFF or dport > 0xFF:
            raise ValueError("ICMP type and code must be between 0 and 255")
        sport, dport, one_way = icmp_port_equivalents(proto, sport, dport)
    if not one_way and (dst < src or (dst == src and dport < sport)):
        src, dst, sport, dport = dst, src, dport, sport
    return (
        head + src + dst + bytes((proto, 0)) + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    )


def _render(data: bytes) -> str:
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def community_id_input(
    proto: int,
    src_ip: Address,
    dst_ip: Address,
    sport: int | None,
    dport: int | None,
    seed: int = 0,
) -> bytes:
    """The exact bytes Community ID v1 hashes for this tuple (see module doc)."""
    return _ordered_input(proto, _packed(src_ip), _packed(dst_ip), sport, dport, seed)


def community_id(
    proto: int,
    src_ip: Address,
    dst_ip: Address,
    sport: int | None,
    dport: int | None,
    seed: int = 0,
) -> str:
    """Community ID v1 of one flow tuple, ``"1:<base64 sha1>"``.

    For ICMP and ICMPv6 pass the type as ``sport`` and the code as ``dport``.
    Ports of protocols outside :data:`PORT_PROTOCOLS` are ignored (may be None).
    Raises ``ValueError`` for an unparsable address, mixed IP versions, a
    missing port of a port protocol, or an out-of-range seed, port or protocol.
    """
    return _render(community_id_input(proto, src_ip, dst_ip, sport, dport, seed))


def _halves_packed(hi: int, lo: int) -> bytes:
    if hi == _V4_MAPPED_HI and lo >> 32 == _V4_MAPPED_LO_PREFIX:
        return (lo & 0xFFFF_FFFF).to_bytes(4, "big")
    return hi.to_bytes(8, "big") + lo.to_bytes(8, "big")


def community_id_from_halves(
    proto: int,
    src_hi: int,
    src_lo: int,
    dst_hi: int,
    dst_lo: int,
    sport: int | None,
    dport: int | None,
    seed: int = 0,
) -> str:
    """:func:`community_id` for addresses stored as netsift columns (IPv4-mapped = IPv4)."""
    src = _halves_packed(int(src_hi), int(src_lo))
    dst = _halves_packed(int(dst_hi), int(dst_lo))
    return _render(_ordered_input(proto, src, dst, sport, dport, seed))


U64 = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.integer] | Sequence[int]


def _counterpart_table(table: dict[int, int]) -> npt.NDArray[np.int32]:
    out = np.full(256, -1, dtype=np.int32)
    for k, v in table.items():
        out[k] = v
    return out


_ICMP4_TABLE = _counterpart_table(ICMP4_COUNTERPART)
_ICMP6_TABLE = _counterpart_table(ICMP6_COUNTERPART)


def community_ids(
    proto: IntArray,
    src_hi: IntArray,
    src_lo: IntArray,
    dst_hi: IntArray,
    dst_lo: IntArray,
    sport: IntArray,
    dport: IntArray,
    seed: int = 0,
) -> list[str]:
    """Community IDs of many tuples given as netsift column arrays, one per row.

    Ordering, ICMP mapping and packing are done on whole arrays; only the
    SHA-1 runs per row.  For ICMP/ICMPv6 rows, ``sport``/``dport`` hold the
    type and code (the ``icmp_type``/``icmp_code`` columns).  Rows mixing an
    IPv4-mapped and a native IPv6 address raise ``ValueError``.
    """
    _check_u16(seed, "the Community ID seed")
    p = np.asarray(proto, dtype=np.int64)
    shi = np.asarray(src_hi, dtype=np.uint64)
    slo = np.asarray(src_lo, dtype=np.uint64)
    dhi = np.asarray(dst_hi, dtype=np.uint64)
    dlo = np.asarray(dst_lo, dtype=np.uint64)
    sp = np.asarray(sport, dtype=np.int64).copy()
    dp = np.asarray(dport, dtype=np.int64).copy()
    n = p.shape[0]
    if not all(a.shape == (n,) for a in (shi, slo, dhi, dlo, sp, dp)):
        raise ValueError("community_ids needs one-dimensional arrays of equal length")
    if n == 0:
        return []
    if ((p < 0) | (p > 0xFF)).any() or ((sp < 0) | (sp > 0xFFFF) | (dp < 0) | (dp > 0xFFFF)).any():
        raise ValueError("protocol numbers must fit 8 bits and ports 16 bits")

    prefix = np.uint64(_V4_MAPPED_LO_PREFIX)
    src_v4 = (shi == 0) & ((slo >> np.uint64(32)) == prefix)
    dst_v4 = (dhi == 0) & ((dlo >> np.uint64(32)) == prefix)
    if (src_v4 != dst_v4).any():
        raise ValueError("source and destination addresses must be of the same IP version")

    # ICMP "ports" (Zeek's mapping) and which rows may be reordered.
    one_way = np.zeros(n, dtype=bool)
    for number, table in ((IPPROTO_ICMP, _ICMP4_TABLE), (IPPROTO_ICMPV6, _ICMP6_TABLE)):
        rows = p == number
        if rows.any():
            if ((sp[rows] > 0xFF) | (dp[rows] > 0xFF)).any():
                raise ValueError("ICMP type and code must be between 0 and 255")
            counter = table[sp[rows]]
            two_way = counter >= 0
            dp[rows] = np.where(two_way, counter, dp[rows])
            one_way[rows] = ~two_way
    has_ports = np.isin(p, list(PORT_PROTOCOLS))
    sp = np.where(has_ports, sp, 0)
    dp = np.where(has_ports, dp, 0)

    # Same-family addresses compare as 128-bit numbers, which for two
    # IPv4-mapped values is the IPv4 order too.
    src_less = (shi < dhi) | ((shi == dhi) & (slo < dlo))
    same = (shi == dhi) & (slo == dlo)
    ordered = one_way | src_less | (same & (sp <= dp))
    a_hi, a_lo = np.where(ordered, shi, dhi), np.where(ordered, slo, dlo)
    b_hi, b_lo = np.where(ordered, dhi, shi), np.where(ordered, dlo, slo)
    a_port, b_port = np.where(ordered, sp, dp), np.where(ordered, dp, sp)

    # One 40-byte record per row laid out for IPv6; IPv4 rows are repacked below.
    buf = np.zeros((n, 40), dtype=np.uint8)
    buf[:, 0:2] = np.frombuffer(seed.to_bytes(2, "big"), dtype=np.uint8)
    for col, arr in ((2, a_hi), (10, a_lo), (18, b_hi), (26, b_lo)):
        buf[:, col : col + 8] = arr.astype(">u8").view(np.uint8).reshape(n, 8)
    buf[:, 34] = p.astype(np.uint8)
    buf[:, 36:38] = a_port.astype(">u2").view(np.uint8).reshape(n, 2)
    buf[:, 38:40] = b_port.astype(">u2").view(np.uint8).reshape(n, 2)
    v4 = np.zeros((n, 16), dtype=np.uint8)
    v4[:, 0:2] = buf[:, 0:2]
    v4[:, 2:6] = buf[:, 14:18]  # low 32 bits of the first address
    v4[:, 6:10] = buf[:, 30:34]
    v4[:, 10:16] = buf[:, 34:40]

    out: list[str] = []
    for i in range(n):
        row = v4[i] if src_v4[i] else buf[i]
        data = row.tobytes() if has_ports[i] else row[:-4].tobytes()
        out.append(_render(data))
    return out
