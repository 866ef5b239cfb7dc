"""Byte-exact pcap / pcapng writers for reader tests, plus a slow reference pcapng walker.

Everything is built with :mod:`struct` so a test controls every field: magic,
byte order, record-header flavour, block lengths, options, padding.  Nothing
here validates its input: tests use it to write damaged files on purpose.

The reference walker (:func:`walk_pcapng`) is a deliberately naive,
block-at-a-time reading of draft-ietf-opsawg-pcapng, written separately from
``netsift.capture`` so the two can be checked against each other on the
conformance corpus.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field

# -- classic pcap --------------------------------------------------------------

#: magic as the *writer* stores it in its own byte order (pcap spec §4)
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov patched libpcap, 24-byte records


def pcap_header(
    *,
    magic: int = PCAP_MAGIC_US,
    endian: str = "<",
    snaplen: int = 65535,
    linktype: int = 1,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    return struct.pack(endian + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)


def pcap_record(
    data: bytes,
    *,
    ts_sec: int = 0,
    ts_frac: int = 0,
    wirelen: int | None = None,
    caplen: int | None = None,
    endian: str = "<",
    modified: bool = False,
) -> bytes:
    """One record; ``caplen`` overrides the stored captured length (for damage)."""
    cap = len(data) if caplen is None else caplen
    orig = len(data) if wirelen is None else wirelen
    hdr = struct.pack(endian + "IIII", ts_sec, ts_frac, cap, orig)
    if modified:
        # ifindex, protocol, pkt_type, pad
        hdr += struct.pack(endian + "IHBB", 3, 0x0800, 0, 0)
    return hdr + data


# -- pcapng --------------------------------------------------------------------

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002
BT_SPB = 0x00000003
BT_NRB = 0x00000004
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BT_DSB = 0x0000000A
BT_CB = 0x00000BAD  # custom block, may be copied
BT_DCB = 0x40000BAD  # custom block, do not copy

BLOCK_NAMES = {
    BT_SHB: "SHB",
    BT_IDB: "IDB",
    BT_PB: "PB",
    BT_SPB: "SPB",
    BT_NRB: "NRB",
    BT_ISB: "ISB",
    BT_EPB: "EPB",
    BT_DSB: "DSB",
    BT_CB: "CB",
    BT_DCB: "DCB",
}


def pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + pad4(value)


def options(pairs: list[tuple[int, bytes]], endian: str = "<") -> bytes:
    if not pairs:
        return b""
    return b"".join(option(c, v, endian) for c, v in pairs) + struct.pack(endian + "HH", 0, 0)


def block(btype: int, body: bytes, endian: str = "<", *, trailer: int | None = None) -> bytes:
    """A generic block; ``trailer`` overrides the trailing length (for damage)."""
    body = pad4(body)
    blen = 12 + len(body)
    tail = blen if trailer is None else trailer
    return struct.pack(endian + "II", btype, blen) + body + struct.pack(endian + "I", tail)


def shb(endian: str = "<", opts: list[tuple[int, bytes]] | None = None) -> bytes:
    body = struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options(opts or [], endian)
    return block(BT_SHB, body, endian)


def idb(
    linktype: int = 1,
    snaplen: int = 0,
    endian: str = "<",
    *,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    name: str | None = None,
    opts: list[tuple[int, bytes]] | None = None,
) -> bytes:
    pairs = list(opts or [])
    if name is not None:
        pairs.append((2, name.encode()))
    if tsresol is not None:
        pairs.append((9, bytes([tsresol])))
    if tsoffset is not None:
        pairs.append((14, struct.pack(endian + "q", tsoffset)))
    body = struct.pack(endian + "HHI", linktype, 0, snaplen) + options(pairs, endian)
    return block(BT_IDB, body, endian)


def epb(
    data: bytes,
    *,
    ifid: int = 0,
    ts: int = 0,
    wirelen: int | None = None,
    caplen: int | None = None,
    endian: str = "<",
    opts: list[tuple[int, bytes]] | None = None,
) -> bytes:
    cap = len(data) if caplen is None else caplen
    orig = len(data) if wirelen is None else wirelen
    body = struct.pack(endian + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, cap, orig)
    body += pad4(data) + options(opts or [], endian)
    return block(BT_EPB, body, endian)


def spb(data: bytes, *, wirelen: int | None = None, endian: str = "<") -> bytes:
    orig = len(data) if wirelen is None else wirelen
    return block(BT_SPB, struct.pack(endian + "I", orig) + pad4(data), endian)


def pb(
    data: bytes,
    *,
    ifid: int = 0,
    drops: int = 0,
    ts: int = 0,
    wirelen: int | None = None,
    endian: str = "<",
) -> bytes:
    orig = len(data) if wirelen is None else wirelen
    body = struct.pack(endian + "HHIIII", ifid, drops, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
    return block(BT_PB, body + pad4(data), endian)


def isb(
    ifid: int,
    *,
    ts: int = 0,
    endian: str = "<",
    ifrecv: int | None = None,
    ifdrop: int | None = None,
    osdrop: int | None = None,
    extra: list[tuple[int, bytes]] | None = None,
) -> bytes:
    pairs = list(extra or [])
    for code, value in ((4, ifrecv), (5, ifdrop), (7, osdrop)):
        if value is not None:
            pairs.append((code, struct.pack(endian + "Q", value)))
    body = struct.pack(endian + "III", ifid, ts >> 32, ts & 0xFFFFFFFF) + options(pairs, endian)
    return block(BT_ISB, body, endian)


def nrb(entries: list[tuple[int, bytes]], endian: str = "<") -> bytes:
    """Name Resolution Block; ``entries`` are (record type, value) pairs."""
    body = b"".join(struct.pack(endian + "HH", t, len(v)) + pad4(v) for t, v in entries)
    return block(BT_NRB, body + struct.pack(endian + "HH", 0, 0), endian)


def dsb(secrets: bytes, endian: str = "<") -> bytes:
    body = struct.pack(endian + "II", 0x544C534B, len(secrets)) + pad4(secrets)  # TLS key log
    return block(BT_DSB, body, endian)


def custom(
    pen: int = 32473, payload: bytes = b"hello", *, copy: bool = True, endian: str = "<"
) -> bytes:
    return block(BT_CB if copy else BT_DCB, struct.pack(endian + "I", pen) + payload, endian)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


# -- reference walker ------------------------------------------------------------


@dataclass
class RefInterface:
    link_type: int
    snaplen: int
    tsresol: tuple[int, int] = (10, 6)
    tsoffset_s: int = 0
    #: isb_ifrecv, isb_ifdrop, isb_osdrop from the last ISB naming this interface
    counters: dict[int, int] = field(default_factory=dict)


@dataclass
class RefPacket:
    iface: int  # global interface index (across sections)
    caplen: int
    wirelen: int
    ts_ns: int | None  # None for Simple Packet Blocks
    data: bytes


@dataclass
class RefCapture:
    blocks: list[str] = field(default_factory=list)
    interfaces: list[RefInterface] = field(default_factory=list)
    packets: list[RefPacket] = field(default_factory=list)


def _ref_options(body: bytes, e: str) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, pos)
        if code == 0:
            break
        out.setdefault(code, body[pos + 4 : pos + 4 + length])
        pos += 4 + length + (-length % 4)
    return out


def walk_pcapng(raw: bytes) -> RefCapture:
    """Read a well-formed pcapng file one block at a time (no damage handling)."""
    cap = RefCapture()
    pos = 0
    e = "<"
    section: list[int] = []
    while pos < len(raw):
        if raw[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if raw[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(e + "II", raw, pos)
        body = raw[pos + 8 : pos + blen - 4]
        cap.blocks.append(BLOCK_NAMES.get(btype, f"0x{btype:08x}"))
        if btype == BT_SHB:
            section = []
        elif btype == BT_IDB:
            link, _, snap = struct.unpack_from(e + "HHI", body)
            itf = RefInterface(link, snap)
            opts = _ref_options(body[8:], e)
            if 9 in opts:
                v = opts[9][0]
                itf.tsresol = (2, v & 0x7F) if v & 0x80 else (10, v)
            if 14 in opts:
                (itf.tsoffset_s,) = struct.unpack(e + "q", opts[14][:8])
            section.append(len(cap.interfaces))
            cap.interfaces.append(itf)
        elif btype == BT_ISB:
            (ifid,) = struct.unpack_from(e + "I", body)
            if ifid < len(section):
                opts = _ref_options(body[12:], e)
                for code in (4, 5, 7):
                    if len(opts.get(code, b"")) == 8:
                        cap.interfaces[section[ifid]].counters[code] = struct.unpack(
                            e + "Q", opts[code]
                        )[0]
        elif btype in (BT_EPB, BT_PB):
            if btype == BT_EPB:
                ifid, hi, lo, c, o = struct.unpack_from(e + "IIIII", body)
            else:
                ifid, _drops, hi, lo, c, o = struct.unpack_from(e + "HHIIII", body)
            g = section[ifid]
            itf = cap.interfaces[g]
            base, exp = itf.tsresol
            ns = ((hi << 32) | lo) * 10**9 // base**exp + itf.tsoffset_s * 10**9
            cap.packets.append(RefPacket(g, c, o, ns, body[20 : 20 + c]))
        elif btype == BT_SPB:
            (o,) = struct.unpack_from(e + "I", body)
            g = section[0]
            snap = cap.interfaces[g].snaplen or o
            c = min(o, snap, len(body) - 4)
            cap.packets.append(RefPacket(g, c, o, None, body[4 : 4 + c]))
        pos += blen
    return cap
