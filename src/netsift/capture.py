"""Streaming capture readers: pcap and pcapng (plain or gzip) into record batches.

A reader never builds per-packet objects.  It reads the file in large chunks
(``CHUNK_BYTES``), walks the record headers with one tight loop, and yields a
:class:`RecordBatch`: the chunk's bytes plus numpy arrays saying where each
packet lies, its lengths, timestamp (integer nanoseconds), link type and
interface.  Memory is bounded by the chunk size, not by the file.

Damage never raises out of :meth:`CaptureReader.batches`: an impossible
record length, a bad block or a file cut mid-record ends that file with a
warning in :attr:`CaptureReader.warnings`; all records before it are yielded.

Formats (specs cited beside the constants):
- pcap: tcpdump.org "PCAP Capture File Format" (draft-ietf-opsawg-pcap),
  µs and ns magic, both byte orders, and Kuznetzov's modified pcap (24-byte
  record headers) as Wireshark reads it.
- pcapng: draft-ietf-opsawg-pcapng; SHB (several sections, either byte
  order), IDB (if_tsresol, if_tsoffset, snaplen), EPB, SPB, the obsolete
  Packet Block, ISB (drop counters read), NRB/DSB/custom/unknown skipped.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from .errors import InputNotFoundError, InputUnreadableError, NotACaptureError

CHUNK_BYTES = 8 << 20
#: Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a larger record length is damage.
MAX_RECORD_BYTES = 262_144
#: Sanity cap for a pcapng block (Wireshark uses 16 MiB for most blocks).
MAX_BLOCK_BYTES = 16 << 20

# pcap magic numbers as read little-endian from the first four bytes.
_PCAP_MAGICS = {
    0xA1B2C3D4: ("<", 1_000, 16),  # µs, little-endian writer
    0xD4C3B2A1: (">", 1_000, 16),  # µs, big-endian writer
    0xA1B23C4D: ("<", 1, 16),  # ns
    0x4D3CB2A1: (">", 1, 16),
    0xA1B2CD34: ("<", 1_000, 24),  # Kuznetzov "modified" pcap, 24-byte records
    0x34CDB2A1: (">", 1_000, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_GZIP_MAGIC = b"\x1f\x8b"

# pcapng block types (draft-ietf-opsawg-pcapng §11.1)
_BT_IDB = 0x00000001
_BT_PB = 0x00000002  # obsolete Packet Block
_BT_SPB = 0x00000003
_BT_NRB = 0x00000004
_BT_ISB = 0x00000005
_BT_EPB = 0x00000006

# Option codes used here.
_OPT_END = 0
_IF_NAME = 2
_IF_TSRESOL = 9
_IF_TSOFFSET = 14
_ISB_IFRECV = 4
_ISB_IFDROP = 5
_ISB_OSDROP = 7


@dataclass
class Interface:
    """One capture interface (a pcap file has exactly one)."""

    link_type: int
    snaplen: int
    name: str = ""
    #: timestamp units: ``(base, exponent)`` with ``base`` 10 or 2
    tsresol: tuple[int, int] = (10, 6)
    tsoffset_s: int = 0
    #: from Interface Statistics Blocks, when the file has them
    received: int | None = None
    dropped_by_interface: int | None = None
    dropped_by_os: int | None = None


@dataclass
class RecordBatch:
    """Where a run of packets lies in one buffer, with their record metadata."""

    buf: npt.NDArray[np.uint8]
    off: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.int64]
    wirelen: npt.NDArray[np.int64]
    ts_ns: npt.NDArray[np.int64]
    link_type: npt.NDArray[np.int32]
    iface: npt.NDArray[np.int32]
    #: 1-based frame number of the first record, counted within its file
    first_frame: int
    file_index: int = 0

    def __len__(self) -> int:
        return int(self.off.shape[0])

    def packet_bytes(self, i: int) -> bytes:
        """The captured bytes of record ``i`` (for the reference decoder and tests)."""
        start = int(self.off[i])
        return self.buf[start : start + int(self.caplen[i])].tobytes()


@dataclass
class ReaderWarning:
    """Damage or oddity found while reading; ``code`` is a stable snake_case name."""

    code: str
    message: str
    offset: int | None = None


@dataclass
class CaptureInfo:
    path: str
    format: str = "unknown"  # "pcap" | "pcapng"
    compression: str | None = None
    byte_order: str = "little"
    version: str = ""
    ts_precision: str = ""
    interfaces: list[Interface] = field(default_factory=list)
    sections: int = 0
    file_bytes: int = 0


def sniff_format(path: str) -> tuple[str, str | None]:
    """Return ``(format, compression)`` for a file, or raise a user-facing error."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            compression = None
            if head[:2] == _GZIP_MAGIC:
                compression = "gzip"
                f.seek(0)
                try:
                    with gzip.GzipFile(fileobj=f) as g:
                        head = g.read(4)
                except (OSError, EOFError):
                    raise NotACaptureError(
                        f"{path}: gzip-compressed, but the gzip stream is damaged"
                    ) from None
    except FileNotFoundError:
        raise InputNotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputUnreadableError(f"{path}: is a directory") from None
    except PermissionError:
        raise InputUnreadableError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputUnreadableError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(head) < 4:
        raise NotACaptureError(f"{path}: too short to be a capture ({len(head)} bytes)")
    (magic,) = struct.unpack("<I", head)
    if magic in _PCAP_MAGICS:
        return "pcap", compression
    if magic == _PCAPNG_SHB:
        return "pcapng", compression
    raise NotACaptureError(f"{path}: not a pcap or pcapng capture (magic 0x{magic:08x})")


class CaptureReader:
    """Stream one capture file as :class:`RecordBatch` objects.

    Use as a context manager; :meth:`batches` may be iterated once.
    """

    def __init__(self, path: str, file_index: int = 0, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.file_index = file_index
        self.chunk_bytes = chunk_bytes
        fmt, compression = sniff_format(path)
        self.info = CaptureInfo(path=path, format=fmt, compression=compression)
        try:
            self.info.file_bytes = os.path.getsize(path)
        except OSError:
            self.info.file_bytes = 0
        self.warnings: list[ReaderWarning] = []
        #: records skipped for a reason (block-level damage that did not end the file)
        self.skipped: dict[str, int] = {}
        #: True when the file ended early because of damage or a cut record
        self.truncated = False
        self.records = 0
        self._fh: BinaryIO | None = None

    # -- context management -------------------------------------------------
    def __enter__(self) -> CaptureReader:
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise InputUnreadableError(f"{self.path}: cannot be read ({exc.strerror})") from None
        self._fh = gzip.GzipFile(fileobj=raw) if self.info.compression == "gzip" else raw
        self._raw = raw
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._raw.close()
            self._fh = None

    # -- helpers --------------------------------------------------------------
    def _warn(self, code: str, message: str, offset: int | None = None) -> None:
        self.warnings.append(ReaderWarning(code, message, offset))

    def _read(self, n: int) -> bytes:
        assert self._fh is not None  # internal invariant, not input validation
        try:
            return self._fh.read(n)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self._warn("read_error", f"read failed: {exc}")
            self.truncated = True
            return b""

    def batches(self) -> Iterator[RecordBatch]:
        if self.info.format == "pcap":
            yield from self._pcap_batches()
        else:
            yield from self._pcapng_batches()

    # -- pcap -------------------------------------------------------------------
    def _pcap_batches(self) -> Iterator[RecordBatch]:
        hdr = self._read(24)
        if len(hdr) < 24:
            self._warn("short_file_header", "the pcap file header is cut short")
            self.truncated = True
            return
        (magic,) = struct.unpack_from("<I", hdr)
        order, ts_mult, rec_len = _PCAP_MAGICS[magic]
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", hdr, 4)
        info = self.info
        info.byte_order = "little" if order == "<" else "big"
        info.version = f"{major}.{minor}"
        info.ts_precision = "ns" if ts_mult == 1 else "us"
        # Bits 16-31 of the link-type field carry FCS flags (pcap spec §LinkType);
        # the link type itself is the low 16 bits.
        link_type = network & 0xFFFF
        info.interfaces.append(Interface(link_type=link_type, snaplen=snaplen))
        info.sections = 1
        max_cap = max(snaplen, MAX_RECORD_BYTES)
        cap_at = struct.Struct(order + "I").unpack_from
        dt = np.dtype(np.uint32).newbyteorder(order)

        file_pos = 24
        carry = b""
        frame = 1
        while True:
            data = self._read(self.chunk_bytes)
            if not data:
                break
            buf = carry + data if carry else data
            end = len(buf)
            pos = 0
            starts: list[int] = []
            append = starts.append
            damaged = False
            # Hot loop: only the captured length is needed to find the next record.
            while pos + rec_len <= end:
                cap = cap_at(buf, pos + 8)[0]
                if cap > max_cap:
                    damaged = True
                    break
                nxt = pos + rec_len + cap
                if nxt > end:
                    break
                append(pos)
                pos = nxt
            if starts:
                yield self._pcap_batch(buf, starts, dt, ts_mult, rec_len, link_type, frame)
                frame += len(starts)
            if damaged:
                self._warn(
                    "impossible_record_length",
                    f"record at byte {file_pos + pos} claims {cap_at(buf, pos + 8)[0]} captured "
                    f"bytes (limit {max_cap}); the rest of the file is unreadable",
                    file_pos + pos,
                )
                self.truncated = True
                return
            file_pos += pos
            carry = buf[pos:]
        if carry:
            self._warn(
                "cut_short",
                f"the file ends in the middle of a record at byte {file_pos} "
                f"({len(carry)} bytes left over)",
                file_pos,
            )
            self.truncated = True

    def _pcap_batch(
        self,
        buf: bytes,
        starts: list[int],
        dt: np.dtype[np.uint32],
        ts_mult: int,
        rec_len: int,
        link_type: int,
        frame: int,
    ) -> RecordBatch:
        arr = np.frombuffer(buf, dtype=np.uint8)
        rs = np.asarray(starts, dtype=np.int64)
        n = rs.shape[0]
        # Gather the four u32 header words of each record at once.
        idx = rs[:, None] + np.arange(16, dtype=np.int64)[None, :]
        words = arr[idx].view(dt).reshape(n, 4).astype(np.int64)
        ts = words[:, 0] * 1_000_000_000 + words[:, 1] * ts_mult
        self.records += n
        return RecordBatch(
            buf=arr,
            off=rs + rec_len,
            caplen=words[:, 2],
            wirelen=words[:, 3],
            ts_ns=ts,
            link_type=np.full(n, link_type, dtype=np.int32),
            iface=np.zeros(n, dtype=np.int32),
            first_frame=frame,
            file_index=self.file_index,
        )

    # -- pcapng -----------------------------------------------------------------
    def _pcapng_batches(self) -> Iterator[RecordBatch]:
        info = self.info
        file_pos = 0
        carry = b""
        frame = 1
        order = "<"
        section_ifaces: list[int] = []  # section-local id -> global interface index
        u32 = struct.Struct("<I").unpack_from
        eof = False
        while not eof:
            data = self._read(self.chunk_bytes)
            if not data:
                eof = True
                if not carry:
                    break
            buf = carry + data if carry else data
            end = len(buf)
            pos = 0
            starts: list[int] = []
            caps: list[int] = []
            origs: list[int] = []
            ifids: list[int] = []
            units: list[int] = []
            damage: str | None = None
            while pos + 12 <= end:
                btype = u32(buf, pos)[0]
                if btype == _PCAPNG_SHB:
                    # byte order is known only after reading the byte-order magic
                    bom = buf[pos + 8 : pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        order = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        order = ">"
                    else:
                        damage = "bad_byte_order_magic"
                        break
                    u32 = struct.Struct(order + "I").unpack_from
                blen = u32(buf, pos + 4)[0]
                if blen < 12 or blen % 4 or blen > MAX_BLOCK_BYTES:
                    damage = "impossible_block_length"
                    break
                if pos + blen > end:
                    break  # need more bytes
                if u32(buf, pos + blen - 4)[0] != blen:
                    damage = "block_length_mismatch"
                    break
                if btype == _BT_EPB:
                    if blen < 32:
                        damage = "impossible_block_length"
                        break
                    ifid, hi, lo, cap, orig = struct.unpack_from(order + "5I", buf, pos + 8)
                    if cap > blen - 32:
                        self.skipped["epb_caplen_exceeds_block"] = (
                            self.skipped.get("epb_caplen_exceeds_block", 0) + 1
                        )
                    elif ifid >= len(section_ifaces):
                        self.skipped["unknown_interface"] = self.skipped.get("unknown_interface", 0) + 1
                    else:
                        starts.append(pos + 28)
                        caps.append(cap)
                        origs.append(orig)
                        ifids.append(section_ifaces[ifid])
                        units.append((hi << 32) | lo)
                elif btype == _PCAPNG_SHB:
                    section_ifaces = []
                    info.sections += 1
                    if info.sections == 1:
                        info.byte_order = "little" if order == "<" else "big"
                        maj, mnr = struct.unpack_from(order + "HH", buf, pos + 12)
                        info.version = f"{maj}.{mnr}"
                elif btype == _BT_IDB:
                    if blen < 20:
                        damage = "impossible_block_length"
                        break
                    section_ifaces.append(len(info.interfaces))
                    info.interfaces.append(self._parse_idb(buf, pos, blen, order))
                elif btype == _BT_SPB:
                    if not section_ifaces:
                        self.skipped["unknown_interface"] = self.skipped.get("unknown_interface", 0) + 1
                    else:
                        (orig,) = struct.unpack_from(order + "I", buf, pos + 8)
                        g = section_ifaces[0]
                        snap = info.interfaces[g].snaplen or orig
                        cap = min(orig, snap, blen - 16)
                        starts.append(pos + 12)
                        caps.append(cap)
                        origs.append(orig)
                        ifids.append(g)
                        units.append(-1)  # SPB has no timestamp
                elif btype == _BT_PB:
                    if blen < 32:
                        damage = "impossible_block_length"
                        break
                    ifid, _drops, hi, lo, cap, orig = struct.unpack_from(order + "HH4I", buf, pos + 8)
                    if cap > blen - 32 or ifid >= len(section_ifaces):
                        self.skipped["bad_packet_block"] = self.skipped.get("bad_packet_block", 0) + 1
                    else:
                        starts.append(pos + 28)
                        caps.append(cap)
                        origs.append(orig)
                        ifids.append(section_ifaces[ifid])
                        units.append((hi << 32) | lo)
                elif btype == _BT_ISB:
                    if blen >= 24:
                        (ifid,) = struct.unpack_from(order + "I", buf, pos + 8)
                        if ifid < len(section_ifaces):
                            self._parse_isb(buf, pos, blen, order, info.interfaces[section_ifaces[ifid]])
                # NRB, DSB, custom and unknown blocks: skipped by design.
                pos += blen
            if starts:
                yield self._pcapng_batch(buf, starts, caps, origs, ifids, units, frame)
                frame += len(starts)
            if damage is not None:
                self._warn(damage, f"damaged pcapng block at byte {file_pos + pos}; "
                           "the rest of the file is unreadable", file_pos + pos)
                self.truncated = True
                return
            file_pos += pos
            carry = buf[pos:]
            if eof and carry:
                self._warn("cut_short", f"the file ends in the middle of a block at byte "
                           f"{file_pos} ({len(carry)} bytes left over)", file_pos)
                self.truncated = True
                return
        if info.sections == 0:
            self._warn("no_section_header", "no pcapng section header block was found")

    @staticmethod
    def _options(buf: bytes, start: int, stop: int, order: str) -> Iterator[tuple[int, bytes]]:
        hdr = struct.Struct(order + "HH")
        pos = start
        while pos + 4 <= stop:
            code, length = hdr.unpack_from(buf, pos)
            if code == _OPT_END:
                return
            value = buf[pos + 4 : pos + 4 + length]
            if len(value) < length:
                return
            yield code, value
            pos += 4 + ((length + 3) & ~3)

    def _parse_idb(self, buf: bytes, pos: int, blen: int, order: str) -> Interface:
        link_type, _res, snaplen = struct.unpack_from(order + "HHI", buf, pos + 8)
        iface = Interface(link_type=link_type, snaplen=snaplen)
        for code, value in self._options(buf, pos + 16, pos + blen - 4, order):
            if code == _IF_TSRESOL and len(value) >= 1:
                v = value[0]
                iface.tsresol = (2, v & 0x7F) if v & 0x80 else (10, v)
            elif code == _IF_TSOFFSET and len(value) >= 8:
                (iface.tsoffset_s,) = struct.unpack(order + "q", value[:8])
            elif code == _IF_NAME:
                iface.name = value.decode("utf-8", "replace").rstrip("\x00")
        return iface

    def _parse_isb(self, buf: bytes, pos: int, blen: int, order: str, iface: Interface) -> None:
        for code, value in self._options(buf, pos + 20, pos + blen - 4, order):
            if len(value) < 8:
                continue
            (count,) = struct.unpack(order + "Q", value[:8])
            if code == _ISB_IFRECV:
                iface.received = count
            elif code == _ISB_IFDROP:
                iface.dropped_by_interface = count
            elif code == _ISB_OSDROP:
                iface.dropped_by_os = count

    def _pcapng_batch(
        self,
        buf: bytes,
        starts: list[int],
        caps: list[int],
        origs: list[int],
        ifids: list[int],
        units: list[int],
        frame: int,
    ) -> RecordBatch:
        n = len(starts)
        iface = np.asarray(ifids, dtype=np.int32)
        ts = np.zeros(n, dtype=np.int64)
        raw = np.asarray(units, dtype=object) if any(u >= 1 << 63 for u in units) else None
        u = np.asarray(units, dtype=np.int64) if raw is None else None
        link = np.empty(n, dtype=np.int32)
        for g in np.unique(iface).tolist():
            sel = iface == g
            itf = self.info.interfaces[g]
            link[sel] = itf.link_type
            base, exp = itf.tsresol
            if u is not None:
                vals = u[sel]
                if base == 10 and exp <= 9:
                    conv = vals * (10 ** (9 - exp))
                elif base == 10:
                    conv = vals // (10 ** (exp - 9))
                else:
                    conv = (vals.astype(np.float64) * 1e9 / float(2**exp)).astype(np.int64)
                conv = np.where(vals < 0, 0, conv)
            else:  # timestamps beyond int64: convert in Python (rare, damaged files)
                conv = np.asarray(
                    [_units_to_ns(int(x), base, exp) for x in raw[sel]], dtype=np.int64  # type: ignore[index]
                )
            ts[sel] = conv + itf.tsoffset_s * 1_000_000_000
        self.records += n
        return RecordBatch(
            buf=np.frombuffer(buf, dtype=np.uint8),
            off=np.asarray(starts, dtype=np.int64),
            caplen=np.asarray(caps, dtype=np.int64),
            wirelen=np.asarray(origs, dtype=np.int64),
            ts_ns=ts,
            link_type=link,
            iface=iface,
            first_frame=frame,
            file_index=self.file_index,
        )


def _units_to_ns(units: int, base: int, exp: int) -> int:
    ns = units * 10**9 // base**exp
    return max(min(ns, (1 << 63) - 1), 0)
