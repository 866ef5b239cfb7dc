"""How fast `netsift live` captures without loss: offered rate vs packets kept and kernel drops.

Builds two network namespaces joined by a veth pair (as tests/netns.py does),
runs `netsift live -f 'udp port 9999' -w FILE` in one, and from the other sends
UDP datagrams of a fixed size at a paced rate with a plain socket loop.  For
each offered rate it reports what the sender sent, what netsift wrote, what the
kernel said it dropped, and the capture CPU time.  Needs root; sends only
between the namespaces it creates.

    sudo .venv/bin/python benchmarks/live_bench.py --rates 5000,20000,50000,0 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from netns import SCANNER_V4, NetnsPair

SENDER = r"""
import socket, sys, time
rate, seconds, size = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = bytes(size)
dst = (sys.argv[4], 9999)
sent = 0
start = time.perf_counter()
end = start + seconds
batch = 100
while True:
    now = time.perf_counter()
    if now >= end:
        break
    if rate:
        due = start + sent / rate
        if now < due:
            time.sleep(min(due - now, 0.01))
            continue
    for _ in range(batch):
        try:
            s.sendto(payload, dst)
            sent += 1
        except OSError:
            pass
print(sent, time.perf_counter() - start)
"""


def run_one(pair: NetnsPair, rate: float, seconds: float, size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="netsift-live-bench-") as tmp:
        report = os.path.join(tmp, "r.json")
        spool = os.path.join(tmp, "c.pcapng")
        live = pair.spawn(pair.scanner, sys.executable, "-m", "netsift", "live", "-i", pair.scanner_if,
                          "-f", "udp port 9999", "--ndjson", "--no-detect", "-w", spool, "-o", report,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert live.stdout is not None
        live.stdout.readline()  # capture-started
        t0 = os.times()
        out = pair.exec(pair.target, sys.executable, "-c", SENDER, str(rate), str(seconds), str(size), SCANNER_V4,
                        timeout=seconds + 60)
        sent, took = out.stdout.split()
        time.sleep(1.0)
        os.kill(live.pid, signal.SIGTERM)
        live.communicate(timeout=300)
        t1 = os.times()
        with open(report) as f:
            data = json.load(f)
        itf = data["live"]["interfaces"][0]
        return {
            "offered_pps": round(int(sent) / float(took)),
            "sent": int(sent),
            "written": itf["packets"],
            "kernel_received": itf["kernel_received"],
            "kernel_dropped": itf["kernel_dropped"],
            "lost_pct": round(100 * (int(sent) - itf["packets"]) / int(sent), 2) if int(sent) else 0.0,
            "capture_cpu_s": round((t1.children_user + t1.children_system) - (t0.children_user + t0.children_system), 2),
            "report_packets": data["capture"]["packets"],
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="5000,20000,50000,0", help="offered packets/s, 0 = as fast as possible")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=200, help="UDP payload bytes")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("live_bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    pair = NetnsPair(f"b{os.getpid() % 10000}").up()
    try:
        print("| offered pkt/s | sent | written | kernel dropped | lost % | capture CPU s |")
        print("|---|---|---|---|---|---|")
        for r in (float(x) for x in args.rates.split(",")):
            row = run_one(pair, r, args.seconds, args.size)
            print(f"| {row['offered_pps']:,} | {row['sent']:,} | {row['written']:,} | {row['kernel_dropped']:,} "
                  f"| {row['lost_pct']} | {row['capture_cpu_s']} |", flush=True)
    finally:
        pair.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
