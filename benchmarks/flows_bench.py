"""Flow-table cost: decode alone vs decode + C flow table vs decode + Python flow table.

Usage: python benchmarks/flows_bench.py CAPTURE [--runs 3] [--skip-python]

Each variant reads and decodes the whole capture; the flow variants also feed
every batch to the table, then finish and drain it.  Times are CPU seconds
(``time.process_time``), the minimum of ``--runs`` runs; packets/s is the
capture's packet count over that time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.flows import FlowTable
from netsift.flows_fast import AVAILABLE, CFlowTable


def run(path: str, make_table: Callable[[], Any] | None) -> tuple[float, int, int]:
    """(CPU seconds, packets, flows) of one pass over the capture."""
    table = make_table() if make_table is not None else None
    packets = flows = 0
    t0 = time.process_time()
    with CaptureReader(path) as rd:
        for batch in rd.batches():
            cols = decode(batch)
            packets += len(cols)
            if table is not None:
                table.update(cols, batch)
                flows += len(table.drain())
    if table is not None:
        table.finish()
        flows += len(table.drain())
    return time.process_time() - t0, packets, flows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-python", action="store_true", help="do not time the Python table")
    args = ap.parse_args()

    variants: list[tuple[str, Callable[[], Any] | None]] = [("decode only", None)]
    if AVAILABLE:
        variants.append(("decode + C flows", CFlowTable))
    else:
        print("netsift._flows is not built: the C flow table is not timed")
    if not args.skip_python:
        variants.append(("decode + Python flows", FlowTable))

    base = None
    for name, make in variants:
        best = None
        for _ in range(args.runs):
            secs, packets, flows = run(args.capture, make)
            best = secs if best is None else min(best, secs)
        assert best is not None
        pps = packets / best if best else float("inf")
        line = f"{name:24s} {packets:>10,d} pkts {best:8.3f} s CPU {pps:>12,.0f} pkts/s"
        if make is not None:
            line += f"  flows={flows:,d}"
            if base is not None:
                line += f"  (+{(best - base) / packets * 1e6:.3f} us/pkt over decode)"
        else:
            base = best
        print(line, flush=True)


if __name__ == "__main__":
    main()
