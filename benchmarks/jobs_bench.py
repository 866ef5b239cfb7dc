#!/usr/bin/env python3
"""Time `netsift analyze --jobs 1` against `--jobs N`, and project the scaling to more cores.

    .venv/bin/python benchmarks/jobs_bench.py --capture bench_1m.pcap --capture bench_5m.pcap --repeat 3
    .venv/bin/python benchmarks/jobs_bench.py --capture bench_1m.pcap --jobs 1,2 --project 4,8,16 --markdown

Each run is a whole process (`python -m netsift analyze CAPTURE -o TMP --quiet --jobs J`),
timed from spawn to exit; CPU seconds and peak RSS come from wait4() (the largest single
process of the tree, so for split runs the parent or one worker), and each worker's own
peak RSS and wall time from the report's `run.worker_runs`.  The reports of every `--jobs`
value are checked equal (everything but `run` and `tool`) before any figure is printed.

The projection uses per-stage costs measured in this process on the same capture:

  start    interpreter start and imports (`netsift --version`)
  read     reading and decoding every packet: each worker does all of it (the serial part)
  work     one process's analysis minus `read`: what the workers divide
  merge    the parent's cost per worker partial (unpickling and merging), from `stages_s`
  report   rendering the report once, from `stages_s`

  T(n) = start + read + work / n + (n - 1) * merge + report

It assumes the n cores are as fast as these and that the page cache feeds every worker.
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


def stage_costs(capture: str) -> dict[str, float]:
    """start, read and one process's analysis (in this process), for the projection."""
    from netsift.capture import CaptureReader
    from netsift.decode_fast import decode
    from netsift.pipeline import RunOptions, expand_inputs, run_part
    from netsift.stats import TrafficStats

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "netsift", "--version"], check=True, capture_output=True)
    start = time.perf_counter() - t0
    reads = []
    for _ in range(2):
        t0 = time.perf_counter()
        stats = TrafficStats()
        with CaptureReader(capture) as reader:
            for batch in reader.batches():
                stats.carry(decode(batch), batch)  # what a worker does with a batch it does not count
        reads.append(time.perf_counter() - t0)
    plan = expand_inputs([capture])
    t0 = time.perf_counter()
    run_part(plan.files, RunOptions())
    whole = time.perf_counter() - t0
    return {"start": start, "read": min(reads), "work": whole - min(reads)}


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


def project(costs: dict[str, float], merge: float, report: float, n: int) -> float:
    return costs["start"] + costs["read"] + costs["work"] / n + (n - 1) * merge + report


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
            costs = stage_costs(capture)
            split = [r for j in jobs if j > 1 for r in rows[j]]
            merge = statistics.median(r["run"]["stages_s"]["merge"] / max(1, r["run"]["workers"] - 1)
                                      for r in split) if split else 0.0  # fmt: skip
            report = statistics.median(r["run"]["stages_s"]["report"] for r in split) if split else 0.0
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
                "merge_per_worker_s": merge,
                "report_s": report,
                "projection": {n: project(costs, merge, report, n) for n in map(int, a.project.split(","))},
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
        print(f"\nstages: start {c['start']:.2f} s, read+decode {c['read']:.2f} s (every worker), "
              f"divisible work {c['work']:.2f} s, merge {r['merge_per_worker_s']:.2f} s per worker, "
              f"report {r['report_s']:.2f} s")  # fmt: skip
        if a.markdown:
            print("\n| cores | projected wall s | projected speed-up |")
            print("|---|---|---|")
        for n, t in r["projection"].items():
            one = project(c, 0.0, r["report_s"], 1)
            print(f"| {n} | {t:.2f} | {one / t:.2f}× |" if a.markdown else f"{n} cores: {t:.2f} s ({one / t:.2f}×)")
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
