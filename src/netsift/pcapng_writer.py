"""A small streaming pcapng writer (one section, any number of interfaces).

Used where netsift writes packets itself: the live spool and ``-w`` files of
``netsift live``, and anything else that needs packets with nanosecond
timestamps, several link types in one file, per-packet comments or capture
statistics.  Blocks follow the pcapng specification
(https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html):

- one Section Header Block (SHB) with ``shb_userappl``;
- one Interface Description Block (IDB) per interface, ``if_tsresol`` = 9
  (nanoseconds), with ``if_name``, ``if_description`` and ``if_filter`` when given;
- Enhanced Packet Blocks (EPB), optionally with an ``opt_comment``;
- Interface Statistics Blocks (ISB) with ``isb_starttime``/``isb_endtime``,
  ``isb_ifrecv``, ``isb_ifdrop`` and ``isb_osdrop`` (the figures netsift's
  reader turns into the capture-quality ``capture_drops`` reason).

Every block is written whole with one ``write`` call, so after :meth:`flush` a
reader sees only complete blocks.  Byte order is the machine's, as the format
allows (readers detect it from the SHB's byte-order magic).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_ISB = 0x00000005
_BOM = 0x1A2B3C4D

_OPT_END = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_IF_FILTER = 11
_ISB_STARTTIME = 2
_ISB_ENDTIME = 3
_ISB_IFRECV = 4
_ISB_IFDROP = 5
_ISB_OSDROP = 7


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("=HH", code, len(value)) + value + b"\x00" * _pad(len(value))


def _options(opts: list[bytes]) -> bytes:
    if not opts:
        return b""
    return b"".join(opts) + struct.pack("=HH", _OPT_END, 0)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("=II", btype, total) + body + struct.pack("=I", total)


def _ts_words(ts_ns: int) -> tuple[int, int]:
    ts_ns = max(0, int(ts_ns))
    return (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF


class PcapngWriter:
    """Write pcapng to a binary file object (not closed by :meth:`close` unless ``owns``)."""

    def __init__(self, out: BinaryIO, application: str | None = None, owns: bool = False) -> None:
        self.out = out
        self.owns = owns
        self.interfaces: list[int] = []  # link type per interface id
        self.packets = 0
        self.bytes_written = 0
        opts = [_option(_SHB_USERAPPL, application.encode())] if application else []
        # SHB: byte-order magic, version 1.0, section length unknown (-1)
        body = struct.pack("=IHHq", _BOM, 1, 0, -1) + _options(opts)
        self._write(_block(_SHB, body))

    @classmethod
    def open(cls, path: str, application: str | None = None) -> PcapngWriter:
        return cls(open(path, "wb"), application=application, owns=True)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.bytes_written += len(data)

    def add_interface(self, link_type: int, snaplen: int = 0, name: str | None = None,
                      description: str | None = None, bpf_filter: str | None = None) -> int:
        """Describe an interface; returns its id for :meth:`write_packet`."""
        opts = [_option(_IF_TSRESOL, b"\x09")]
        if name:
            opts.append(_option(_IF_NAME, name.encode()))
        if description:
            opts.append(_option(_IF_DESCRIPTION, description.encode()))
        if bpf_filter:
            # first byte 0: the filter is a libpcap filter string
            opts.append(_option(_IF_FILTER, b"\x00" + bpf_filter.encode()))
        body = struct.pack("=HHI", link_type, 0, snaplen) + _options(opts)
        self._write(_block(_IDB, body))
        self.interfaces.append(link_type)
        return len(self.interfaces) - 1

    def write_packet(self, iface: int, ts_ns: int, data: bytes, wirelen: int | None = None,
                     comment: str | None = None) -> None:
        """One Enhanced Packet Block; ``wirelen`` defaults to the captured length."""
        if not 0 <= iface < len(self.interfaces):
            raise ValueError(f"interface {iface} was not added")
        hi, lo = _ts_words(ts_ns)
        caplen = len(data)
        opts = _options([_option(_OPT_COMMENT, comment.encode())]) if comment else b""
        body = (struct.pack("=IIIII", iface, hi, lo, caplen, caplen if wirelen is None else wirelen)
                + data + b"\x00" * _pad(caplen) + opts)
        self._write(_block(_EPB, body))
        self.packets += 1

    def write_stats(self, iface: int, ts_ns: int, received: int | None = None,
                    dropped: int | None = None, os_dropped: int | None = None,
                    start_ns: int | None = None, end_ns: int | None = None) -> None:
        """An Interface Statistics Block with the counters that are known."""
        opts = []
        for code, value in ((_ISB_STARTTIME, start_ns), (_ISB_ENDTIME, end_ns)):
            if value is not None:
                hi, lo = _ts_words(value)
                opts.append(_option(code, struct.pack("=II", hi, lo)))
        for code, value in ((_ISB_IFRECV, received), (_ISB_IFDROP, dropped), (_ISB_OSDROP, os_dropped)):
            if value is not None:
                opts.append(_option(code, struct.pack("=Q", max(0, int(value)))))
        hi, lo = _ts_words(ts_ns)
        self._write(_block(_ISB, struct.pack("=III", iface, hi, lo) + _options(opts)))

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        self.out.flush()
        if self.owns:
            self.out.close()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
