"""The analyze pipeline: inputs → readers → decoder → statistics → :class:`Report`.

``analyze(paths)`` is the public entry point (also exported as
``netsift.analyze``).  Inputs may be files, globs or directories; directories
are searched recursively and every file in them whose first bytes are a
pcap/pcapng (or gzip of one) magic is read, others are listed as skipped.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from . import __version__
from .applayer import AppLayer
from .capture import CaptureReader, RecordBatch, sniff_format
from .columns import LINK_TYPES, PacketColumns, link_type_name
from .defrag import FragmentTracker, Reassembled
from .detect import Detectors, FinishContext
from .errors import InputNotFoundError, InputUnreadableError, NetsiftError, UsageError
from .flow_summary import FlowSummary
from .flows import RAW_FIELDS, FlowConfig, FlowOut, FlowRecord, FlowTable
from .quality import verdict
from .report import SCHEMA_VERSION, Report
from .stats import TrafficStats

ENGINES = ("fast", "scapy")
_FIRST_FILE = RAW_FIELDS.index("first_file")
_FIRST_FRAME = RAW_FIELDS.index("first_frame")

#: Progress callback: (bytes of input consumed so far, total input bytes, packets so far).
Progress = Callable[[int, int, int], None]


@dataclass
class InputPlan:
    files: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)


def expand_inputs(paths: Iterable[str]) -> InputPlan:
    """Resolve files, globs and directories into an ordered list of capture files."""
    plan = InputPlan(files=[])
    seen: set[str] = set()
    for raw in paths:
        if os.path.isdir(raw):
            found = sorted(
                os.path.join(root, name) for root, _dirs, names in os.walk(raw) for name in names
            )
            for f in found:
                try:
                    sniff_format(f)
                except NetsiftError as exc:
                    plan.skipped.append({"path": f, "reason": str(exc)})
                    continue
                if f not in seen:
                    seen.add(f)
                    plan.files.append(f)
            continue
        if os.path.exists(raw):
            matches = [raw]
        elif glob.has_magic(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                raise InputNotFoundError(f"{raw}: the pattern matches no file")
        else:
            _not_found(raw)
        for f in matches:
            if os.path.isdir(f):
                sub = expand_inputs([f])
                plan.skipped.extend(sub.skipped)
                new = [x for x in sub.files if x not in seen]
                seen.update(new)
                plan.files.extend(new)
                continue
            sniff_format(f)  # an explicitly named non-capture is an error, before any work
            if f not in seen:
                seen.add(f)
                plan.files.append(f)
    if not plan.files:
        raise InputNotFoundError("no capture files found in the given inputs")
    return plan


def _not_found(path: str) -> None:
    """Raise the right error for a path that does not seem to exist: missing, or behind a locked directory."""
    try:
        os.stat(path)
    except PermissionError:
        raise InputUnreadableError(f"{path}: permission denied (a directory on the path cannot be searched)") from None
    except OSError:
        pass
    raise InputNotFoundError(f"{path}: no such file or directory")


def _decoder(engine: str) -> Callable[[RecordBatch], PacketColumns]:
    if engine == "fast":
        from .decode_fast import decode

        return decode
    if engine == "scapy":
        from .decode_scapy import decode as scapy_decode

        return scapy_decode
    raise UsageError(f"--engine: unknown engine {engine!r} (choose from {', '.join(ENGINES)})")


def _ts(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


FLOW_ENGINES = ("auto", "c", "python")


def _flow_table(config: FlowConfig, engine: str) -> tuple[Any, str]:
    """The flow table for ``engine`` ('auto' = C when built) and the name of the one in use."""
    if engine not in FLOW_ENGINES:
        raise UsageError(
            f"--flow-engine: unknown engine {engine!r} (choose from {', '.join(FLOW_ENGINES)})"
        )
    try:
        from .flows_fast import make_flow_table
    except ImportError:
        if engine == "c":
            raise UsageError(
                "--flow-engine c: the C flow engine is not built in this installation"
            ) from None
        return FlowTable(config), "python"
    try:
        table = make_flow_table(config, engine)
    except RuntimeError as exc:
        raise UsageError(f"--flow-engine {engine}: {exc}") from None
    return table, "python" if isinstance(table, FlowTable) else "c"


def analyze(
    paths: Iterable[str] | str,
    engine: str = "fast",
    top_n: int = 20,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    flows: bool = True,
    flow_config: FlowConfig | None = None,
    flow_engine: str = "auto",
    flows_path: str | None = None,
    report_flows: int = 1000,
    app: bool = True,
    detect: bool = True,
    config_path: str | None = None,
    detectors: Detectors | None = None,
) -> Report:
    """Analyze captures and return the :class:`Report` (raises :class:`NetsiftError` on bad input).

    With ``flows`` (the default) packets are also sessionized (:mod:`netsift.flows`),
    IP fragments reassembled (:mod:`netsift.defrag`) and the report gains ``flows``
    and ``fragments`` sections; ``flows_path`` streams every flow record to a file
    (:mod:`netsift.flow_export`); ``report_flows`` caps the flow records in the
    report (the largest by bytes).  With ``app`` (the default; needs ``flows``)
    DNS, TLS, QUIC and HTTP are read from the flows' payloads
    (:mod:`netsift.applayer`): the report gains ``dns``, ``tls`` and ``http``
    sections and flow records their summaries.  With ``detect`` (the default) the
    detectors (:mod:`netsift.detect`) run, configured by the TOML file ``config_path``,
    and the report gains a ``findings`` section; ``detectors`` runs a ready
    :class:`~netsift.detect.Detectors` instead (its state can be read afterwards).
    """
    if isinstance(paths, str):
        paths = [paths]
    with _few_gc_passes():
        return _analyze(paths, engine, top_n, progress, warn, flows, flow_config, flow_engine,
                        flows_path, report_flows, app, detect, config_path, detectors)  # fmt: skip


@contextlib.contextmanager
def _few_gc_passes() -> Iterator[None]:
    """Run the young-generation collector every 50,000 allocations instead of 700.

    The flow stage allocates a tuple per finished flow (about 100,000 per
    million packets); at Python's default threshold the cyclic collector runs
    hundreds of times over the live ones, about a tenth of the run's time.
    Nothing here creates reference cycles, so the collector has nothing to find.
    """
    old = gc.get_threshold()
    gc.set_threshold(50_000, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _analyze(
    paths: Iterable[str],
    engine: str,
    top_n: int,
    progress: Progress | None,
    warn: Callable[[str], None] | None,
    flows: bool,
    flow_config: FlowConfig | None,
    flow_engine: str,
    flows_path: str | None,
    report_flows: int,
    app: bool,
    detect: bool,
    config_path: str | None,
    detectors: Detectors | None = None,
) -> Report:
    decode = _decoder(engine)
    if detectors is None and detect:
        detectors = Detectors.from_file(config_path)
    plan = expand_inputs(paths)
    if report_flows < 0:
        raise UsageError(f"--report-flows must be 0 or more, got {report_flows}")
    started = time.monotonic()
    total_bytes = sum(os.path.getsize(f) for f in plan.files)
    done_bytes = 0
    stats = TrafficStats()
    inputs: list[dict[str, Any]] = []
    interrupted = False
    sessions: _Sessions | None = None
    if flows:
        from .flow_export import FlowWriter

        config = flow_config or FlowConfig()
        table, used = _flow_table(config, flow_engine)
        writer = FlowWriter(flows_path, inputs=plan.files) if flows_path else None
        sessions = _Sessions(
            table, used, FragmentTracker(), FlowSummary(max(top_n, report_flows)), writer, decode,
            AppLayer() if app else None, detectors,
        )
    try:
        for index, path in enumerate(plan.files):
            file_stats = _FileFigures()
            reader = CaptureReader(path, file_index=index)
            try:
                with reader:
                    for batch in reader.batches():
                        cols = decode(batch)
                        stats.update(cols, batch)
                        file_stats.update(batch)
                        if sessions is not None:
                            sessions.update(cols, batch)
                        if progress is not None:
                            progress(done_bytes + reader.position(), total_bytes, stats.packets)
            except KeyboardInterrupt:
                interrupted = True
            done_bytes += reader.info.file_bytes
            for w in reader.warnings:
                if warn is not None:
                    warn(f"{path}: {w.message}")
            inputs.append(_input_section(reader, file_stats))
            if interrupted:
                break
        if sessions is not None:
            sessions.finish()
    except BaseException:
        if sessions is not None and sessions.writer is not None:
            sessions.writer.abort()
        raise
    elapsed = time.monotonic() - started
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "netsift", "version": __version__},
        "run": {
            "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "engine": engine,
            "elapsed_s": round(elapsed, 3),
            "packets_per_s": round(stats.packets / elapsed) if elapsed > 0 else None,
            "partial": interrupted,
        },
        "inputs": inputs,
        "skipped_inputs": plan.skipped,
        "capture": _capture_section(stats, inputs),
    }
    data["quality"] = verdict(stats, inputs)
    data.update(stats.to_report(top_n))
    if sessions is not None:
        data["flows"] = sessions.flows_section(top_n, report_flows, flows_path)
        data["fragments"] = sessions.fragments.summary()
        if sessions.app is not None:
            data.update(sessions.app.sections(top_n))
    if detectors is not None:
        ctx = FinishContext(data, sessions.fragments if sessions is not None else None, list(plan.files))
        findings = detectors.finish(ctx)
        data["findings"] = detectors.section(findings, list(plan.files))
        data["findings"]["inputs_seen"] = {"flows": flows, "app": flows and app}
    return Report(data)


class _Sessions:
    """The flow stage: fragment reassembly feeding the flow table, and the finished-flow sinks."""

    def __init__(
        self,
        table: Any,
        engine: str,
        fragments: FragmentTracker,
        summary: FlowSummary,
        writer: Any,
        decode: Callable[[RecordBatch], PacketColumns],
        app: AppLayer | None = None,
        detectors: Detectors | None = None,
    ) -> None:
        self.app = app
        self.detectors = detectors
        if app is not None and detectors is not None and detectors.wants_dns:
            app.dns_sink = detectors.dns
        self.table = table
        self.engine = engine
        self.fragments = fragments
        self.summary = summary
        self.writer = writer
        self.decode = decode

    def update(self, cols: PacketColumns, batch: RecordBatch) -> None:
        done = self.fragments.update(cols, batch) if cols.is_fragment.any() else []
        app = self.app
        out = FlowOut(len(cols)) if app is not None else None
        if app is not None and app.events is not None:
            app.events = {}
        if not done:
            self.table.update(cols, batch, out=out)
            if app is not None and out is not None:
                app.update(cols, batch, out)
        else:
            # Keep packet order: a datagram enters the flow table right after the
            # fragment that completed it.  All of a batch's datagrams are decoded
            # in one call, then fed in slices between the batch's own slices.
            at = np.searchsorted(cols.frame, [d.frames[-1] for d in done], side="right").tolist()
            order = sorted(range(len(done)), key=lambda k: at[k])
            done = [done[k] for k in order]
            at = [at[k] for k in order]
            dbatch = _datagram_batch(done)
            dcols = self.decode(dbatch)
            dout = FlowOut(len(dcols)) if app is not None else None
            frames = [(d.file_index, d.frames[-1]) for d in done]
            start = k = 0
            while k < len(done):
                cut = at[k]
                k2 = k
                while k2 < len(done) and at[k2] == cut:
                    k2 += 1
                if cut > start:
                    self.table.update(cols, batch, start, cut, out=out)
                    start = cut
                self.table.update_reassembled(dcols, dbatch, frames[k:k2], k, k2, out=dout)
                k = k2
            if start < len(cols):
                self.table.update(cols, batch, start, len(cols), out=out)
            if app is not None and out is not None and dout is not None:
                app.update(cols, batch, out)
                app.update(dcols, dbatch, dout, frames)
        self._sink()

    def _sink(self) -> None:
        raw = self.table.drain_raw()
        if raw and self.app is not None:
            raw = self._with_app(raw)
        if raw:
            self.summary.add(raw)
            records = None
            if self.writer is not None:
                records = list(map(FlowRecord.from_raw, raw))
                self.writer.write(records)
            if self.detectors is not None:
                self.detectors.flows(records if records is not None else list(map(FlowRecord.from_raw, raw)))

    def _with_app(self, raw: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Finished flows with their application summaries appended (see FlowRecord.app)."""
        assert self.app is not None
        pop = self.app.pop
        out = []
        for r in raw:
            info = pop((r[_FIRST_FILE] << 40) | r[_FIRST_FRAME])  # flows.flow_id, inlined
            out.append(r if info is None else (*r, info))
        return out

    def finish(self) -> None:
        self.fragments.finish()
        # end the live flows in chunks, so their records never all exist at once
        while self.table.finish(65_536):
            self._sink()
        self._sink()
        if self.app is not None:
            self.app.finish()
        if self.writer is not None:
            self.writer.close()

    def flows_section(
        self, top_n: int, report_flows: int, flows_path: str | None
    ) -> dict[str, Any]:
        t, s = self.table, self.summary
        # the largest flows by bytes up to report_flows, and every flow the top lists name;
        # each record rendered once (its uid and Community ID are hashes)
        records = _union(s.top_bytes[: max(report_flows, top_n)], s.top_packets[:top_n])
        rendered = [r.to_dict() for r in records]
        uid = {_first_packet(r): d["uid"] for r, d in zip(records, rendered, strict=True)}
        c = t.config
        return {
            "engine": self.engine,
            "config": {
                "tcp_timeout_s": c.tcp_timeout_s,
                "udp_timeout_s": c.udp_timeout_s,
                "icmp_timeout_s": c.icmp_timeout_s,
                "other_timeout_s": c.other_timeout_s,
                "tcp_attempt_s": c.tcp_attempt_s,
                "tcp_close_s": c.tcp_close_s,
                "active_timeout_s": c.active_timeout_s or None,
                "max_flows": c.max_flows,
                "vlan_in_key": c.vlan_in_key,
            },
            "total": s.flows,
            "peak_live": t.peak_flows,
            "evicted": t.expired.get("evicted", 0),
            "by_transport": dict(sorted(s.by_transport.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_conn_state": {
                k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
                for k, v in sorted(s.by_state.items())
            },
            "by_expiration": {k: v for k, v in t.expired.items() if v},
            "packets_not_in_flows": dict(t.skipped),
            "tcp_analysis": dict(s.tcp_analysis),
            "top_by_bytes": [uid[_first_packet(r)] for r in s.top_bytes[:top_n]],
            "top_by_packets": [uid[_first_packet(r)] for r in s.top_packets[:top_n]],
            "records": rendered,
            "records_complete": len(records) == s.flows,
            "export": {"path": flows_path, "records": self.writer.written}
            if self.writer is not None
            else None,
        }


def _first_packet(r: FlowRecord) -> tuple[int, int, int]:
    """What identifies a flow record: no two flows start with the same packet."""
    return (r.start_ns, r.first_file, r.first_frame)


def _union(a: list[FlowRecord], b: list[FlowRecord]) -> list[FlowRecord]:
    seen = {_first_packet(r) for r in a}
    return a + [r for r in b if _first_packet(r) not in seen]


def _datagram_batch(done: list[Reassembled]) -> RecordBatch:
    """Reassembled datagrams as a raw-IP batch (LINKTYPE_RAW) for the decoder."""
    lens = np.array([len(d.data) for d in done], dtype=np.int64)
    off = np.zeros(len(done), dtype=np.int64)
    off[1:] = np.cumsum(lens)[:-1]
    return RecordBatch(
        buf=np.frombuffer(b"".join(d.data for d in done), dtype=np.uint8),
        off=off,
        caplen=lens,
        wirelen=lens.copy(),
        ts_ns=np.array([d.ts_ns for d in done], dtype=np.int64),
        link_type=np.full(len(done), 101, dtype=np.int32),
        iface=np.zeros(len(done), dtype=np.int32),
        first_frame=done[0].frames[-1],
        file_index=done[0].file_index,
    )


class _FileFigures:
    """Per-file counters (the combined ones live in :class:`TrafficStats`)."""

    def __init__(self) -> None:
        self.packets = 0
        self.wire_bytes = 0
        self.captured_bytes = 0
        self.first: int | None = None
        self.last: int | None = None
        self.truncated = 0
        self.link_types: dict[int, int] = {}

    def update(self, b: RecordBatch) -> None:
        n = len(b)
        if not n:
            return
        self.packets += n
        self.wire_bytes += int(b.wirelen.sum())
        self.captured_bytes += int(b.caplen.sum())
        self.truncated += int(np.count_nonzero(b.caplen < b.wirelen))
        lo, hi = int(b.ts_ns.min()), int(b.ts_ns.max())
        self.first = lo if self.first is None else min(self.first, lo)
        self.last = hi if self.last is None else max(self.last, hi)
        for lt, k in zip(*np.unique(b.link_type, return_counts=True), strict=True):
            self.link_types[int(lt)] = self.link_types.get(int(lt), 0) + int(k)


def _link_rows(counts: dict[int, int]) -> list[dict[str, Any]]:
    return [
        {"link_type": lt, "name": link_type_name(lt), "packets": k}
        for lt, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _input_section(reader: CaptureReader, f: _FileFigures) -> dict[str, Any]:
    info = reader.info
    duration = (f.last - f.first) / 1e9 if f.first is not None and f.last is not None else 0.0
    return {
        "path": info.path,
        "format": info.format,
        "compression": info.compression,
        "byte_order": info.byte_order,
        "version": info.version,
        "ts_precision": info.ts_precision or None,
        "file_bytes": info.file_bytes,
        "sections": info.sections,
        "interfaces": [
            {
                "index": i,
                "link_type": itf.link_type,
                "link_type_name": link_type_name(itf.link_type),
                "name": itf.name or None,
                "snaplen": itf.snaplen,
                "ts_resolution": f"{itf.tsresol[0]}^-{itf.tsresol[1]}",
                "ts_offset_s": itf.tsoffset_s,
                "received": itf.received,
                "dropped_by_interface": itf.dropped_by_interface,
                "dropped_by_os": itf.dropped_by_os,
            }
            for i, itf in enumerate(info.interfaces)
        ],
        "packets": f.packets,
        "bytes": f.wire_bytes,
        "captured_bytes": f.captured_bytes,
        "snaplen_truncated": f.truncated,
        "first_ts": _ts(f.first),
        "last_ts": _ts(f.last),
        "duration_s": duration,
        "link_types": _link_rows(f.link_types),
        "status": "damaged" if reader.truncated else "ok",
        "warnings": [
            {"code": w.code, "message": w.message, "offset": w.offset} for w in reader.warnings
        ],
        "skipped_records": dict(reader.skipped),
    }


def _capture_section(stats: TrafficStats, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    duration = stats.duration_s()
    unsupported = sum(k for lt, k in stats.link_types.items() if lt not in LINK_TYPES)
    return {
        "files": len(inputs),
        "packets": stats.packets,
        "bytes": stats.wire_bytes,
        "captured_bytes": stats.captured_bytes,
        "first_ts": _ts(stats.first_ts),
        "last_ts": _ts(stats.last_ts),
        "first_time": _iso(stats.first_ts),
        "last_time": _iso(stats.last_ts),
        "duration_s": duration,
        "avg_packets_per_s": stats.packets / duration if duration > 0 else None,
        "avg_bits_per_s": stats.wire_bytes * 8 / duration if duration > 0 else None,
        "avg_packet_bytes": stats.wire_bytes / stats.packets if stats.packets else None,
        "link_types": _link_rows(stats.link_types),
        "snaplens": sorted({itf["snaplen"] for i in inputs for itf in i["interfaces"]}),
        "snaplen_truncated": stats.snaplen_truncated,
        "damaged_files": sum(1 for i in inputs if i["status"] != "ok"),
        "skipped_records": sum(sum(i["skipped_records"].values()) for i in inputs),
        "unsupported_link_type_packets": unsupported,
        "ipv4_packets": stats.ip_packets[4],
        "ipv6_packets": stats.ip_packets[6],
        "ip_fragments": stats.fragments,
    }
