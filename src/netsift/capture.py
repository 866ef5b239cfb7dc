"""Streaming capture readers: pcap and pcapng (plain or gzip) into record batches.

A reader never builds per-packet objects.  It reads the file in large chunks
(``CHUNK_BYTES``), walks the record headers with one tight loop, and yields a
:class:`RecordBatch`: the chunk's bytes plus numpy arrays saying where each
packet lies, its lengths, timestamp (integer nanoseconds), link type and
interface.  Memory is bounded by the chunk size, not by the file.

Damage never raises out of :meth:`CaptureReader.batches`: an impossible
record length, a bad block, a damaged gzip stream or a file cut mid-record
ends that file with a warning in :attr:`CaptureReader.warnings`; all records
before it are yielded.  Timestamps are converted exactly (integer arithmetic)
and saturate at 0 and 2**63 - 1 ns instead of wrapping.

Formats (specs cited beside the constants):
- pcap: tcpdump.org "PCAP Capture File Format" (draft-ietf-opsawg-pcap),
  µs and ns magic, both byte orders, and Kuznetzov's modified pcap (24-byte
  record headers) as Wireshark reads it.
- pcapng: draft-ietf-opsawg-pcapng; SHB (several sections, either byte
  order), IDB (if_tsresol, if_tsoffset, snaplen), EPB, SPB, the obsolete
  Packet Block, ISB (drop counters read), NRB/DSB/custom/unknown skipped.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import mmap
import os
import struct
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from . import walk
from .errors import InputNotFoundError, InputUnreadableError, NotACaptureError

CHUNK_BYTES = 8 << 20
#: Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD: a larger record length is damage.
MAX_RECORD_BYTES = 262_144
#: Sanity cap for a pcapng block (Wireshark uses 16 MiB for most blocks).  Also the
#: ceiling for a pcap record when the file's snaplen is larger than MAX_RECORD_BYTES,
#: so a damaged length can never make the reader buffer more than this.
MAX_BLOCK_BYTES = 16 << 20
_INT64_MAX = (1 << 63) - 1

#: Every :attr:`ReaderWarning.code` (stable identifiers; all but the last end the file).
WARNING_CODES = frozenset(
    {
        "short_file_header",  # pcap file header cut short
        "impossible_record_length",  # pcap record longer than the limit
        "impossible_block_length",  # pcapng block length < minimum, not /4, or > cap
        "block_length_mismatch",  # pcapng trailing length differs from the leading one
        "bad_byte_order_magic",  # pcapng SHB without 0x1A2B3C4D in either order
        "cut_short",  # the file ends inside a record or block
        "gzip_stream_damaged",  # corrupt or cut gzip stream, or trailing garbage
        "read_error",  # the operating system failed a read
        "no_section_header",  # pcapng data without any SHB (only a warning)
    }
)
#: Every key of :attr:`CaptureReader.skipped` (records dropped without ending the file).
SKIP_REASONS = frozenset({"unknown_interface", "epb_caplen_exceeds_block", "bad_packet_block"})
#: Read size for one ``read1`` call on a gzip stream: small enough that a damaged
#: stream loses at most this much already-decompressed data.
_GZIP_PIECE = 1 << 20

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
#: minimum total lengths (draft-ietf-opsawg-pcapng §4.1-§4.6; PB: appendix A)
_MIN_SHB = 28
_MIN_IDB = 20
_MIN_EPB = 32
_MIN_SPB = 16
_MIN_PB = 32
_MIN_ISB = 24
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
    """Where a run of packets lies in one buffer, with their record metadata.

    ``ts_ns`` is nanoseconds since the epoch, clamped to ``[0, 2**63 - 1]``; it
    is 0 for records that carry no timestamp (pcapng Simple Packet Blocks).
    """

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

    def take(self, rows: npt.NDArray[np.int64]) -> RecordBatch:
        """The records of ``rows`` only; the buffer is shared, not copied."""
        return RecordBatch(self.buf, self.off[rows], self.caplen[rows], self.wirelen[rows], self.ts_ns[rows],
                           self.link_type[rows], self.iface[rows], self.first_frame, self.file_index)  # fmt: skip

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
                except (OSError, EOFError, zlib.error):
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


def _gzip_header_end(buf: bytes, pos: int) -> int | None:
    """End of the gzip member header at ``pos``, read as :mod:`gzip` reads it (reserved flag
    bits and the header CRC are not checked); None when ``buf`` holds no header there."""
    if buf[pos : pos + 2] != b"\x1f\x8b" or len(buf) < pos + 10 or buf[pos + 2] != 8:
        return None
    flag = buf[pos + 3]
    p = pos + 10
    if flag & 4:  # FEXTRA
        if len(buf) < p + 2:
            return None
        p += 2 + int.from_bytes(buf[p : p + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flag & bit:
            end = buf.find(b"\x00", p)
            if end < 0:
                return None
            p = end + 1
    if flag & 2:  # FHCRC
        p += 2
    return p if p <= len(buf) else None


def _gzip_prefix(path: str, skip: int, limit: int) -> bytes:
    """Bytes ``skip`` to ``skip + limit`` of the longest decompressible prefix of a damaged gzip file.

    Decompresses as :class:`gzip.GzipFile` does (its header rules, raw deflate, members one
    after another, zero padding between them), but retrying a failing piece byte by byte
    from a copy of the decompressor, so the output stops exactly where the damage is.  A
    member whose CRC or length does not match keeps its data and ends the stream.  Only
    used once a stream has failed.
    """
    try:
        with open(path, "rb") as f:
            buf = f.read()
    except OSError:
        return b""
    out = bytearray()
    want = skip + limit
    pos = 0
    while len(out) < want:
        while pos < len(buf) and buf[pos] == 0:  # padding between members
            pos += 1
        start = _gzip_header_end(buf, pos)
        if start is None:
            break
        d = zlib.decompressobj(-zlib.MAX_WBITS)
        member = len(out)
        p = start
        while p < len(buf) and not d.eof and len(out) < want:
            piece = buf[p : p + 4096]
            saved = d.copy()
            try:
                out += d.decompress(piece)
                p += len(piece) - len(d.unused_data)
            except zlib.error:
                d = saved
                for i in range(len(piece)):
                    try:
                        out += d.decompress(piece[i : i + 1])
                    except zlib.error:
                        return bytes(out[skip:want])
                    if d.eof:
                        p += i + 1
                        break
                else:
                    p += len(piece)
        if not d.eof or len(out) >= want:
            break
        trailer = buf[p : p + 8]
        data = bytes(out[member:])
        if len(trailer) < 8 or int.from_bytes(trailer[:4], "little") != zlib.crc32(data) \
                or int.from_bytes(trailer[4:], "little") != len(data) & 0xFFFFFFFF:
            break
        pos = p + 8
    return bytes(out[skip:want])


class CaptureReader:
    """Stream one capture file as :class:`RecordBatch` objects.

    Use as a context manager; :meth:`batches` may be iterated once.
    """

    def __init__(self, path: str, file_index: int = 0, chunk_bytes: int = CHUNK_BYTES) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be at least 1, not {chunk_bytes}")
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
        self._fh: gzip.GzipFile | io.BufferedReader | None = None
        self._raw: io.BufferedReader | None = None
        self._read_failed = False
        self._unpacked = 0  # bytes decompressed so far (gzip), for messages
        self._mm: mmap.mmap | None = None
        self._mm_pos = 0

    # -- context management -------------------------------------------------
    def __enter__(self) -> CaptureReader:
        try:
            raw = open(self.path, "rb")  # closed in __exit__
        except OSError as exc:
            raise InputUnreadableError(f"{self.path}: cannot be read ({exc.strerror})") from None
        self._fh = gzip.GzipFile(fileobj=raw) if self.info.compression == "gzip" else raw
        self._raw = raw
        if self.info.compression is None and self.info.format == "pcap":
            # Memory-map plain pcap files; anything that cannot be mapped (empty
            # file, pipe, special file) is read through buffers instead.
            try:
                self._mm = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
                if hasattr(mmap, "MADV_SEQUENTIAL"):
                    self._mm.madvise(mmap.MADV_SEQUENTIAL)
            except (OSError, ValueError):
                self._mm = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mm is not None:
            # Batches still referenced elsewhere keep the mapping alive; it is
            # then closed when they are garbage-collected.
            with contextlib.suppress(BufferError):
                self._mm.close()
            self._mm = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def position(self) -> int:
        """Bytes of the file (compressed bytes for gzip) consumed so far, for progress bars."""
        if self._mm is not None:
            return self._mm_pos
        try:
            return self._raw.tell() if self._raw is not None else self.info.file_bytes
        except (OSError, ValueError):
            return 0

    # -- helpers --------------------------------------------------------------
    def _warn(self, code: str, message: str, offset: int | None = None) -> None:
        self.warnings.append(ReaderWarning(code, message, offset))

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _release(self, start: int, length: int) -> None:
        """Drop mapped pages of ``[start, start+length)`` from this process (Linux madvise)."""
        if self._mm is None or length <= 0 or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        lo = start // page * page
        hi = (start + length) // page * page
        if hi > lo:
            with contextlib.suppress(OSError, ValueError):
                self._mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)

    def _read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" at the end or after a read error (which is recorded).

        A gzip stream is read in pieces so that a cut or corrupt stream keeps
        every byte decompressed before the damage (``GzipFile.read`` would
        discard the whole chunk along with the exception).
        """
        fh = self._fh
        if fh is None:
            raise RuntimeError("CaptureReader.batches() must be used inside a 'with' block")
        if self._read_failed:
            return b""
        if self._mm is not None:
            data = self._mm[self._mm_pos : self._mm_pos + n]
            self._mm_pos += len(data)
            return data
        if not isinstance(fh, gzip.GzipFile):
            try:
                return fh.read(n)
            except OSError as exc:
                self._read_failure("read_error", f"read failed: {exc.strerror or exc}")
                return b""
        parts: list[bytes] = []
        got = 0
        try:
            while got < n:
                piece = fh.read1(min(n - got, _GZIP_PIECE))
                if not piece:
                    break
                parts.append(piece)
                got += len(piece)
        except (OSError, EOFError, zlib.error) as exc:
            # GzipFile drops what the failing read1 call had decompressed: recover it
            # byte-exactly, so the records before the damage are kept whatever the
            # read sizes were (found by fuzz/fuzz_capture.py)
            rescued = _gzip_prefix(self.path, self._unpacked + got, n - got)
            parts.append(rescued)
            got += len(rescued)
            self._read_failure(
                "gzip_stream_damaged",
                f"the gzip stream is damaged after {self._unpacked + got} decompressed bytes "
                f"({exc}); the rest of the file is unreadable",
            )
        self._unpacked += got
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_failure(self, code: str, message: str) -> None:
        self._warn(code, message)
        self.truncated = True
        self._read_failed = True

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
        # A snaplen above the usual maximum allows longer records (USB, D-Bus
        # captures), but never beyond MAX_BLOCK_BYTES: a damaged length must not
        # make the reader buffer the rest of a large file looking for the record.
        max_cap = max(min(snaplen, MAX_BLOCK_BYTES), MAX_RECORD_BYTES)
        cap_at = struct.Struct(order + "I").unpack_from
        dt = np.dtype(">u4") if order == ">" else np.dtype("<u4")
        walk_pcap = walk.walk_pcap

        big = order == ">"

        def chunk(buf: bytes | memoryview, file_pos: int, frame: int
                  ) -> Generator[RecordBatch, None, tuple[int, int]]:
            """Yield the batch of complete records in ``buf``; return (consumed, damaged)."""
            # The serial part: find where each record starts (C, see walk.py).
            room = np.empty(len(buf) // rec_len + 1, dtype=np.int64)
            count, pos, status = walk_pcap(buf, 0, rec_len, big, max_cap, room)
            if count:
                yield self._pcap_batch(buf, room[:count], dt, ts_mult, rec_len, link_type, frame)
            if status == 1:
                self._warn(
                    "impossible_record_length",
                    f"record at byte {file_pos + pos} claims {cap_at(buf, pos + 8)[0]} captured "
                    f"bytes (limit {max_cap}); the rest of the file is unreadable",
                    file_pos + pos,
                )
                self.truncated = True
            return pos, count

        frame = 1
        file_pos = 24
        if self._mm is not None:
            # Plain file: zero-copy windows over a read-only mapping.  Pages already
            # analysed are dropped from this process (they stay in the page cache),
            # so resident memory stays at about one window.
            mv = memoryview(self._mm)
            size = len(mv)
            while file_pos < size:
                stop = min(file_pos + self.chunk_bytes, size)
                if file_pos + rec_len <= size:  # widen the window for one huge record
                    need = rec_len + min(cap_at(mv, file_pos + 8)[0], max_cap)
                    stop = max(stop, min(file_pos + need, size))
                pos, count = yield from chunk(mv[file_pos:stop], file_pos, frame)
                frame += count
                self._release(file_pos, pos)
                file_pos += pos
                self._mm_pos = file_pos
                if self.truncated:
                    return
                if count == 0:
                    break  # what is left cannot hold a complete record
            if file_pos < size:
                self._warn("cut_short", f"the file ends in the middle of a record at byte "
                           f"{file_pos} ({size - file_pos} bytes left over)", file_pos)
                self.truncated = True
            return

        carry = b""
        while True:
            data = self._read(self.chunk_bytes)
            if not data:
                break
            buf = carry + data if carry else data
            pos, count = yield from chunk(buf, file_pos, frame)
            frame += count
            if self.truncated:
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
        buf: bytes | memoryview,
        starts: npt.NDArray[np.int64],
        dt: np.dtype[np.uint32],
        ts_mult: int,
        rec_len: int,
        link_type: int,
        frame: int,
    ) -> RecordBatch:
        arr = np.frombuffer(buf, dtype=np.uint8)
        rs = starts
        n = rs.shape[0]
        # A u32 view with a one-byte stride reads a word at any offset: four
        # gathers of n words instead of one of 16n bytes.
        words32 = np.ndarray(shape=(max(arr.shape[0] - 3, 0),), dtype=dt, buffer=arr, strides=(1,))
        words = [words32[rs + 4 * i].astype(np.int64) for i in range(4)]
        ts = words[0] * 1_000_000_000 + words[1] * ts_mult
        self.records += n
        return RecordBatch(
            buf=arr,
            off=rs + rec_len,
            caplen=words[2],
            wirelen=words[3],
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
            no_ts: list[int] = []  # rows without a timestamp (SPB)
            segments: list[_Segment] = []  # rows already gathered as arrays, in file order
            rows = 0  # rows in ``segments``
            lists = (starts, caps, origs, ifids, units)
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
                if btype == _BT_EPB and section_ifaces:
                    # A run of well-formed EPBs (the bulk of a file) goes through the
                    # C walker; it stops at anything else and the code below takes over.
                    room = (end - pos) // _MIN_EPB + 1
                    arrays = (np.empty(room, np.int64), np.empty(room, np.int64),
                              np.empty(room, np.int64), np.empty(room, np.int32),
                              np.empty(room, np.uint64))
                    count, new_pos, _status = walk.walk_epb(
                        buf, pos, order == ">", len(section_ifaces), *arrays)
                    if count:
                        rows += _flush(segments, starts, caps, origs, ifids, units)
                        local = np.asarray(section_ifaces, dtype=np.int32)
                        segments.append((arrays[0][:count], arrays[1][:count], arrays[2][:count],
                                         local[arrays[3][:count]], arrays[4][:count]))
                        rows += count
                        pos = new_pos
                        continue
                if btype == _BT_EPB:
                    if blen < _MIN_EPB:
                        damage = "impossible_block_length"
                        break
                    ifid, hi, lo, cap, orig = struct.unpack_from(order + "5I", buf, pos + 8)
                    if cap > blen - 32:
                        self._skip("epb_caplen_exceeds_block")
                    elif ifid >= len(section_ifaces):
                        self._skip("unknown_interface")
                    else:
                        _add_row(lists, pos + 28, cap, orig, section_ifaces[ifid], (hi << 32) | lo)
                elif btype == _PCAPNG_SHB:
                    if blen < _MIN_SHB:
                        damage = "impossible_block_length"
                        break
                    section_ifaces = []
                    info.sections += 1
                    if info.sections == 1:
                        info.byte_order = "little" if order == "<" else "big"
                        maj, mnr = struct.unpack_from(order + "HH", buf, pos + 12)
                        info.version = f"{maj}.{mnr}"
                elif btype == _BT_IDB:
                    if blen < _MIN_IDB:
                        damage = "impossible_block_length"
                        break
                    section_ifaces.append(len(info.interfaces))
                    info.interfaces.append(self._parse_idb(buf, pos, blen, order))
                elif btype == _BT_SPB:
                    if blen < _MIN_SPB:
                        damage = "impossible_block_length"
                        break
                    if not section_ifaces:
                        self._skip("unknown_interface")
                    else:
                        (orig,) = struct.unpack_from(order + "I", buf, pos + 8)
                        g = section_ifaces[0]
                        snap = info.interfaces[g].snaplen or orig
                        cap = min(orig, snap, blen - _MIN_SPB)
                        no_ts.append(rows + len(starts))
                        _add_row(lists, pos + 12, cap, orig, g, 0)  # SPB has no timestamp: no_ts
                elif btype == _BT_PB:
                    if blen < _MIN_PB:
                        damage = "impossible_block_length"
                        break
                    ifid, _drops, hi, lo, cap, orig = struct.unpack_from(order + "HH4I", buf, pos + 8)
                    if ifid >= len(section_ifaces):
                        self._skip("unknown_interface")
                    elif cap > blen - _MIN_PB:
                        self._skip("bad_packet_block")
                    else:
                        _add_row(lists, pos + 28, cap, orig, section_ifaces[ifid], (hi << 32) | lo)
                elif btype == _BT_ISB and blen >= _MIN_ISB:
                    (ifid,) = struct.unpack_from(order + "I", buf, pos + 8)
                    if ifid < len(section_ifaces):
                        self._parse_isb(buf, pos, blen, order, info.interfaces[section_ifaces[ifid]])
                # NRB, DSB, custom and unknown blocks: skipped by design.
                pos += blen
            rows += _flush(segments, starts, caps, origs, ifids, units)
            if rows:
                yield self._pcapng_batch(buf, segments, no_ts, frame)
                frame += rows
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
            if code == _OPT_END or pos + 4 + length > stop:
                return  # end of options, or an option overrunning its block
            yield code, buf[pos + 4 : pos + 4 + length]
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
        segments: list[_Segment],
        no_ts: list[int],
        frame: int,
    ) -> RecordBatch:
        if len(segments) == 1:
            starts, caps, origs, ifids, u = segments[0]
        else:
            starts, caps, origs, ifids, u = (
                np.concatenate([seg[i] for seg in segments]) for i in range(5)
            )
        n = int(starts.shape[0])
        iface = ifids
        ts = np.zeros(n, dtype=np.int64)
        link = np.empty(n, dtype=np.int32)
        for g in np.unique(iface).tolist():
            sel = iface == g
            itf = self.info.interfaces[g]
            link[sel] = itf.link_type
            base, exp = itf.tsresol
            ts[sel] = _units_to_ns_array(u[sel], base, exp, itf.tsoffset_s)
        if no_ts:
            ts[no_ts] = 0
        self.records += n
        return RecordBatch(
            buf=np.frombuffer(buf, dtype=np.uint8),
            off=starts,
            caplen=caps,
            wirelen=origs,
            ts_ns=ts,
            link_type=link,
            iface=iface,
            first_frame=frame,
            file_index=self.file_index,
        )


#: One run of rows: record starts, captured lengths, original lengths, global
#: interface index, raw timestamp units (EPB/PB timestamps are unsigned 64-bit).
_Segment = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64],
    npt.NDArray[np.int32], npt.NDArray[np.uint64],
]


def _add_row(lists: tuple[list[int], ...], *row: int) -> None:
    """Append one record (start, caplen, wirelen, interface, timestamp units) to the row lists."""
    for lst, value in zip(lists, row, strict=True):
        lst.append(value)


def _flush(segments: list[_Segment], starts: list[int], caps: list[int], origs: list[int],
           ifids: list[int], units: list[int]) -> int:
    """Move rows gathered in Python lists into ``segments``; return how many moved."""
    n = len(starts)
    if n:
        segments.append((np.asarray(starts, np.int64), np.asarray(caps, np.int64),
                         np.asarray(origs, np.int64), np.asarray(ifids, np.int32),
                         np.asarray(units, np.uint64)))
        for lst in (starts, caps, origs, ifids, units):
            lst.clear()
    return n


def _units_to_ns(units: int, base: int, exp: int) -> int:
    """Exact conversion of a pcapng timestamp in ``base**-exp`` seconds to ns (floored)."""
    return units * 1_000_000_000 // int(base**exp)


def _clamp_ns(ns: int) -> int:
    return max(min(ns, _INT64_MAX), 0)


def _units_to_ns_array(
    vals: npt.NDArray[np.uint64], base: int, exp: int, offset_s: int
) -> npt.NDArray[np.int64]:
    """Timestamps of one interface to ns since the epoch, exactly, clamped to int64.

    Integer arithmetic throughout: float64 would be off by up to hundreds of ns
    for binary resolutions.  Damaged values (overflowing int64, resolutions no
    writer uses) take a slow exact path in Python instead of wrapping around.
    """
    if vals.size == 0:
        return np.zeros(0, dtype=np.int64)
    off_ns = offset_s * 1_000_000_000
    umin, umax = int(vals.min()), int(vals.max())
    lo, hi = _units_to_ns(umin, base, exp), _units_to_ns(umax, base, exp)
    # The conversion is monotonic, so checking the extremes bounds every value.
    if umax <= _INT64_MAX and hi <= _INT64_MAX and lo + off_ns >= 0 and hi + off_ns <= _INT64_MAX:
        v = vals.astype(np.int64)
        out: npt.NDArray[np.int64] | None = None
        if base == 10 and exp <= 9:
            out = v * int(10 ** (9 - exp))
        elif base == 10 and exp <= 27:
            out = v // int(10 ** (exp - 9))
        elif base == 2 and exp <= 32:
            frac = ((v & ((1 << exp) - 1)) * 1_000_000_000) >> exp
            out = (v >> exp) * 1_000_000_000 + frac
        if out is not None:
            return out + off_ns
    return np.asarray(
        [_clamp_ns(_units_to_ns(x, base, exp) + off_ns) for x in vals.tolist()], dtype=np.int64
    )
