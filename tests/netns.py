"""Two network namespaces joined by a veth pair, for tests that send real packets.

Everything a test sends goes between these namespaces and nowhere else: the
namespaces have no other interface and no default route.  Addresses come from
the documentation/benchmark ranges (198.18.0.0/15, RFC 2544; 2001:db8::/32,
RFC 3849), so nothing could leave the machine even if routed.

Needs root (``ip netns``); :func:`skip_reason` says why it cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

SCANNER_V4 = "198.18.0.1"
TARGET_V4 = "198.18.0.2"
SCANNER_V6 = "2001:db8:18::1"
TARGET_V6 = "2001:db8:18::2"


def skip_reason() -> str | None:
    """Why these tests cannot run here, or None."""
    if sys.platform != "linux":
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs as root)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip (apt-get install iproute2; .ci/run installs it)"
    return None


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@dataclass
class NetnsPair:
    """``scanner`` and ``target`` namespaces; ``veth`` names are per-pair unique."""

    tag: str
    scanner: str = ""
    target: str = ""
    scanner_if: str = ""
    target_if: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scanner = f"nss-{self.tag}"
        self.target = f"nst-{self.tag}"
        self.scanner_if = f"vs{self.tag}"[:15]
        self.target_if = f"vt{self.tag}"[:15]

    def up(self) -> NetnsPair:
        _run("ip", "netns", "add", self.scanner)
        _run("ip", "netns", "add", self.target)
        _run("ip", "link", "add", self.scanner_if, "netns", self.scanner, "type", "veth",
             "peer", "name", self.target_if, "netns", self.target)
        for ns, itf, v4, v6 in ((self.scanner, self.scanner_if, SCANNER_V4, SCANNER_V6),
                                (self.target, self.target_if, TARGET_V4, TARGET_V6)):
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", itf)
            _run("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", itf, "nodad")
            _run("ip", "-n", ns, "link", "set", itf, "up")
        # wait for the link to come up both sides (veth carrier)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = [_run("ip", "-n", ns, "-o", "link", "show", itf).stdout
                      for ns, itf in ((self.scanner, self.scanner_if), (self.target, self.target_if))]
            if all("state UP" in s for s in states):
                break
            time.sleep(0.05)
        return self

    def exec(self, ns: str, *args: str, timeout: float = 120,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True,
                              timeout=timeout, env=env)

    def spawn(self, ns: str, *args: str, **kw: object) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["ip", "netns", "exec", ns, *args], **kw)  # type: ignore[call-overload]
        self.procs.append(p)
        return p

    def down(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        for ns in (self.scanner, self.target):
            _run("ip", "netns", "del", ns, check=False)
