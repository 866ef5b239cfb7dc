"""Type stub for the C record walker (see _walk.c and walk.py)."""

from typing import Any

def walk_pcap(
    buf: Any, pos: int, rec_len: int, big: bool, max_cap: int, starts: Any, /
) -> tuple[int, int, int]: ...
def walk_epb(
    buf: Any, pos: int, big: bool, n_ifaces: int, starts: Any, caps: Any, origs: Any, ifids: Any,
    units: Any, /
) -> tuple[int, int, int]: ...
