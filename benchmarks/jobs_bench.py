#!/usr/bin/env python3
"""Time `netsift analyze --jobs 1` against `--jobs N`, and project the scaling to more cores.

    .venv/bin/python benchmarks/jobs_bench.py --capture bench_1m.pcap --capture bench_5m.pcap --repeat 3
    .venv/bin/python benchmarks/jobs_bench.py --capture bench_1m.pcap --jobs 1,2 --project 4,8,16 --markdown

Each run is a whole process (`python -m netsift analyze CAPTURE -o TMP --quiet --jobs J`),
timed from spawn to exit; CPU seconds and peak RSS come from wait4() (the largest single
process of the tree, so for split runs the parent or one worker), and each worker's own
peak RSS and wall time from the report's `run.worker_runs`.  The reports of every `--jobs`
value are checked equal (everything but `run` and `tool`) before any figure is printed.

The projection uses per-stage costs measured in these runs:

  rest     a single run's wall time outside its reading and analysis: interpreter start,
           imports, rendering and writing the report (whole process minus `run.elapsed_s`)
  read     reading and decoding every packet, timed in this process: each worker does all
           of it, so it never shrinks (the serial part)
  work     a single run's analysis (`run.elapsed_s`) minus `read`: what the workers divide
  collect  per worker the parent waits on after its own share: the worker's state pickled,
           sent and unpickled (`stages_s.workers` minus the slowest share's `elapsed_s`)
  merge    per worker, merging its state (`stages_s.merge`)

  T(n) = rest + read + work / n + (n - 1) * (collect + merge)

It assumes n cores as fast as these, shares as balanced as measured for n = 2, and a
page cache that feeds every worker; the row for the measured n shows how well it fits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_once(capture: str, jobs: int, out: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "netsift", "analyze", capture, "-o", out, "--quiet", "--jobs", str(jobs)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}")
    report = json.loads(Path(out).read_text())
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "run": report["run"],
        "packets": report["capture"]["packets"],
        "body": {k: v for k, v in report.items() if k not in ("run", "tool")},
    }


def read_cost(capture: str) -> float:
    """Seconds to read and decode every packet as a worker does (best of two)."""
    from netsift.capture import CaptureReader
    from netsift.decode_fast import decode
    from netsift.partition import rows_of
    from netsift.stats import TrafficStats

    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        stats = TrafficStats()
        with CaptureReader(capture) as reader:
            for batch in reader.batches():
                cols = decode(batch)
                stats.carry(cols, batch)  # what a worker does with a batch it does not count
                rows_of(cols, 0, 2, False)
        best = min(best, time.perf_counter() - t0)
    return best


def _caps_reached(report: dict[str, Any]) -> list[str]:
    """The bounds a run reached (past them a split run's report may differ, docs/scale.md)."""
    out = []
    if (report.get("flows") or {}).get("evicted"):
        out.append("flows.evicted")
    for item in (report.get("findings") or {}).get("items", []):
        ev = item.get("evidence", {})
        for key in ("pairs_dropped_at_cap", "names_dropped_at_cap"):
            if ev.get(key):
                out.append(f"{item['detector']}.{key}")
    for section in ("dns", "tls", "http"):
        if (report.get(section) or {}).get("approximate"):
            out.append(f"{section}.approximate")
    return sorted(set(out))


def project(c: dict[str, float], n: int) -> float:
    return c["rest"] + c["read"] + c["work"] / n + (n - 1) * (c["collect"] + c["merge"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", action="append", required=True, help="capture to analyse (repeatable)")
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting; the median is reported")
    ap.add_argument("--project", default="2,4,8,16", help="core counts to project to")
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--json", dest="json_out", help="write all figures to this JSON file")
    a = ap.parse_args()
    jobs = [int(j) for j in a.jobs.split(",")]
    results: dict[str, Any] = {"load_before": os.getloadavg(), "captures": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for capture in a.capture:
            with open(capture, "rb") as f:  # warm the page cache
                while f.read(1 << 24):
                    pass
            rows: dict[int, list[dict[str, Any]]] = {j: [] for j in jobs}
            for _ in range(a.repeat):
                for j in jobs:
                    rows[j].append(run_once(capture, j, os.path.join(tmp, f"r{j}.json")))
            first = rows[jobs[0]][0]["body"]
            differs = {j: sorted(k for k in set(first) | set(rows[j][0]["body"])
                                 if json.dumps(first.get(k), sort_keys=True)
                                 != json.dumps(rows[j][0]["body"].get(k), sort_keys=True))
                       for j in jobs[1:]}  # fmt: skip
            singles = rows.get(1, [])
            split = [r for j in jobs if j > 1 for r in rows[j]]
            read = read_cost(capture)
            costs = {"read": read}
            if singles and split:
                med = statistics.median
                costs["rest"] = med(r["wall_s"] - r["run"]["elapsed_s"] for r in singles)
                costs["work"] = med(r["run"]["elapsed_s"] for r in singles) - read
                costs["collect"] = med(
                    (r["run"]["stages_s"]["workers"] - max(w["elapsed_s"] for w in r["run"]["worker_runs"]))
                    / max(1, r["run"]["workers"] - 1)
                    for r in split
                )
                costs["merge"] = med(r["run"]["stages_s"]["merge"] / max(1, r["run"]["workers"] - 1) for r in split)
            summary = {}
            for j in jobs:
                rs = rows[j]
                summary[j] = {
                    "wall_s": statistics.median(r["wall_s"] for r in rs),
                    "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                    "max_rss_mb": max(r["max_rss_mb"] for r in rs),
                    "worker_rss_mb": max(
                        (w["peak_rss_mb"] for r in rs for w in r["run"].get("worker_runs", [])), default=None
                    ),
                    "packets": rs[0]["packets"],
                    "walls": [round(r["wall_s"], 2) for r in rs],
                }
            base = summary[jobs[0]]["wall_s"]
            results["captures"][capture] = {
                "runs": summary,
                "costs": costs,
                "projection": {n: project(costs, n) for n in map(int, a.project.split(","))}
                if len(costs) > 1 else {},
                "speedup": {j: base / summary[j]["wall_s"] for j in jobs},
                "sections_differing": differs,
                "caps_reached": _caps_reached(first),
            }
    results["load_after"] = os.getloadavg()
    for capture, r in results["captures"].items():
        print(f"\n{capture}: {r['runs'][jobs[0]]['packets']:,} packets")
        for j, keys in r["sections_differing"].items():
            print(f"report of --jobs {j}: " + ("identical to --jobs 1" if not keys else
                  f"differs in {', '.join(keys)} (caps reached: {', '.join(r['caps_reached']) or 'none'})"))
        if a.markdown:
            print("\n| --jobs | wall s (median) | runs | CPU s | speed-up | peak RSS MB (largest process) | worker peak RSS MB |")
            print("|---|---|---|---|---|---|---|")
        for j in jobs:
            s = r["runs"][j]
            w = "" if s["worker_rss_mb"] is None else f"{s['worker_rss_mb']:.0f}"
            cells = [str(j), f"{s['wall_s']:.2f}", " / ".join(map(str, s["walls"])), f"{s['cpu_s']:.2f}",
                     f"{r['speedup'][j]:.2f}×", f"{s['max_rss_mb']:.0f}", w]  # fmt: skip
            print("| " + " | ".join(cells) + " |" if a.markdown else "  ".join(cells))
        c = r["costs"]
        if not r["projection"]:
            continue
        print(f"\nstages: rest {c['rest']:.2f} s, read+decode {c['read']:.2f} s (every worker), "
              f"divisible work {c['work']:.2f} s, collect {c['collect']:.2f} s and merge {c['merge']:.2f} s "
              f"per worker")  # fmt: skip
        one = project(c, 1)
        if a.markdown:
            print("\n| cores | projected wall s | projected speed-up |")
            print("|---|---|---|")
        for n, t in r["projection"].items():
            print(f"| {n} | {t:.2f} | {one / t:.2f}× |" if a.markdown else f"{n} cores: {t:.2f} s ({one / t:.2f}×)")
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
