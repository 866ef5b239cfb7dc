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
from .capture import CHUNK_BYTES, CaptureReader, RecordBatch, sniff_format
from .columns import LINK_TYPES, PacketColumns, link_type_name
from .defrag import FragmentTracker, Reassembled
from .detect import Detectors, FinishContext
from .errors import InputNotFoundError, InputUnreadableError, NetsiftError, UsageError
from .flow_summary import FlowSummary
from .flows import EXPIRATIONS, RAW_FIELDS, SKIP_REASONS, FlowConfig, FlowOut, FlowRecord, FlowTable
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
    with few_gc_passes():
        return _analyze(paths, engine, top_n, progress, warn, flows, flow_config, flow_engine,
                        flows_path, report_flows, app, detect, config_path, detectors)  # fmt: skip


@contextlib.contextmanager
def few_gc_passes() -> Iterator[None]:
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


@dataclass
class RunOptions:
    """What a run does, apart from its inputs (sent to every worker of a split run)."""

    engine: str = "fast"
    top_n: int = 20
    flows: bool = True
    flow_config: FlowConfig | None = None
    flow_engine: str = "auto"
    flows_path: str | None = None
    report_flows: int = 1000
    app: bool = True
    detect: bool = True
    config_path: str | None = None
    #: bytes per read batch (tests make it small to exercise batch boundaries)
    chunk_bytes: int = CHUNK_BYTES


@dataclass
class FileResult:
    """One input file as one worker read it: the reader's findings and the worker's share of packets."""

    meta: dict[str, Any]
    figures: _FileFigures
    warnings: list[str]


@dataclass
class Partial:
    """The mergeable state of one run over the inputs, or of one worker's share of them.

    :func:`merge_partials` adds workers' partials; :func:`assemble` turns one
    into the report.  A run in one process is a single partial, so both paths
    render the same state the same way.
    """

    files: list[FileResult]
    stats: TrafficStats
    interrupted: bool = False
    #: one row per read batch: live flows, fragment trains and their bytes after it
    gauges: list[tuple[int, int, int]] = field(default_factory=list)
    flow_engine: str | None = None
    flow_config: FlowConfig | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    expired: dict[str, int] = field(default_factory=dict)
    summary: FlowSummary | None = None
    fragments: FragmentTracker | None = None
    app: AppLayer | None = None
    detectors: Detectors | None = None
    exported: int = 0
    #: a worker's spill of its finished flows, for the parent to write in order (split runs with --flows)
    spill: str | None = None
    #: each worker's wall seconds and peak resident memory (split runs)
    workers: list[dict[str, float]] = field(default_factory=list)


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
    opts = RunOptions(engine, top_n, flows, flow_config, flow_engine, flows_path, report_flows, app,
                      detect, config_path)  # fmt: skip
    _decoder(engine)  # an unknown engine is an error before any input is looked at
    if detectors is None and detect:
        detectors = Detectors.from_file(config_path)
    plan = expand_inputs(paths)
    check_options(opts)
    started = time.monotonic()
    part = run_part(plan.files, opts, progress=progress, warn=warn, detectors=detectors)
    return assemble(part, plan, opts, time.monotonic() - started)


def check_options(opts: RunOptions) -> None:
    """Errors in the options that no input is needed to find."""
    _decoder(opts.engine)
    if opts.report_flows < 0:
        raise UsageError(f"--report-flows must be 0 or more, got {opts.report_flows}")
    if opts.flows:
        _flow_table(opts.flow_config or FlowConfig(), opts.flow_engine)


def run_part(
    files: list[str],
    opts: RunOptions,
    part: tuple[int, int] | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    detectors: Detectors | None = None,
    stop: Callable[[], bool] | None = None,
    spill: str | None = None,
) -> Partial:
    """Read ``files`` and return the run's mergeable state.

    With ``part = (k, n)`` this is worker ``k`` of ``n`` (:mod:`netsift.partition`):
    it reads every packet, counts statistics over every n-th read batch, and
    keeps for the flow stage the packets whose flow is its own.  Its
    finished flows go to the pickle file ``spill`` (when flows are exported)
    for the parent to write in the order one process would have.  ``stop``
    is polled after every batch (a split run's Ctrl-C).
    """
    decode = _decoder(opts.engine)
    if detectors is None and opts.detect:
        detectors = Detectors.from_file(opts.config_path)
    total_bytes = sum(os.path.getsize(f) for f in files)
    done_bytes = 0
    stats = TrafficStats()
    results: list[FileResult] = []
    interrupted = False
    sessions: _Sessions | None = None
    if opts.flows:
        from .flow_export import FlowWriter

        config = opts.flow_config or FlowConfig()
        table, used = _flow_table(config, opts.flow_engine)
        if spill is not None:
            writer: Any = _Spill(spill)
        elif opts.flows_path:
            writer = FlowWriter(opts.flows_path, inputs=files)
        else:
            writer = None
        sessions = _Sessions(
            table, used, FragmentTracker(), FlowSummary(max(opts.top_n, opts.report_flows)), writer,
            decode, AppLayer() if opts.app else None, detectors,
        )
    k, n = part if part is not None else (0, 1)
    seq = 0
    try:
        for index, path in enumerate(files):
            file_stats = _FileFigures()
            reader = CaptureReader(path, file_index=index, chunk_bytes=opts.chunk_bytes)
            try:
                with reader:
                    for batch in reader.batches():
                        cols = decode(batch)
                        owner = seq % n == k
                        seq += 1
                        if owner:
                            stats.update(cols, batch)
                            file_stats.update(batch)
                        else:
                            stats.carry(cols, batch)
                        if sessions is not None:
                            if n == 1:
                                sessions.update(cols, batch)
                            else:
                                _update_share(sessions, cols, batch, k, n, owner)
                        if progress is not None:
                            progress(done_bytes + reader.position(), total_bytes, stats.packets)
                        if stop is not None and stop():
                            raise KeyboardInterrupt
            except KeyboardInterrupt:
                interrupted = True
            done_bytes += reader.info.file_bytes
            messages = [f"{path}: {w.message}" for w in reader.warnings]
            if warn is not None:
                for m in messages:
                    warn(m)
            results.append(FileResult(_reader_meta(reader), file_stats, messages))
            if interrupted:
                break
        if sessions is not None:
            sessions.finish()
    except BaseException:
        if sessions is not None and sessions.writer is not None:
            sessions.writer.abort()
        raise
    out = Partial(files=results, stats=stats, interrupted=interrupted, detectors=detectors)
    if sessions is not None:
        t = sessions.table
        out.gauges = sessions.gauges
        out.flow_engine = sessions.engine
        out.flow_config = t.config
        out.skipped = dict(t.skipped)
        out.expired = dict(t.expired)
        out.summary = sessions.summary
        out.fragments = sessions.fragments
        out.app = sessions.app
        out.exported = sessions.writer.written if sessions.writer is not None else 0
        out.spill = spill
        sessions.release()
    return out


def _update_share(sessions: _Sessions, cols: PacketColumns, batch: RecordBatch, k: int, n: int,
                  owner: bool) -> None:  # fmt: skip
    """Feed worker ``k`` of ``n`` its rows of a batch, on the whole batch's clock."""
    from .partition import rows_of

    clock = _clock(cols)
    rows = rows_of(cols, k, n, owner)
    share = (k, n, cols, batch)
    if rows is None:
        sessions.update(cols, batch, clock, share)
    elif len(rows) or cols.is_fragment.any():  # (another worker's fragments may complete one of mine)
        sessions.update(cols.take(rows), batch.take(rows), clock, share)
    else:
        sessions.tick(clock)


def _clock(cols: PacketColumns) -> tuple[int | None, int | None]:
    """A batch's clocks: its latest IP timestamp (flows) and its last row's (fragments)."""
    if not len(cols):
        return None, None
    ip = cols.ip_version > 0
    return (int(cols.ts_ns[ip].max()) if ip.any() else None), int(cols.ts_ns[-1])


def merge_partials(parts: list[Partial]) -> Partial:
    """Add the partials of a split run's workers (in worker order) into the first."""
    out = parts[0]
    for p in parts[1:]:
        out.interrupted |= p.interrupted
        only_theirs = p.files[len(out.files):]  # files an interrupted worker 0 did not reach
        for mine, theirs in zip(out.files, p.files, strict=False):
            mine.figures.merge(theirs.figures)
        out.files.extend(only_theirs)
        out.stats.merge(p.stats)
        if len(p.gauges) > len(out.gauges):
            out.gauges.extend([(0, 0, 0)] * (len(p.gauges) - len(out.gauges)))
        for i, g in enumerate(p.gauges):
            a = out.gauges[i]
            out.gauges[i] = (a[0] + g[0], a[1] + g[1], a[2] + g[2])
        for name in ("skipped", "expired"):
            mine_d, theirs_d = getattr(out, name), getattr(p, name)
            for key, v in theirs_d.items():
                mine_d[key] = mine_d.get(key, 0) + v
        if out.summary is not None and p.summary is not None:
            out.summary.merge(p.summary)
        if out.fragments is not None and p.fragments is not None:
            out.fragments.merge(p.fragments)
        if out.app is not None and p.app is not None:
            out.app.merge(p.app)
        if out.detectors is not None and p.detectors is not None:
            out.detectors.merge(p.detectors)
        out.exported += p.exported
        out.workers.extend(p.workers)
    return out


def assemble(part: Partial, plan: InputPlan, opts: RunOptions, elapsed: float, workers: int = 1,
             runner: str = "process") -> Report:  # fmt: skip
    """The report of a run's (merged) state."""
    stats = part.stats
    inputs = [_input_section(f.meta, f.figures) for f in part.files]
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "netsift", "version": __version__},
        "run": {
            "generated_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "engine": opts.engine,
            "elapsed_s": round(elapsed, 3),
            "packets_per_s": round(stats.packets / elapsed) if elapsed > 0 else None,
            "partial": part.interrupted,
            "workers": workers,
            "runner": runner,
        },
        "inputs": inputs,
        "skipped_inputs": plan.skipped,
        "capture": _capture_section(stats, inputs),
    }
    if part.workers:
        data["run"]["worker_runs"] = part.workers
    data["quality"] = verdict(stats, inputs)
    data.update(stats.to_report(opts.top_n))
    if part.summary is not None and part.fragments is not None:
        peaks = np.asarray(part.gauges, dtype=np.int64).reshape(-1, 3).max(axis=0, initial=0)
        part.fragments.counters["peak_trains"] = int(peaks[1])
        part.fragments.counters["peak_bytes"] = int(peaks[2])
        data["flows"] = _flows_section(part, int(peaks[0]), opts)
        data["fragments"] = part.fragments.summary()
        if part.app is not None:
            data.update(part.app.sections(opts.top_n))
    if part.detectors is not None:
        ctx = FinishContext(data, part.fragments, list(plan.files))
        findings = part.detectors.finish(ctx)
        data["findings"] = part.detectors.section(findings, list(plan.files))
        data["findings"]["inputs_seen"] = {"flows": opts.flows, "app": opts.flows and opts.app}
    return Report(data)


def _flows_section(part: Partial, peak_live: int, opts: RunOptions) -> dict[str, Any]:
    s, c, top_n = part.summary, part.flow_config, opts.top_n
    assert s is not None and c is not None
    # the largest flows by bytes up to report_flows, and every flow the top lists name;
    # each record rendered once (its uid and Community ID are hashes)
    records = _union(s.top_bytes[: max(opts.report_flows, top_n)], s.top_packets[:top_n])
    rendered = [r.to_dict() for r in records]
    uid = {_first_packet(r): d["uid"] for r, d in zip(records, rendered, strict=True)}
    expired = {k: part.expired.get(k, 0) for k in EXPIRATIONS}
    return {
        "engine": part.flow_engine,
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
        "peak_live": peak_live,
        "evicted": expired.get("evicted", 0),
        "by_transport": dict(sorted(s.by_transport.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_conn_state": {
            k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0])))
            for k, v in sorted(s.by_state.items())
        },
        "by_expiration": {k: v for k, v in expired.items() if v},
        "packets_not_in_flows": {k: part.skipped.get(k, 0) for k in SKIP_REASONS},
        "tcp_analysis": dict(s.tcp_analysis),
        "top_by_bytes": [uid[_first_packet(r)] for r in s.top_bytes[:top_n]],
        "top_by_packets": [uid[_first_packet(r)] for r in s.top_packets[:top_n]],
        "records": rendered,
        "records_complete": len(records) == s.flows,
        "export": {"path": opts.flows_path, "records": part.exported} if opts.flows_path else None,
    }


class _Spill:
    """A worker's finished flows, pickled in batches with the read batch that ended them."""

    def __init__(self, path: str) -> None:
        import pickle

        self._dump = pickle.dump
        self._f = open(path, "wb")  # noqa: SIM115 (closed by close/abort)
        self.written = 0
        self.batch = 0

    def write(self, raw: list[tuple[Any, ...]]) -> None:
        self._dump((self.batch, raw), self._f, protocol=5)
        self.written += len(raw)

    def close(self) -> None:
        self._f.close()

    def abort(self) -> None:
        self._f.close()


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
        table.auto_sweep = False  # flows expire at the end of each read batch (tick)
        self.engine = engine
        self.fragments = fragments
        self.summary = summary
        self.writer = writer
        self.decode = decode
        #: after each read batch: live flows, fragment trains, their bytes (see Partial.gauges)
        self.gauges: list[tuple[int, int, int]] = []
        #: a split run's worker: every datagram is reassembled here, the flow stage takes its own
        self.reassembler: FragmentTracker | None = None

    def update(self, cols: PacketColumns, batch: RecordBatch,
               clock: tuple[int | None, int | None] | None = None,
               share: tuple[int, int, PacketColumns, RecordBatch] | None = None) -> None:  # fmt: skip
        """Feed one read batch (or a worker's rows of it, with the whole batch's ``clock``)."""
        self._feed(cols, batch, share)
        self.tick(_clock(cols) if clock is None else clock)

    def tick(self, clock: tuple[int | None, int | None]) -> None:
        """End of a read batch: the flow and fragment clocks advance, finished flows are passed on."""
        flow_ts, frag_ts = clock
        if flow_ts is not None:
            self.table.advance(flow_ts)
        if frag_ts is not None:
            self.fragments.expire(frag_ts)
            if self.reassembler is not None:
                self.reassembler.expire(frag_ts)
        self._sink()
        self.gauges.append((self.table.live, *self.fragments.live))
        if isinstance(self.writer, _Spill):
            self.writer.batch += 1

    def _feed(self, cols: PacketColumns, batch: RecordBatch,
              share: tuple[int, int, PacketColumns, RecordBatch] | None = None) -> None:  # fmt: skip
        """Feed decoded rows; ``share`` = (k, n, the whole batch's columns and records) for
        worker k of n, whose ``cols`` are its rows (:mod:`netsift.partition`)."""
        if share is None:
            done = self.fragments.update(cols, batch) if cols.is_fragment.any() else []
        else:
            part, parts, all_cols, all_batch = share
            if cols.is_fragment.any():
                self.fragments.update(cols, batch)  # counted here; the datagrams come from below
            if self.reassembler is None:
                self.reassembler = FragmentTracker()
            done = self.reassembler.update(all_cols, all_batch) if all_cols.is_fragment.any() else []
            if done:  # the datagrams whose flow is this worker's
                from .partition import shares

                mine = shares(self.decode(_datagram_batch(done)), parts) == np.uint64(part)
                done = [d for d, keep in zip(done, mine.tolist(), strict=True) if keep]
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

    def _sink(self) -> None:
        raw = self.table.drain_raw()
        if raw and self.app is not None:
            raw = self._with_app(raw)
        if raw:
            # flows ending in one batch are passed on in the order they began, which
            # a split run (each worker ending its own share) can reproduce
            raw.sort(key=_begun)
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
        infos = self.app.pop_many([(r[_FIRST_FILE] << 40) | r[_FIRST_FRAME] for r in raw])  # flows.flow_id, inlined
        return [r if info is None else (*r, info) for r, info in zip(raw, infos, strict=True)]

    def release(self) -> None:
        """Drop what only reading needs (the flow table, the writer), keeping the mergeable state."""
        self.table = self.writer = self.decode = self.reassembler = None  # type: ignore[assignment]
        if self.app is not None:
            self.app.dns_sink = None

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


def _begun(raw: tuple[Any, ...]) -> tuple[int, int]:
    return raw[_FIRST_FILE], raw[_FIRST_FRAME]


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

    def merge(self, o: _FileFigures) -> None:
        self.packets += o.packets
        self.wire_bytes += o.wire_bytes
        self.captured_bytes += o.captured_bytes
        self.truncated += o.truncated
        self.first = min((t for t in (self.first, o.first) if t is not None), default=None)
        self.last = max((t for t in (self.last, o.last) if t is not None), default=None)
        for lt, k in o.link_types.items():
            self.link_types[lt] = self.link_types.get(lt, 0) + k


def _link_rows(counts: dict[int, int]) -> list[dict[str, Any]]:
    return [
        {"link_type": lt, "name": link_type_name(lt), "packets": k}
        for lt, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _reader_meta(reader: CaptureReader) -> dict[str, Any]:
    """What the reader found in a file (the same whichever worker read it)."""
    info = reader.info
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
        "status": "damaged" if reader.truncated else "ok",
        "warnings": [
            {"code": w.code, "message": w.message, "offset": w.offset} for w in reader.warnings
        ],
        "skipped_records": dict(reader.skipped),
    }


def _input_section(meta: dict[str, Any], f: _FileFigures) -> dict[str, Any]:
    duration = (f.last - f.first) / 1e9 if f.first is not None and f.last is not None else 0.0
    head = {k: meta[k] for k in ("path", "format", "compression", "byte_order", "version", "ts_precision",
                                 "file_bytes", "sections", "interfaces")}  # fmt: skip
    return {
        **head,
        "packets": f.packets,
        "bytes": f.wire_bytes,
        "captured_bytes": f.captured_bytes,
        "snaplen_truncated": f.truncated,
        "first_ts": _ts(f.first),
        "last_ts": _ts(f.last),
        "duration_s": duration,
        "link_types": _link_rows(f.link_types),
        "status": meta["status"],
        "warnings": meta["warnings"],
        "skipped_records": meta["skipped_records"],
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
