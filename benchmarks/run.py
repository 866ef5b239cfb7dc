#!/usr/bin/env python3
"""Benchmark `netsift analyze` against the peer tools on one capture, in one session.

    .venv/bin/python benchmarks/run.py                      # 1M packets, our generator
    .venv/bin/python benchmarks/run.py --also 5000000 --keep --repeat 3 --markdown
    .venv/bin/python benchmarks/run.py --capture bench_1m.pcap   # e.g. from gen_bench_pcap.py

Contenders (each a separate process, timed from spawn to exit):
  * netsift      `python -m netsift analyze FILE -o TMP.json --quiet --jobs 1` (this interpreter,
                 one process: the per-core figures); also without --jobs (split over the
                 cores, the default), with --no-detect, --no-app (and --no-detect) and
                 --no-flows, and `netsift packets` with DNS/TLS/HTTP fields (APP_FIELDS)
                 beside `tshark -T fields` with the same fields
  * cat          `cat FILE > /dev/null`: the cost of reading the bytes (page cache warm)
  * dpkt         peers/c_dpkt.py FILE
  * tshark       peers/f_tshark_fields.sh FILE  (tshark -T fields | python3 aggregator)
  * scapy        peers/b_scapy_stream.py PREFIX: the PcapReader loop, run on the first
                 --prefix packets only (it does ~5k packets/s); its per-packet rate is
                 extrapolated to the full capture and marked as such.
Peers come from ../shared/bench/peers (relative to the project; --peers to change) and
run from their own folder; missing ones are skipped with a message.

Wall time is perf_counter around the child (interpreter start included); CPU time and
peak RSS come from GNU time (/usr/bin/time; else wait4()'s rusage).  Peak RSS is that of
the largest single process of the child's tree (for the tshark pipeline: tshark, not
tshark + aggregator).  The capture is read once before timing so every contender
starts with a warm page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
DATA = HERE / "data"
DEFAULT_PEERS = PROJECT.parent / "shared" / "bench" / "peers"
GEN = HERE / "gen_capture.py"


# ------------------------------------------------------------------ captures
def our_capture(packets: int, seed: int, keep: bool, made: list[Path]) -> Path:
    """Capture of `packets` packets from gen_capture.py (reused from data/ with --keep)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bench_{packets}_s{seed}.pcap"
    if keep and path.exists():
        print(f"reusing {rel(path)}", file=sys.stderr)
        return path
    tmp = path.with_suffix(".part")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(GEN), "--packets", str(packets), "--out", str(tmp),
                    "--seed", str(seed)], check=True)
    tmp.replace(path)
    dt = time.perf_counter() - t0
    print(f"generated {rel(path)} in {dt:.1f} s ({packets / dt:,.0f} packets/s, "
          f"{path.stat().st_size / 1e6:,.0f} MB)", file=sys.stderr)
    if not keep:
        made.append(path)
    return path


def pcap_prefix(src: Path, packets: int, dst: Path) -> bool:
    """Copy the first `packets` records of a classic pcap file (any byte order/precision)."""
    with open(src, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return False
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            order = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            order = ">"
        else:
            return False
        rec = struct.Struct(order + "IIII")
        with open(dst, "wb") as out:
            out.write(head)
            for _ in range(packets):
                h = f.read(16)
                if len(h) < 16:
                    break
                body = f.read(rec.unpack(h)[2])
                out.write(h + body)
    return True


def prefix_of(capture: Path, packets: int, seed: int, ours: bool, keep: bool, made: list[Path]) -> Path | None:
    if ours:  # gen_capture.py output depends only on the seed: N packets == the first N of more
        return our_capture(packets, seed, keep, made)
    DATA.mkdir(exist_ok=True)
    dst = DATA / f"prefix_{packets}_{capture.stem}.pcap"
    if pcap_prefix(capture, packets, dst):
        made.append(dst)
        return dst
    if shutil.which("editcap"):  # pcapng: let editcap cut it
        dst = dst.with_suffix(".pcapng")
        subprocess.run(["editcap", "-r", str(capture), str(dst), f"1-{packets}"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        made.append(dst)
        return dst
    return None


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 23):
            pass


def count_packets(path: Path) -> int | None:
    """Records in a classic pcap (None for other formats)."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            rec = struct.Struct("<IIII")
        elif head[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            rec = struct.Struct(">IIII")
        else:
            return None
        n = 0
        while True:
            h = f.read(16)
            if len(h) < 16:
                return n
            f.seek(rec.unpack(h)[2], 1)
            n += 1


# ------------------------------------------------------------------ measuring
TIME = shutil.which("time", path="/usr/bin:/bin")


def measure(cmd: list[str], cwd: Path | None = None) -> dict:
    """Run cmd: wall time (perf_counter), CPU time and peak RSS of the child.

    GNU time reports them when present (%M is the child's own high-water RSS).  Without
    it, wait4()'s rusage is used, but on Linux a child spawned with vfork/fork + exec
    inherits this process's high-water RSS in ru_maxrss, so that figure is only an
    upper bound (the table says so)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME, "-o", tf.name, "-f", "%e %U %S %M", *cmd] if TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(full, cwd=cwd, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu, rss, exact = ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, False
        if TIME:
            lines = tf.read().split("\n")
            fields = [x.split() for x in lines if x.strip()]
            if fields and len(fields[-1]) == 4:
                _, u, s_, m = fields[-1]
                cpu, rss, exact = float(u) + float(s_), int(m) / 1024, True
        out.seek(0)
        err.seek(0)
        return {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "rss_exact": exact, "rc": p.returncode,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def run_contender(name: str, cmd: list[str], packets: int, repeat: int, cwd: Path | None = None,
                  note: str = "") -> dict | None:
    runs = []
    for i in range(repeat):
        m = measure(cmd, cwd)
        if m["rc"] != 0:
            print(f"  {name}: exit code {m['rc']}; skipped.\n    {m['stderr'].strip()[-600:]}", file=sys.stderr)
            return None
        runs.append(m)
        print(f"  {name} run {i + 1}/{repeat}: {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, "
              f"{m['rss_mb']:.0f} MB", file=sys.stderr)
    wall = statistics.median(r["wall_s"] for r in runs)
    return {"contender": name, "packets": packets, "wall_s": wall,
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "walls": [round(r["wall_s"], 3) for r in runs],
            "pps": packets / wall, "rss_mb": max(r["rss_mb"] for r in runs),
            "note": note if runs[0]["rss_exact"] else (note + " RSS is an upper bound (no GNU time)").strip(),
            "stdout": runs[-1]["stdout"]}


REPORT = Path(tempfile.gettempdir()) / f"netsift_bench_{os.getpid()}.json"


def netsift_cmd(capture: Path, engine: str, jobs: int = 1) -> list[str]:
    """One process (--jobs 1), unless ``jobs`` says otherwise (0: netsift's default)."""
    return [sys.executable, "-m", "netsift", "analyze", str(capture), "-o", str(REPORT), "--quiet",
            "--engine", engine, *(["--jobs", str(jobs)] if jobs else [])]


def netsift_summary(engine_out: Path) -> dict:
    """packets / syn / synack from netsift's JSON report, in the peers' terms."""
    try:
        rep = json.loads(engine_out.read_text())
    except (OSError, ValueError):
        return {}
    res = {"packets": rep.get("capture", {}).get("packets")}
    flags = rep.get("tcp_flags")
    if isinstance(flags, list):
        res["syn"] = sum(x["packets"] for x in flags if x["value"] & 0x12 == 0x02)
        res["synack"] = sum(x["packets"] for x in flags if x["value"] & 0x12 == 0x12)
    if isinstance(rep.get("flows"), dict):
        res["flows"] = rep["flows"].get("total")
    return res


def git_describe() -> str:
    r = subprocess.run(["git", "-C", str(PROJECT), "describe", "--always", "--dirty"], capture_output=True,
                       text=True)
    return r.stdout.strip() or "unknown"


def tool_version(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return (r.stdout.strip().splitlines() or ["absent"])[0] if r.returncode == 0 else "absent"


# ------------------------------------------------------------------ report
def rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def table(rows: list[dict], base: dict | None, markdown: bool) -> str:
    head = ["contender", "packets", "wall s", "CPU s", "packets/s", "peak RSS MB",
            "netsift faster ×", "RSS ÷ netsift's", "note"]
    lines = []
    for r in rows:
        speed = rss = ""
        if base is not None and r is not base and r["contender"] != "cat":
            speed = f"{base['pps'] / r['pps']:.1f}"
            rss = f"{r['rss_mb'] / base['rss_mb']:.2f}" if base["rss_mb"] else ""
        lines.append([r["contender"], f"{r['packets']:,}", f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                      f"{r['pps']:,.0f}", f"{r['rss_mb']:.0f}", speed, rss, r.get("note", "")])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in x) + " |" for x in lines]
        return "\n".join(out)
    w = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(head)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(n) if i in (0, 8) else c.rjust(n)
                         for i, (c, n) in enumerate(zip(cells, w, strict=True))).rstrip()

    return "\n".join([fmt(head), fmt(["-" * n for n in w]), *(fmt(x) for x in lines)])


def peer_summary(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            return d
    return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets to generate (default 1,000,000)")
    ap.add_argument("--also", type=int, action="append", default=[], metavar="N",
                    help="also run netsift alone on a generated N-packet capture (repeatable), "
                         "e.g. 5000000, to show memory does not grow with capture size")
    ap.add_argument("--capture", type=Path, help="benchmark this capture instead of generating one "
                    "(e.g. one written by ../shared/bench/gen_bench_pcap.py)")
    ap.add_argument("--keep", action="store_true", help="reuse/keep generated captures in benchmarks/data/")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--prefix", type=int, default=100_000, help="packets given to the scapy peer")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender; the median wall time is shown")
    ap.add_argument("--engine", default="fast", choices=["fast", "scapy"])
    ap.add_argument("--peers", type=Path, default=DEFAULT_PEERS, help="folder with the peer scripts")
    ap.add_argument("--no-peers", action="store_true", help="time netsift only")
    ap.add_argument("--nfstream-python", type=Path, default=None,
                    help="interpreter that can import nfstream (default: this one, if it can)")
    ap.add_argument("--markdown", action="store_true", help="print the tables in Markdown")
    ap.add_argument("--json", type=Path, help="write all measurements to this JSON file")
    a = ap.parse_args(argv)

    made: list[Path] = []
    try:
        return bench(a, made)
    finally:
        for p in made:
            p.unlink(missing_ok=True)


def bench(a: argparse.Namespace, made: list[Path]) -> int:
    probe = subprocess.run([sys.executable, "-m", "netsift", "analyze", "--help"], capture_output=True)
    if probe.returncode != 0:
        print("`python -m netsift analyze` does not work yet:\n" + probe.stderr.decode()[-800:], file=sys.stderr)
        return 1
    load = os.getloadavg()
    info = {"cores": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
            "load_at_start": [round(x, 2) for x in load], "netsift_commit": git_describe(),
            "tshark": tool_version(["tshark", "--version"]), "dpkt": tool_version(
                [sys.executable, "-c", "import dpkt; print('dpkt', dpkt.__version__)"]),
            "scapy": tool_version([sys.executable, "-c", "import scapy; print('scapy', scapy.VERSION)"])}
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), file=sys.stderr)
    if a.capture:
        capture = a.capture.resolve()
        ours = False
        n = count_packets(capture)
        if n is None:
            n = a.packets
            print(f"{rel(capture)} is not a classic pcap: assuming {n:,} packets", file=sys.stderr)
    else:
        capture = our_capture(a.packets, a.seed, a.keep, made)
        ours, n = True, a.packets
    rows: list[dict] = []
    checks: dict[str, dict] = {}
    warm(capture)
    print(f"capture: {rel(capture)} ({n:,} packets, {capture.stat().st_size / 1e6:,.0f} MB)", file=sys.stderr)
    base = run_contender("netsift", netsift_cmd(capture, a.engine), n, a.repeat,
                         note=f"--engine {a.engine} --jobs 1: flows, DNS/TLS/HTTP and detectors")
    if base is None:
        return 1
    rows.append(base)
    checks["netsift"] = netsift_summary(REPORT)
    r = run_contender("netsift --jobs default", netsift_cmd(capture, a.engine, jobs=0), n, a.repeat,
                      note="the same, split over the cores (netsift's default, up to 4 processes)")
    if r:
        rows.append(r)
    r = run_contender("netsift --no-detect", [*netsift_cmd(capture, a.engine), "--no-detect"], n, a.repeat,
                      note="flows and DNS/TLS/HTTP, no detectors")
    if r:
        rows.append(r)
    r = run_contender("netsift --no-app", [*netsift_cmd(capture, a.engine), "--no-app", "--no-detect"], n,
                      a.repeat, note="flows, no DNS/TLS/HTTP, no detectors")
    if r:
        rows.append(r)
    r = run_contender("netsift --no-flows", [*netsift_cmd(capture, a.engine), "--no-flows"], n, a.repeat,
                      note="statistics only")
    if r:
        rows.append(r)
    r = run_contender("netsift packets (app fields)",
                      ["bash", "-c", f"{shlex.quote(sys.executable)} -m netsift packets {shlex.quote(str(capture))}"
                       f" -e {','.join(APP_FIELDS)} > /dev/null"], n, a.repeat,
                      note="per-packet DNS/TLS/HTTP fields, CSV to /dev/null")
    if r:
        rows.append(r)
    r = run_contender("cat", ["cat", str(capture)], n, a.repeat, note="read limit (page cache)")
    if r:
        rows.append(r)
    peers = a.peers.resolve()
    if not a.no_peers:
        if not peers.is_dir():
            print(f"peers folder {a.peers} not found: peers skipped", file=sys.stderr)
        else:
            run_peers(a, peers, capture, n, ours, made, rows, checks)
    extra: list[dict] = []
    for m in a.also:
        big = our_capture(m, a.seed, a.keep, made)
        warm(big)
        r = run_contender("netsift", netsift_cmd(big, a.engine), m, a.repeat, note=f"--engine {a.engine}")
        if r:
            extra.append(r)
            checks[f"netsift {m:,}"] = netsift_summary(REPORT)
    REPORT.unlink(missing_ok=True)

    print()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n## {n:,} packets: {rel(capture)}\n")
    print(table(rows, base, a.markdown))
    print("\nnetsift faster × = netsift packets/s ÷ contender packets/s;"
          " RSS ÷ netsift's = contender peak RSS ÷ netsift peak RSS.")
    if extra:
        print("\n## netsift alone on larger captures (same generator and seed)\n")
        print(table([base, *extra], None, a.markdown))
    print("\n## cross-check (packets, SYN, SYN-ACK, flows as each contender counted them;"
          " nfstream's flows use its own timeouts: 120 s idle, 1800 s active)\n")
    for k, v in checks.items():
        shown = [x for x in ("packets", "syn", "synack", "flows") if x in v] or ["packets"]
        print(f"  {k:<22} " + ", ".join(f"{x} {v.get(x)}" for x in shown))
    if a.json:
        for r in rows + extra:
            r.pop("stdout", None)
        a.json.write_text(json.dumps({"machine": info, "load_at_end": [round(x, 2) for x in os.getloadavg()],
                                      "capture": rel(capture), "packets": n, "rows": rows,
                                      "larger": extra, "checks": checks}, indent=1))
    return 0


#: The application fields both `netsift packets` and tshark extract in the app-fields rows
#: (tshark 4.0 has no JA4 field).
APP_FIELDS = ("frame.number", "ip.src", "dns.qry.name", "dns.flags.rcode",
              "tls.handshake.extensions_server_name", "tls.handshake.ja3", "http.host",
              "http.request.method", "http.request.uri", "http.response.code")


def run_peers(a: argparse.Namespace, peers: Path, capture: Path, n: int, ours: bool, made: list[Path],
              rows: list[dict], checks: dict[str, dict]) -> None:
    py = sys.executable
    dpkt_ok = subprocess.run([py, "-c", "import dpkt"], capture_output=True).returncode == 0
    if (peers / "c_dpkt.py").exists() and dpkt_ok:
        r = run_contender("dpkt", [py, "c_dpkt.py", str(capture)], n, a.repeat, cwd=peers)
        if r:
            rows.append(r)
            checks["dpkt"] = peer_summary(r["stdout"])
    else:
        print("dpkt peer skipped (c_dpkt.py or the dpkt module missing)", file=sys.stderr)
    if (peers / "f_tshark_fields.sh").exists() and shutil.which("tshark") and shutil.which("bash"):
        r = run_contender("tshark fields", ["bash", "f_tshark_fields.sh", str(capture)], n, a.repeat, cwd=peers,
                          note="tshark -T fields | python3 aggregator")
        if r:
            rows.append(r)
            checks["tshark fields"] = peer_summary(r["stdout"])
    else:
        print("tshark peer skipped (f_tshark_fields.sh, tshark or bash missing)", file=sys.stderr)
    if shutil.which("tshark") and shutil.which("bash"):
        fields = " ".join(f"-e {f}" for f in APP_FIELDS)
        r = run_contender("tshark app fields",
                          ["bash", "-c", f"tshark -r {shlex.quote(str(capture))} -n -T fields -E occurrence=f"
                           f" {fields} > /dev/null 2>&1"], n, a.repeat,
                          note="tshark -T fields, the same DNS/TLS/HTTP fields, to /dev/null")
        if r:
            rows.append(r)
    nfs_py = str(a.nfstream_python) if a.nfstream_python else py
    nfs_ok = subprocess.run([nfs_py, "-c", "import nfstream"], capture_output=True).returncode == 0
    if (peers / "g_nfstream.py").exists() and nfs_ok:
        for dissect, label in (("0", "nfstream (flows only)"), ("20", "nfstream + nDPI")):
            r = run_contender(label, [nfs_py, "g_nfstream.py", str(capture), dissect], n, a.repeat, cwd=peers,
                              note=f"NFStreamer(n_dissections={dissect}, statistical_analysis=False)")
            if r:
                rows.append(r)
                checks[label] = peer_summary(r["stdout"])
    else:
        print("nfstream peer skipped (g_nfstream.py or the nfstream module missing; see --nfstream-python)",
              file=sys.stderr)
    if (peers / "b_scapy_stream.py").exists():
        m = min(a.prefix, n)
        pre = prefix_of(capture, m, a.seed, ours, a.keep, made) if m < n else capture
        if pre is None:
            print("scapy peer skipped: cannot cut a prefix of this capture", file=sys.stderr)
            return
        warm(pre)
        r = run_contender("scapy PcapReader", [py, "b_scapy_stream.py", str(pre)], m, 1, cwd=peers)
        if r:
            checks[f"scapy (first {m:,})"] = peer_summary(r["stdout"])
            est = r["wall_s"] * n / m
            r.update(packets=n, wall_s=est, cpu_s=r["cpu_s"] * n / m, pps=n / est,
                     note=f"EXTRAPOLATED from {m:,} packets in {r['walls'][0]:.1f} s (×{n / m:g})")
            rows.append(r)
    else:
        print("scapy peer skipped (b_scapy_stream.py missing)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
