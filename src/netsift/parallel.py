"""Split runs: ``--jobs N`` local worker processes, or a Dask cluster (``--dask-scheduler``).

Both run the same map and merge as a single process (:func:`netsift.pipeline.run_part`
for worker ``k`` of ``n``, :func:`~netsift.pipeline.merge_partials`,
:func:`~netsift.pipeline.assemble`): how the work is split is in
:mod:`netsift.partition`.  The report is the same as ``--jobs 1`` apart from its
``run`` timings; with ``--flows`` the workers spill their finished flows
(pickles of the project's own records, in a private directory beside the export)
and the parent writes them in the order one process would have.  The parent reads
share 0 itself; the other workers send their state back pickled.

Progress: local workers write their bytes read and packets counted into a shared
array the parent polls; Dask workers put the same figures on a
``distributed.Queue`` the parent reads.  Ctrl-C asks every worker to stop (a
shared event, or a ``distributed.Event``): each returns what it has read and the
report, marked partial, is still written.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import importlib
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .detect import Detectors
from .detect.config import DetectorConfig, load_config
from .errors import NetsiftError, UsageError
from .pipeline import (
    InputPlan,
    Partial,
    Progress,
    RunOptions,
    assemble,
    check_options,
    expand_inputs,
    few_gc_passes,
    merge_partials,
    run_part,
)
from .report import Report

#: seconds between a worker's progress messages
PROGRESS_EVERY_S = 0.25


#: the default --jobs is the cores, up to this many: the parent collects and merges each
#: worker's state in turn, and past four workers that costs more than a share saves
#: (benchmarks/RESULTS.md, "Split runs"); --jobs N still asks for N
MAX_DEFAULT_JOBS = 4


def default_jobs() -> int:
    """The cores this process may run on, at most :data:`MAX_DEFAULT_JOBS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_JOBS))


def analyze_split(
    paths: list[str] | tuple[str, ...],
    opts: RunOptions,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> Report:
    """Analyse ``paths`` split over ``jobs`` workers (local processes, or a Dask cluster)."""
    with few_gc_passes():  # the parent's share, and unpickling the workers' states
        return _analyze_split(paths, opts, jobs, scheduler, progress, warn)


def _analyze_split(paths: list[str] | tuple[str, ...], opts: RunOptions, jobs: int | None, scheduler: str | None,
                   progress: Progress | None, warn: Callable[[str], None] | None) -> Report:  # fmt: skip
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, got {jobs}")
    plan = expand_inputs(paths)
    check_options(opts)
    config = _detector_config(opts)
    started = time.monotonic()
    spill_dir = _spill_dir(opts)
    try:
        if scheduler is not None:
            partials = _run_dask(scheduler, plan, opts, config, jobs, spill_dir, progress)
        else:
            partials = _run_local(plan, opts, config, jobs or default_jobs(), spill_dir, progress)
        if warn is not None:
            for f in partials[0].files:
                for message in f.warnings:
                    warn(message)
        workers_done = time.monotonic()
        spills = [p.spill for p in partials]
        with _no_gc():
            merged = merge_partials(partials)
        if opts.flows and opts.flows_path:
            merged.exported = _write_flows([s for s in spills if s], opts.flows_path, plan)
        merged_at = time.monotonic()
    finally:
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)
    report = assemble(merged, plan, opts, time.monotonic() - started, workers=len(partials),
                      runner="dask" if scheduler is not None else "local")  # fmt: skip
    report.data["run"]["stages_s"] = {
        "workers": round(workers_done - started, 3),
        "merge": round(merged_at - workers_done, 3),
        "report": round(time.monotonic() - merged_at, 3),
    }
    return report


def _detector_config(opts: RunOptions) -> DetectorConfig | None:
    """The detectors' configuration, read once here (a bad file is an error before any worker starts)."""
    if not opts.detect:
        return None
    from .detect import detector_classes

    return load_config(opts.config_path, detector_classes())


def _spill_dir(opts: RunOptions) -> str | None:
    """Where workers spill finished flows for the export: a private directory beside the
    export file (where there is room for the flows; a Dask cluster's workers must be able
    to write there)."""
    if not (opts.flows and opts.flows_path):
        return None
    return tempfile.mkdtemp(prefix=".netsift-flows-", dir=os.path.dirname(os.path.abspath(opts.flows_path)))


# -- one worker ----------------------------------------------------------------------------


def work(files: list[str], opts: RunOptions, part: tuple[int, int], config: DetectorConfig | None,
         spill: str | None, report: Callable[[int, int], None] | None = None,
         stop: Callable[[], bool] | None = None) -> Partial:  # fmt: skip
    """Worker ``part`` of a split run: its partial state, ready to pickle."""
    detectors = Detectors(config) if config is not None else None
    last = [0.0]

    def progress(done: int, _total: int, packets: int) -> None:
        now = time.monotonic()
        if report is not None and now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            report(done, packets)

    started = time.monotonic()
    with few_gc_passes():
        out = run_part(files, opts, part=part, progress=progress, detectors=detectors, stop=stop, spill=spill)
    out.workers = [{"part": part[0], "elapsed_s": round(time.monotonic() - started, 3),
                    "peak_rss_mb": round(_peak_rss_kb() / 1024, 1)}]  # fmt: skip
    if report is not None:
        report(sum(f.meta["file_bytes"] for f in out.files), out.stats.packets)
    return out


def _peak_rss_kb() -> int:
    try:
        import resource
    except ImportError:  # not on this platform
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# -- local processes -----------------------------------------------------------------------

_shared: Any = None  # the worker process's (progress array, stop event)


def _init_local(shared: Any) -> None:
    global _shared
    _shared = shared
    # Ctrl-C reaches the whole process group: the parent asks the workers to stop
    # (the stop event) so that each returns what it read, and the report is written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _work_local(files: list[str], opts: RunOptions, part: tuple[int, int], config: DetectorConfig | None,
                spill: str | None) -> bytes:  # fmt: skip
    counts, stop = _shared
    k = part[0]

    def report(done: int, packets: int) -> None:
        counts[2 * k] = done
        counts[2 * k + 1] = packets

    return _dumps(work(files, opts, part, config, spill, report, stop.is_set))


def _dumps(partial: Partial) -> bytes:
    """A worker's state as bytes: the parent unpickles it itself, with the collector off."""
    with _no_gc():
        return pickle.dumps(partial, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Unpickling and merging workers' states makes millions of small objects and no garbage:
    the cyclic collector's passes over them would only cost time (three times the unpickling)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _loads(blob: bytes) -> Partial:
    with _no_gc():
        partial: Partial = pickle.loads(blob)  # the project's own state, from this run's workers
    return partial


def _run_local(plan: InputPlan, opts: RunOptions, config: DetectorConfig | None, n: int,
               spill_dir: str | None, progress: Progress | None) -> list[Partial]:  # fmt: skip
    """Shares 1..n-1 in worker processes, share 0 in this process (its state is not pickled)."""
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("fork" if "fork" in methods else "spawn")
    counts = ctx.Array("q", 2 * n, lock=False)
    stop = ctx.Event()
    total = sum(os.path.getsize(f) for f in plan.files)
    spills = [os.path.join(spill_dir, f"part-{k}.pickle") if spill_dir else None for k in range(n)]
    shown = [0.0]

    def show(force: bool = False) -> None:
        now = time.monotonic()
        if progress is not None and (force or now - shown[0] >= PROGRESS_EVERY_S):
            shown[0] = now
            progress(sum(counts[0::2]) // n, total, sum(counts[1::2]))

    def own_report(done: int, packets: int) -> None:
        counts[0], counts[1] = done, packets
        show()

    if n == 1:  # nothing to split (analyze_split called with jobs=1, or one core)
        return [work(plan.files, opts, (0, 1), config, spills[0], own_report)]
    with ProcessPoolExecutor(n - 1, mp_context=ctx, initializer=_init_local,
                             initargs=((counts, stop),)) as pool:  # fmt: skip
        futures = [pool.submit(_work_local, plan.files, opts, (k, n), config, spills[k]) for k in range(1, n)]
        try:
            # a worker that fails makes this share stop early; its error is raised below
            mine = work(plan.files, opts, (0, n), config, spills[0], own_report,
                        lambda: stop.is_set() or any(f.done() and f.exception() for f in futures))
        except BaseException:
            stop.set()
            raise
        if mine.interrupted:
            stop.set()  # Ctrl-C or SIGTERM here: every worker returns what it has read
        pending = set(futures)
        while pending:
            try:
                _done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                stop.set()
                continue
            show()
            if any(f.exception() is not None for f in _done):
                stop.set()
        show(force=True)
        try:
            return [mine] + [_loads(f.result()) for f in futures]
        except BrokenProcessPool:
            raise NetsiftError(
                "a worker process died (killed by a signal, or out of memory?); try fewer --jobs"
            ) from None


# -- Dask ----------------------------------------------------------------------------------


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise UsageError("--dask-scheduler needs Dask distributed: pip install 'netsift[dask]'") from None


def _run_dask(address: str, plan: InputPlan, opts: RunOptions, config: DetectorConfig | None,
              jobs: int | None, spill_dir: str | None, progress: Progress | None) -> list[Partial]:  # fmt: skip
    dd = _distributed()
    try:
        client = dd.Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"--dask-scheduler {address}: cannot connect ({exc})") from None
    with client:
        n = jobs or max(1, sum(client.nthreads().values()))
        run = uuid.uuid4().hex
        topic = f"netsift-{run}"
        spills = [os.path.join(spill_dir, f"part-{k}.pickle") if spill_dir else None for k in range(n)]
        queue = dd.Queue(f"{topic}-progress", client=client)
        stop_event = dd.Event(f"{topic}-stop", client=client)
        done = threading.Event()
        listener = None
        if progress is not None:
            total = sum(os.path.getsize(f) for f in plan.files)
            listener = threading.Thread(target=_listen, args=(queue, n, total, progress, done), daemon=True)
            listener.start()
        futures = [
            client.submit(_work_dask, plan.files, opts, (k, n), config, spills[k], topic,
                          key=f"{topic}-{k}", pure=False)
            for k in range(n)
        ]
        try:
            while True:
                try:
                    partials = [_loads(blob) for blob in client.gather(futures)]
                    break
                except KeyboardInterrupt:
                    stop_event.set()  # each worker returns what it has read; the report says partial
        finally:
            done.set()
            if listener is not None:
                listener.join(timeout=2)
        return partials


def _work_dask(files: list[str], opts: RunOptions, part: tuple[int, int], config: DetectorConfig | None,
               spill: str | None, topic: str) -> bytes:  # fmt: skip
    dd = _distributed()
    queue = dd.Queue(f"{topic}-progress")
    stop_event = dd.Event(f"{topic}-stop")
    k = part[0]
    stopped = [False]

    def report(done: int, packets: int) -> None:
        queue.put((k, done, packets))
        stopped[0] = bool(stop_event.is_set())

    return _dumps(work(files, opts, part, config, spill, report, lambda: stopped[0]))


def _listen(queue: Any, n: int, total: int, progress: Progress, stop: threading.Event) -> None:
    done = [0] * n
    packets = [0] * n
    while not stop.is_set():
        try:
            k, d, p = queue.get(timeout=0.2)
        except Exception:  # a timeout, or the client closing: nothing to show
            continue
        done[k], packets[k] = d, p
        with contextlib.suppress(Exception):  # a progress display must never end the run
            progress(sum(done) // n, total, sum(packets))


# -- the flow export -----------------------------------------------------------------------


def _spilled(path: str) -> Iterator[tuple[int, int, int, Any]]:
    """A worker's spilled flows as (read batch that ended it, first file, first frame, record)."""
    with open(path, "rb") as f:
        while True:
            try:
                batch, records = pickle.load(f)  # the project's own spill, written by this run
            except EOFError:
                return
            for r in records:
                yield batch, r.first_file, r.first_frame, r


def _write_flows(spills: list[str], path: str, plan: InputPlan) -> int:
    """Write the workers' flows to the export in one process's order: by the read batch that
    ended them, then by their first packet."""
    from .flow_export import FlowWriter

    writer = FlowWriter(path, inputs=plan.files)
    try:
        chunk: list[Any] = []
        for item in heapq.merge(*(_spilled(s) for s in spills), key=lambda t: t[:3]):
            chunk.append(item[3])
            if len(chunk) >= 8192:
                writer.write(chunk)
                chunk = []
        if chunk:
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    written: int = writer.written
    return written
