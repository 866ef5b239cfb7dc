"""Read tshark ``-z io,phs`` output and select the nodes netsift's hierarchy also has."""

from __future__ import annotations

import gzip
from pathlib import Path

LINK = {"eth", "sll", "null", "raw"}
NETWORK = {"ip", "ipv6", "arp", "llc"}
TRANSPORT = {"tcp", "udp", "icmp", "icmpv6"}


def read_text(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


def parse_phs(text: str) -> dict[str, tuple[int, int]]:
    """Map 'eth:ip:tcp' -> (frames, bytes) from a Protocol Hierarchy Statistics block."""
    out: dict[str, tuple[int, int]] = {}
    inside = False
    stack: list[str] = []
    for line in text.splitlines():
        if line.startswith("Protocol Hierarchy Statistics"):
            inside = True
            continue
        if not inside or "frames:" not in line:
            continue
        indent = (len(line) - len(line.lstrip(" "))) // 2
        name, rest = line.strip().split(None, 1)
        fields = dict(part.split(":") for part in rest.split())
        stack = [*stack[:indent], name]
        # tshark shows packets that carry a pcapng comment under a "pkt_comment"
        # pseudo-protocol; it is not part of the packet: fold it away.
        key = ":".join(p for p in stack if p != "pkt_comment")
        if key:
            frames, nbytes = out.get(key, (0, 0))
            out[key] = (frames + int(fields["frames"]), nbytes + int(fields["bytes"]))
    return out


def comparable(path: str) -> bool:
    """True for paths of the shape LINK (vlan)* [NETWORK [TRANSPORT]] — what netsift decodes."""
    parts = path.split(":")
    if parts[0] in ("ip", "ipv6"):  # LINKTYPE_IPV4/IPV6: no link node
        parts = ["raw", *parts]
    if parts[0] not in LINK:
        return False
    i = 1
    while i < len(parts) and parts[i] == "vlan":
        i += 1
    rest = parts[i:]
    if not rest:
        return True
    if rest[0] not in NETWORK:
        return False
    if len(rest) == 1:
        return True
    return len(rest) == 2 and rest[0] in ("ip", "ipv6") and rest[1] in TRANSPORT
