"""Every failure a user can cause: one sentence on stderr and its documented exit code.

One table covers the commands (analyze, packets, live, craft, scan, selftest,
config): missing and unreadable inputs, files that are not captures, wrong
options and values, bad configuration, missing privilege, targets outside the
scope, unwritable outputs and a full disk.  Each case runs the real CLI in a
subprocess, so what is checked is what a user sees: exactly one line on
stderr, starting ``netsift: error:`` (or click's ``Error:`` for option
parsing), no traceback, and the exit code the README documents.

Cases that need root (a full disk on a small tmpfs, reading as an
unprivileged user) are skipped with the reason elsewhere; CI runs as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netsift.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample.pcap"
IS_ROOT = os.geteuid() == 0


def netsift(*args: str, cwd: Path | str | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "netsift", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def assert_one_sentence(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    # click's usage errors print a usage line and a hint before "Error: ..."
    errors = [line for line in lines if line.startswith(("netsift: error:", "Error:"))]
    assert len(errors) == 1, r.stderr
    if errors[0].startswith("netsift: error:"):
        assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


def _files(tmp: Path) -> dict[str, Path]:
    text = tmp / "notes.txt"
    text.write_text("not packets\n")
    bad_config = tmp / "bad.toml"
    bad_config.write_text("[detectors.scan]\nvertical_min_ports = -3\n")
    unknown_key = tmp / "unknown.toml"
    unknown_key.write_text("[detectors.scan]\nvertical_min_portz = 20\n")
    not_toml = tmp / "broken.toml"
    not_toml.write_text("[detectors.scan\n")
    spec = tmp / "spec.toml"
    spec.write_text('[[layer]]\nname = "IP"\ndst = "192.0.2.1"\nttl = "lots"\n')
    return {"text": text, "bad_config": bad_config, "unknown_key": unknown_key, "not_toml": not_toml,
            "spec": spec, "missing_dir": tmp / "no" / "such" / "dir"}


CASES = [
    # (id, args (with {placeholders}), exit code, needles in the error line)
    ("missing input", ["analyze", "no/such.pcap"], ExitCode.NO_INPUT, ["no/such.pcap", "no such file"]),
    ("glob matches nothing", ["analyze", "no/*.pcap"], ExitCode.NO_INPUT, ["matches no file"]),
    ("not a capture", ["analyze", "{text}"], ExitCode.NOT_CAPTURE, ["not a pcap or pcapng"]),
    ("unknown option", ["analyze", "{sample}", "--frobnicate"], ExitCode.USAGE, ["--frobnicate"]),
    ("bad option value", ["analyze", "{sample}", "--top", "0"], ExitCode.USAGE, ["--top"]),
    ("bad timeout", ["analyze", "{sample}", "--tcp-timeout", "nan"], ExitCode.USAGE, ["--tcp-timeout"]),
    ("contradicting options", ["analyze", "{sample}", "--no-detect", "--alerts", "a.ndjson"], ExitCode.USAGE,
     ["--no-detect contradicts"]),
    ("bad --fail-on", ["analyze", "{sample}", "--fail-on", "severe"], ExitCode.USAGE, ["severe"]),
    ("config value out of range", ["analyze", "{sample}", "--config", "{bad_config}"], ExitCode.USAGE,
     ["vertical_min_ports must be an integer of at least 2, got -3"]),
    ("config unknown key", ["config", "--check", "{unknown_key}"], ExitCode.USAGE,
     ["vertical_min_portz: unknown key"]),
    ("config not TOML", ["analyze", "{sample}", "--config", "{not_toml}"], ExitCode.USAGE, ["broken.toml"]),
    ("config file missing", ["analyze", "{sample}", "--config", "nope.toml"], ExitCode.NO_INPUT,
     ["nope.toml: no such config file"]),
    ("output directory missing", ["analyze", "{sample}", "-q", "-o", "{missing_dir}/r.json"], ExitCode.OUTPUT,
     ["does not exist"]),
    ("output is a directory", ["analyze", "{sample}", "-q", "--flows", "{tmp}"], ExitCode.USAGE, ["is a directory"]),
    ("html output directory missing", ["analyze", "{sample}", "-q", "--html", "{missing_dir}/r.html"],
     ExitCode.OUTPUT, ["does not exist"]),
    ("packets: unknown field", ["packets", "{sample}", "-e", "ip.nosuch"], ExitCode.USAGE,
     ["unknown field 'ip.nosuch'"]),
    ("packets: bad filter", ["packets", "{sample}", "-e", "ip.src", "--filter", "ip.src =="], ExitCode.USAGE,
     ["--filter"]),
    ("selftest: unknown detector", ["selftest", "--only", "nosuch"], ExitCode.USAGE, ["'nosuch' is not a detector"]),
    ("craft: unknown layer", ["craft", "-l", "IPP dst=192.0.2.1"], ExitCode.USAGE, ["unknown layer 'IPP'"]),
    ("craft: unknown field", ["craft", "-l", "IP tll=3"], ExitCode.USAGE, ["no field 'tll'"]),
    ("craft: bad value", ["craft", "--spec", "{spec}", "-w", "{tmp}/p.pcap"], ExitCode.USAGE, ["IP.ttl"]),
    ("craft: code is just a bad value", ["craft", "-l", "IP dst=__import__('os').system('id')"], ExitCode.USAGE,
     ["bad value"]),
    ("craft: send outside the scope", ["craft", "-l", "IP dst=203.0.113.9", "-l", "UDP", "--send", "--scope",
                                        "192.0.2.0/24"], ExitCode.SCOPE, ["outside"]),
    ("craft: send without a scope", ["craft", "-l", "IP dst=192.0.2.9", "-l", "UDP", "--send"], ExitCode.SCOPE,
     []),
    ("scan: target outside the scope", ["scan", "203.0.113.5", "-p", "80", "--scope", "192.0.2.0/24"],
     ExitCode.SCOPE, ["target 203.0.113.5 is outside the authorized scope", "nothing was sent"]),
    ("scan: no scope", ["scan", "192.0.2.5", "-p", "80"], ExitCode.SCOPE, ["no scope given"]),
    ("scan: bad port list", ["scan", "192.0.2.5", "-p", "80-", "--scope", "192.0.2.5", "--dry-run", "{tmp}/x"],
     ExitCode.OK, []),  # "80-" means 80-65535: valid
    ("scan: port out of range", ["scan", "192.0.2.5", "-p", "70000", "--scope", "192.0.2.5"], ExitCode.USAGE,
     ["outside 0-65535"]),
    ("scan: too many targets", ["scan", "10.0.0.0/8", "-p", "80", "--scope", "10.0.0.0/8"], ExitCode.USAGE,
     ["at most 65536"]),
    ("scan: bad rate", ["scan", "192.0.2.5", "-p", "80", "--scope", "192.0.2.5", "--rate", "1e9"], ExitCode.USAGE,
     ["--rate"]),
    ("live: unknown interface", ["live", "-i", "nosuch0", "-d", "1"], ExitCode.USAGE,
     ["no interface named 'nosuch0'"]),
    ("live: rotation without -w", ["live", "-i", "lo", "--rotate-mb", "1", "-d", "1"], ExitCode.USAGE, ["-w"]),
    ("live: evidence without -w", ["live", "-i", "lo", "--evidence-dir", "{tmp}/ev", "-d", "1"], ExitCode.USAGE,
     ["--evidence-dir needs -w"]),
    ("unknown command", ["explode"], ExitCode.USAGE, ["explode"]),
]


@pytest.mark.parametrize(("args", "code", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_error(tmp_path: Path, args: list[str], code: int, needles: list[str]) -> None:
    files = {k: str(v) for k, v in _files(tmp_path).items()}
    files.update(sample=str(SAMPLE), tmp=str(tmp_path))
    argv = [a.format(**files) for a in args]
    r = netsift(*argv, cwd=tmp_path)
    if code == ExitCode.OK:
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        return
    assert_one_sentence(r, code, *needles)
    # nothing half-written next to the outputs it was asked for
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".netsift-")]


def test_every_documented_exit_code_is_exercised() -> None:
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, code
    covered = {c[2] for c in CASES}
    # 1 is a bug; 4 (unreadable), 7 (privilege) and 130 (interrupt) have their own tests below and in
    # tests/test_cli.py / tests/test_active_netns.py; 10 (--fail-on) is in the detector tests
    assert covered >= {ExitCode.USAGE, ExitCode.NO_INPUT, ExitCode.NOT_CAPTURE, ExitCode.OUTPUT, ExitCode.SCOPE}


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all")


@pytest.mark.skipif(not IS_ROOT or shutil.which("setpriv") is None,
                    reason="needs root and util-linux's setpriv to run as an unprivileged user")
def test_unreadable_input_and_missing_privilege_as_an_unprivileged_user(tmp_path: Path) -> None:
    # behind pytest's private temporary root (mode 0700), nobody cannot even see the file
    hidden = tmp_path / "hidden.pcap"
    shutil.copy(SAMPLE, hidden)
    r = netsift("analyze", str(hidden), cwd="/", prefix=NOBODY)
    assert_one_sentence(r, ExitCode.UNREADABLE, "hidden.pcap", "a directory on the path cannot be searched")
    open_dir = Path(tempfile.mkdtemp(prefix="netsift-perm-"))
    try:
        open_dir.chmod(0o755)
        locked = open_dir / "locked.pcap"
        shutil.copy(SAMPLE, locked)
        locked.chmod(0o600)
        r = netsift("analyze", str(locked), cwd="/", prefix=NOBODY)
        assert_one_sentence(r, ExitCode.UNREADABLE, "locked.pcap", "permission denied")
        r = netsift("analyze", str(SAMPLE), "-q", "-o", str(open_dir / "r.json"), cwd="/", prefix=NOBODY)
        assert_one_sentence(r, ExitCode.OUTPUT, "r.json")
    finally:
        shutil.rmtree(open_dir)
    r = netsift("live", "-i", "lo", "-d", "1", cwd="/", prefix=NOBODY)
    assert_one_sentence(r, ExitCode.PRIVILEGE, "needs CAP_NET_RAW")
    r = netsift("scan", "127.0.0.1", "-p", "80", "--scope", "127.0.0.1", cwd="/", prefix=NOBODY)
    assert_one_sentence(r, ExitCode.PRIVILEGE, "needs CAP_NET_RAW")
    r = netsift("craft", "-l", "IP dst=127.0.0.1", "-l", "UDP", "--send", "--scope", "127.0.0.1", "-q", cwd="/",
                prefix=NOBODY)
    assert_one_sentence(r, ExitCode.PRIVILEGE, "CAP_NET_RAW")


@contextlib.contextmanager
def _small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, timeout=30)


@pytest.mark.skipif(not IS_ROOT or sys.platform != "linux", reason="needs root to mount a small tmpfs (a full disk)")
def test_full_disk_is_one_sentence_and_leaves_no_partial_file(tmp_path: Path) -> None:
    with _small_disk(tmp_path / "disk", "64k") as disk:
        for option, name in (("-o", "report.json"), ("--flows", "flows.ndjson"), ("--html", "report.html"),
                             ("--alerts", "alerts.ndjson")):
            r = netsift("analyze", str(SAMPLE), "-q", option, str(disk / name), "--report-flows", "1000")
            if r.returncode == 0:  # this output fits in 64 KiB: fine, it was written whole
                assert (disk / name).stat().st_size > 0
                (disk / name).unlink()
                continue
            assert_one_sentence(r, ExitCode.OUTPUT, name)
            assert "No space left on device" in r.stderr
            assert list(disk.iterdir()) == [], "a partial or temporary file was left behind"
        # the report itself (about 200 KiB for the sample) cannot fit: that case must have been an error
        r = netsift("analyze", str(SAMPLE), "-q", "-o", str(disk / "report.json"))
        assert r.returncode == ExitCode.OUTPUT
