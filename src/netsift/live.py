"""Live capture: sniff interfaces with Scapy, keep every packet, report as ``analyze`` would.

How it works:

- One Scapy ``L2ListenSocket`` per interface (BPF filter attached in the
  kernel, promiscuous unless told otherwise) driven by one ``AsyncSniffer``.
  The sockets hand over raw frames (:class:`Frame`) instead of dissected
  Scapy packets: dissecting every packet in Python would cap the capture at
  a few tens of thousands of packets per second, and netsift's own decoder
  reads the frames anyway.
- The sniffer thread puts frames on a bounded queue; the main thread writes
  them to a pcapng spool (the ``-w`` file, rotated by size if asked, or a
  temporary file) with one interface block per interface, and keeps rolling
  statistics.  When the queue is full the sniffer thread waits, the kernel's
  socket buffer fills and the kernel drops — and counts — packets; those
  counts (``PACKET_STATISTICS``) go into the spool's interface statistics
  blocks, so the report's capture-quality verdict shows them like any other
  capture's drops.
- Every ``alert_interval`` seconds the spool so far is analysed with the
  detectors and new findings (or findings whose severity rose) are emitted.
- At the end the spool is analysed once more: the report is exactly what
  ``netsift analyze`` writes for the same packets, plus a ``live`` section.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import NetsiftError, PrivilegeError, UsageError
from .pcapng_writer import PcapngWriter
from .pipeline import _iso

#: Linux ARPHRD_* hardware types → pcap link types.
ARPHRD_TO_LINKTYPE = {
    1: 1,  # ARPHRD_ETHER → Ethernet
    772: 1,  # ARPHRD_LOOPBACK: Linux gives loopback frames a (zero) Ethernet header
    65534: 101,  # ARPHRD_NONE (tun, wireguard): raw IP
    776: 101,  # ARPHRD_SIT (IPv6-in-IPv4): raw IP
    768: 101,  # ARPHRD_TUNNEL (ipip): raw IP
    769: 101,  # ARPHRD_TUNNEL6: raw IP
    512: 101,  # ARPHRD_PPP: the kernel hands raw IP
    801: 105,  # ARPHRD_IEEE80211 → 802.11
    803: 127,  # ARPHRD_IEEE80211_RADIOTAP → radiotap
}
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_AUXDATA = 8
SO_TIMESTAMPNS = 35
TP_STATUS_CSUMNOTREADY = 1 << 3  # checksum left to the NIC (offload): wrong in the capture, fine on the wire
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
DEFAULT_SNAPLEN = 262_144
#: Kernel receive buffer per interface (libpcap's default is 2 MiB; a burst of small
#: frames costs about 1 KiB each of it, so 16 MiB holds some 16,000).
DEFAULT_BUFFER = 16 * 1024 * 1024
#: Socket reads (batches of up to BATCH_FRAMES frames) held between the sniffer thread and the writer.
QUEUE_BATCHES = 2_000


#: Most frames one socket read hands over (one select, one queue operation for all of them).
BATCH_FRAMES = 256
_CMSG_SPACE = socket.CMSG_LEN(4096)
_AUX = struct.Struct("=IIIHHHH")
_TIMESPEC = struct.Struct("=qq")


class Frame:
    """A captured frame: bytes, original length, nanosecond time, interface index."""

    __slots__ = ("csum_not_ready", "data", "iface", "ts_ns", "wirelen")

    def __init__(self, data: bytes, wirelen: int, ts_ns: int, iface: int, csum_not_ready: bool = False) -> None:
        self.csum_not_ready = csum_not_ready
        self.data = data
        self.wirelen = wirelen
        self.ts_ns = ts_ns
        self.iface = iface


class FrameBatch(list):  # type: ignore[type-arg]
    """Frames from one socket read; Scapy's sniffer sets ``sniffed_on`` on it."""

    sniffed_on: Any = None


def _frame_socket_class() -> type:
    """A Scapy ``L2ListenSocket`` whose ``recv`` returns :class:`Frame` (built lazily: Scapy is slow to import)."""
    import scapy.layers.l2  # noqa: F401  (registers Ethernet & co. as link layers for the sockets)
    from scapy.arch.linux import L2ListenSocket

    class FrameSocket(L2ListenSocket):
        netsift_index = 0
        snaplen = DEFAULT_SNAPLEN
        loopback = False

        def recv(self, x: int = 0, **kwargs: Any) -> FrameBatch | None:  # type: ignore[override]
            """Every frame waiting on the socket, up to :data:`BATCH_FRAMES` (the sniffer's select said one is)."""
            batch = FrameBatch()
            flags = socket.MSG_TRUNC
            for _ in range(BATCH_FRAMES):
                try:
                    data, anc, _flags, sa = self.ins.recvmsg(self.snaplen, _CMSG_SPACE, flags)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == 100:  # ENETDOWN: the interface went down; keep waiting
                        break
                    raise
                flags = socket.MSG_TRUNC | socket.MSG_DONTWAIT
                if self.loopback and sa[2] == socket.PACKET_OUTGOING:
                    continue  # loopback delivers every frame twice, out and in; keep one (as libpcap does)
                wirelen = len(data)  # the real length comes with the auxiliary data (tp_len)
                ts_ns = 0
                csum = False
                for level, ctype, cdata in anc:
                    if level == SOL_PACKET and ctype == PACKET_AUXDATA and len(cdata) >= 20:
                        status, tp_len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(cdata)
                        wirelen = tp_len
                        csum = bool(status & TP_STATUS_CSUMNOTREADY)
                        if tci or status & TP_STATUS_VLAN_VALID:
                            tag = struct.pack("!HH", tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100, tci)
                            data = data[:12] + tag + data[12:]
                            wirelen += 4
                    elif level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(cdata) >= 16:
                        sec, nsec = _TIMESPEC.unpack_from(cdata)
                        ts_ns = sec * 1_000_000_000 + nsec
                if not ts_ns:
                    ts_ns = time.time_ns()
                batch.append(Frame(data, max(wirelen, len(data)), ts_ns, self.netsift_index, csum))
            return batch if batch else None

    return FrameSocket


@dataclass
class InterfaceState:
    name: str
    link_type: int
    sock: Any
    received: int = 0  # kernel tp_packets, summed (the kernel resets them on read)
    dropped: int = 0  # kernel tp_drops, summed
    packets: int = 0  # frames netsift wrote
    checksum_not_ready: int = 0  # frames whose checksum the kernel left to offload (TP_STATUS_CSUMNOTREADY)

    def poll_stats(self) -> None:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            raw = self.sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            got, drops = struct.unpack("=II", raw)
            self.received += got
            self.dropped += drops


def _grow_buffer(s: socket.socket, size: int) -> None:
    """A kernel receive buffer of ``size`` bytes (Scapy asks for 64 KiB, a few hundred frames).

    SO_RCVBUFFORCE (root) ignores net.core.rmem_max; SO_RCVBUF is capped by it.
    """
    for opt in (33, socket.SO_RCVBUF):  # 33: SO_RCVBUFFORCE
        try:
            s.setsockopt(socket.SOL_SOCKET, opt, size)
            return
        except OSError:
            continue


def open_interfaces(names: list[str], bpf: str | None, promisc: bool, snaplen: int,
                    buffer_bytes: int = DEFAULT_BUFFER) -> list[InterfaceState]:
    """Open one listening socket per interface; errors are one sentence."""
    from scapy.error import Scapy_Exception

    cls = _frame_socket_class()
    out: list[InterfaceState] = []
    known = {n for _i, n in socket.if_nameindex()}
    try:
        for index, name in enumerate(names):
            if name not in known:
                raise UsageError(f"no interface named {name!r} (interfaces here: {', '.join(sorted(known))})")
            try:
                sock = cls(iface=name, filter=bpf, promisc=promisc)
            except PermissionError:
                raise PrivilegeError(
                    f"capturing on {name} needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode): "
                    "run as root, or grant them to the interpreter "
                    "(setcap cap_net_raw,cap_net_admin=eip <python>)") from None
            except Scapy_Exception as exc:
                raise UsageError(f"capture filter {bpf!r} is not valid BPF ({exc})") from None
            except OSError as exc:
                raise NetsiftError(f"cannot capture on {name}: {exc.strerror or exc}") from None
            sock.netsift_index = index
            sock.snaplen = snaplen
            _grow_buffer(sock.ins, buffer_bytes)
            hatype = sock.ins.getsockname()[3]
            sock.loopback = hatype == 772  # ARPHRD_LOOPBACK
            link = ARPHRD_TO_LINKTYPE.get(hatype)
            if link is None:
                sock.close()
                raise UsageError(f"{name}: its hardware type {hatype} has no link type netsift can write")
            out.append(InterfaceState(name, link, sock))
    except BaseException:
        for s in out:
            s.sock.close()
        raise
    return out


class Spool:
    """The pcapng files the capture goes to: ``path`` (rotated by size) or a temporary file."""

    def __init__(self, path: str | None, rotate_bytes: int | None, interfaces: list[InterfaceState],
                 bpf: str | None, snaplen: int) -> None:
        self.keep = path is not None
        self.tmpdir = None if path else tempfile.mkdtemp(prefix="netsift-live-")
        self.base = path or os.path.join(self.tmpdir or ".", "live.pcapng")
        self.rotate_bytes = rotate_bytes
        self.interfaces = interfaces
        self.bpf = bpf
        self.snaplen = snaplen
        self.files: list[str] = []
        self.writer: PcapngWriter | None = None
        self.first_ts = 0
        self._open()

    def _name(self, n: int) -> str:
        if not self.rotate_bytes:
            return self.base
        stem, ext = os.path.splitext(self.base)
        return f"{stem}_{n:05d}{ext or '.pcapng'}"

    def _open(self) -> None:
        from . import __version__

        path = self._name(len(self.files) + 1)
        try:
            self.writer = PcapngWriter.open(path, application=f"netsift {__version__} live")
        except OSError as exc:
            raise NetsiftError(f"{path}: cannot write the capture ({exc.strerror or exc})") from None
        for itf in self.interfaces:
            self.writer.add_interface(itf.link_type, self.snaplen, name=itf.name, bpf_filter=self.bpf)
        self.files.append(path)

    def _close(self, ts_ns: int, poll: bool = True) -> None:
        if self.writer is None:
            return
        for i, itf in enumerate(self.interfaces):
            if poll:
                itf.poll_stats()
            self.writer.write_stats(i, ts_ns, received=itf.received, dropped=itf.dropped,
                                    start_ns=self.first_ts or None, end_ns=ts_ns)
        self.writer.close()
        self.writer = None

    def write(self, f: Frame) -> None:
        assert self.writer is not None
        if not self.first_ts:
            self.first_ts = f.ts_ns
        self.writer.write_packet(f.iface, f.ts_ns, f.data, wirelen=f.wirelen)
        if self.rotate_bytes and self.writer.bytes_written >= self.rotate_bytes:
            self._close(f.ts_ns)
            self._open()

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """The last file's statistics are the counts polled last (see :func:`run_live`)."""
        self._close(time.time_ns(), poll=False)

    def cleanup(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


@dataclass
class LiveOptions:
    interfaces: list[str]
    bpf: str | None = None
    count: int = 0
    duration: float = 0.0
    write: str | None = None
    rotate_mb: float = 0.0
    snaplen: int = DEFAULT_SNAPLEN
    promisc: bool = True
    buffer_mb: float = DEFAULT_BUFFER / 1024 / 1024
    stats_interval: float = 2.0
    alert_interval: float = 10.0
    detect: bool = True
    config_path: str | None = None
    top_n: int = 10


@dataclass
class LiveState:
    started_ns: int = 0
    packets: int = 0
    bytes: int = 0
    stop_reason: str = "interrupted"
    alerts: dict[str, str] = field(default_factory=dict)  # finding id → severity emitted
    interim_runs: int = 0
    interim_s: float = 0.0


StatsSink = Callable[[dict[str, Any]], None]
AlertSink = Callable[[dict[str, Any]], None]


class RollingStats:
    """Statistics of the frames seen so far, through netsift's decoder (for the live view)."""

    def __init__(self, interfaces: list[InterfaceState]) -> None:
        from .pipeline import _decoder
        from .stats import TrafficStats

        self.decode = _decoder("fast")
        self.stats = TrafficStats()
        self.links = [itf.link_type for itf in interfaces]
        self.frames = 0

    def update(self, frames: list[Frame]) -> None:
        from .capture import RecordBatch

        if not frames:
            return
        caplen = np.fromiter((len(f.data) for f in frames), dtype=np.int64, count=len(frames))
        off = np.zeros(len(frames), dtype=np.int64)
        if len(frames) > 1:
            np.cumsum(caplen[:-1], out=off[1:])
        buf = np.frombuffer(b"".join(f.data for f in frames), dtype=np.uint8)
        batch = RecordBatch(
            buf=buf, off=off, caplen=caplen,
            wirelen=np.fromiter((f.wirelen for f in frames), dtype=np.int64, count=len(frames)),
            ts_ns=np.fromiter((f.ts_ns for f in frames), dtype=np.int64, count=len(frames)),
            link_type=np.fromiter((self.links[f.iface] for f in frames), dtype=np.int32, count=len(frames)),
            iface=np.fromiter((f.iface for f in frames), dtype=np.int32, count=len(frames)),
            first_frame=self.frames + 1,
        )
        self.stats.update(self.decode(batch), batch)
        self.frames += len(frames)

    def snapshot(self, top_n: int) -> dict[str, Any]:
        rep = self.stats.to_report(top_n)
        return {"protocols": rep.get("protocols", []), "top_talkers": rep.get("top_talkers", {})}


def run_live(opts: LiveOptions, on_stats: StatsSink | None = None, on_alert: AlertSink | None = None,
             warn: Callable[[str], None] | None = None, on_start: StatsSink | None = None) -> tuple[list[str], Spool, LiveState,
                                                                     list[InterfaceState]]:
    """Capture until count/duration/Ctrl-C/SIGTERM; return the spool files and what happened."""
    from scapy.sendrecv import AsyncSniffer

    if opts.count < 0 or opts.duration < 0:
        raise UsageError("--count and --duration must not be negative")
    if not 64 <= opts.snaplen <= DEFAULT_SNAPLEN:
        raise UsageError(f"--snaplen must be 64 to {DEFAULT_SNAPLEN}, got {opts.snaplen}")
    if not 1 <= opts.buffer_mb <= 1024:
        raise UsageError(f"--buffer-mb must be 1 to 1024, got {opts.buffer_mb:g}")
    rotate = int(opts.rotate_mb * 1_000_000) if opts.rotate_mb else None
    if rotate is not None and not opts.write:
        raise UsageError("--rotate-mb needs -w FILE (the files to rotate)")
    interfaces = open_interfaces(opts.interfaces, opts.bpf, opts.promisc, opts.snaplen,
                                 int(opts.buffer_mb * 1024 * 1024))
    try:
        spool = Spool(opts.write, rotate, interfaces, opts.bpf, opts.snaplen)
    except BaseException:
        for itf in interfaces:
            itf.sock.close()
        raise
    state = LiveState(started_ns=time.time_ns())
    frames: queue.Queue[FrameBatch] = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()

    overflow: list[FrameBatch] = []  # reads made while stopping, when the queue was full

    def enqueue(b: FrameBatch) -> None:
        while True:
            try:
                frames.put(b, timeout=0.2)
                return
            except queue.Full:
                if stop.is_set():
                    overflow.append(b)
                    return

    sniffer = AsyncSniffer(opened_socket={itf.sock: itf.name for itf in interfaces},
                           prn=enqueue, store=False)
    old_term = None
    with contextlib.suppress(ValueError):
        old_term = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rolling = RollingStats(interfaces)
    started = time.monotonic()
    next_stats = started + opts.stats_interval
    next_alert = started + opts.alert_interval
    pending: list[Frame] = []

    def take(batch: list[Frame]) -> None:
        """Write frames to the spool (up to -c) and count them."""
        if opts.count:
            batch = batch[: max(0, opts.count - state.packets)]
        for f in batch:
            spool.write(f)
            state.bytes += f.wirelen
            itf = interfaces[f.iface]
            itf.packets += 1
            if f.csum_not_ready:
                itf.checksum_not_ready += 1
        state.packets += len(batch)
        pending.extend(batch)

    sniffer.start()
    if on_start is not None:
        on_start({"@timestamp": _iso(time.time_ns()),
                  "event": {"kind": "event", "action": "capture-started", "module": "netsift",
                            "dataset": "netsift.live"},
                  "interfaces": [{"name": i.name, "link_type": i.link_type} for i in interfaces],
                  "filter": opts.bpf, "files": spool.files if spool.keep else []})
    try:
        while True:
            now = time.monotonic()
            if stop.is_set():
                state.stop_reason = "terminated"
                break
            if opts.duration and now - started >= opts.duration:
                state.stop_reason = "duration"
                break
            if opts.count and state.packets >= opts.count:
                state.stop_reason = "count"
                break
            thread = getattr(sniffer, "thread", None)
            if not sniffer.running and frames.empty() and thread is not None and not thread.is_alive():
                state.stop_reason = "interfaces closed"
                break
            try:
                batch: FrameBatch | None = frames.get(timeout=0.1)
            except queue.Empty:
                batch = None
            while batch is not None:
                take(batch)
                if len(pending) >= 4096 or (opts.count and state.packets >= opts.count):
                    break
                try:
                    batch = frames.get_nowait()
                except queue.Empty:
                    batch = None
            if len(pending) >= 4096 or (pending and now >= next_stats):
                rolling.update(pending)
                pending = []
            if now >= next_stats:
                next_stats = now + opts.stats_interval
                for itf in interfaces:
                    itf.poll_stats()
                if on_stats is not None:
                    on_stats(_stats_event(state, interfaces, rolling, opts.top_n, now - started))
            if opts.detect and on_alert is not None and now >= next_alert:
                spool.flush()
                t0 = time.monotonic()
                _interim_alerts(spool.files, opts, state, on_alert, warn)
                took = time.monotonic() - t0
                state.interim_runs += 1
                state.interim_s += took
                # never spend more than a fifth of the time re-reading the spool
                next_alert = time.monotonic() + max(opts.alert_interval, 4 * took)
    except KeyboardInterrupt:
        state.stop_reason = "interrupted"
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            sniffer.stop(join=True)
        # nothing read is lost: what the sniffer queued but the loop had not written
        # yet, then what still waits in the sockets' buffers
        rest: list[Frame] = []
        with contextlib.suppress(queue.Empty):
            while True:
                rest.extend(frames.get_nowait())
        for b in overflow:
            rest.extend(b)
        # the kernel's counts are read before each last look at the buffers, until a
        # look finds nothing: every frame counted received is then written (or cut by -c)
        for _round in range(100):
            for itf in interfaces:
                itf.poll_stats()
            for itf in interfaces:
                rest.extend(_drain(itf))
            if not rest:
                break
            take(rest)
            rest = []
        if old_term is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, old_term)
        spool.close()
        for itf in interfaces:
            with contextlib.suppress(Exception):
                itf.sock.close()
    if pending:
        rolling.update(pending)
    if on_stats is not None:
        on_stats(_stats_event(state, interfaces, rolling, opts.top_n, time.monotonic() - started, final=True))
    return spool.files, spool, state, interfaces


def _drain(itf: InterfaceState, limit: int = 1000) -> list[Frame]:
    """Frames still waiting in an interface's socket buffer (read without blocking)."""
    import select

    out: list[Frame] = []
    with contextlib.suppress(OSError, ValueError):
        for _ in range(limit):
            ready, _w, _x = select.select([itf.sock.ins], [], [], 0)
            if not ready:
                break
            batch = itf.sock.recv()
            if batch:
                out.extend(batch)
    return out


def _stats_event(state: LiveState, interfaces: list[InterfaceState], rolling: RollingStats, top_n: int,
                 elapsed: float, final: bool = False) -> dict[str, Any]:
    snap = rolling.snapshot(top_n)
    return {
        "@timestamp": _iso(time.time_ns()),
        "event": {"kind": "metric", "action": "stats", "module": "netsift", "dataset": "netsift.live"},
        "final": final,
        "elapsed_s": round(elapsed, 3),
        "packets": state.packets,
        "bytes": state.bytes,
        "packets_per_s": round(state.packets / elapsed, 1) if elapsed > 0 else None,
        "bits_per_s": round(state.bytes * 8 / elapsed) if elapsed > 0 else None,
        "interfaces": [{"name": i.name, "packets": i.packets, "kernel_received": i.received,
                        "kernel_dropped": i.dropped} for i in interfaces],
        "protocols": sorted(({"path": p["path"], "frames": p["frames"], "bytes": p["bytes"]}
                             for p in snap["protocols"] if p.get("depth", 0) > 0),
                            key=lambda p: -p["frames"])[:top_n],
        "top_talkers": (snap["top_talkers"].get("by_bytes") or {}).get("sources", [])[:top_n],
        "alerts": len(state.alerts),
    }


def _interim_alerts(files: list[str], opts: LiveOptions, state: LiveState, on_alert: AlertSink,
                    warn: Callable[[str], None] | None) -> None:
    from .detect import Severity
    from .pipeline import analyze

    try:
        rep = analyze(files, top_n=opts.top_n, report_flows=0, config_path=opts.config_path)
    except NetsiftError as exc:
        if warn is not None:
            warn(f"interim analysis failed: {exc}")
        return
    for f in rep.data.get("findings", {}).get("items", []):
        seen = state.alerts.get(f["id"])
        if seen is None or Severity.parse(f["severity"]) > Severity.parse(seen):
            state.alerts[f["id"]] = f["severity"]
            on_alert(f)


def live_section(opts: LiveOptions, spool: Spool, state: LiveState,
                 interfaces: list[InterfaceState]) -> dict[str, Any]:
    """The report's ``live`` section: what was captured, how, and what the kernel dropped."""
    stopped = time.time_ns()
    return {
        "interfaces": [{"name": i.name, "link_type": i.link_type, "packets": i.packets,
                        "kernel_received": i.received, "kernel_dropped": i.dropped,
                        "checksum_not_ready": i.checksum_not_ready} for i in interfaces],
        "filter": opts.bpf,
        "snaplen": opts.snaplen,
        "promiscuous": opts.promisc,
        "started": _iso(state.started_ns),
        "stopped": _iso(stopped),
        "duration_s": round((stopped - state.started_ns) / 1e9, 3),
        "stop_reason": state.stop_reason,
        "packets": state.packets,
        "bytes": state.bytes,
        "files": spool.files if spool.keep else [],
        "interim_analyses": state.interim_runs,
        "interim_analysis_s": round(state.interim_s, 3),
        "alerts_emitted": len(state.alerts),
    }
