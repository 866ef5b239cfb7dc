"""The safety fence of active probing: an explicit scope that every target must lie in.

``netsift scan`` and ``netsift craft --send`` refuse to send anything unless
every destination lies inside the scope the operator wrote down (``--scope
CIDR`` or ``--scope FILE``, repeatable).  The check happens on the whole probe
set before the first packet leaves; one target outside the scope refuses the
whole run.  A scope file holds one CIDR or address per line; ``#`` starts a
comment.

Targets are addresses, CIDR ranges or host names (resolved once, each address
checked).  Expansion is capped (:data:`MAX_TARGETS`) so a typo such as
``10.0.0.0/8`` is an error, not sixteen million probes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ScopeError, UsageError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Most target addresses one run may expand to (a /16 of IPv4).
MAX_TARGETS = 65_536
#: Most ports one port specification may list (all of them).
MAX_PORT = 65_535


@dataclass(frozen=True)
class Scope:
    networks: tuple[IPNetwork, ...]
    sources: tuple[str, ...] = ()

    def __contains__(self, addr: object) -> bool:
        try:
            a = addr if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)) \
                else ipaddress.ip_address(str(addr))
        except ValueError:
            return False
        return any(a.version == n.version and a in n for n in self.networks)

    def check(self, addresses: Iterable[str | IPAddress], what: str = "target") -> None:
        """Raise :class:`ScopeError` naming the first address outside the scope."""
        if not self.networks:
            raise ScopeError(f"no scope given: every {what} must lie inside --scope CIDR or --scope FILE; "
                             "nothing was sent")
        for a in addresses:
            if a not in self:
                raise ScopeError(f"{what} {a} is outside the authorized scope "
                                 f"({', '.join(str(n) for n in self.networks[:5])}"
                                 f"{', ...' if len(self.networks) > 5 else ''}); nothing was sent")

    def to_json(self) -> list[str]:
        return [str(n) for n in self.networks]


def _network(text: str, where: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"{where}: {text.strip()!r} is not an address or CIDR range") from None


def load_scope(items: Iterable[str]) -> Scope:
    """Each item is a CIDR, an address, or a file of them (one per line, ``#`` comments)."""
    nets: list[IPNetwork] = []
    sources: list[str] = []
    for item in items:
        if os.path.isfile(item):
            try:
                with open(item, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"{item}: cannot read the scope file ({exc})") from None
            for n, line in enumerate(lines, 1):
                text = line.split("#", 1)[0].strip()
                if text:
                    nets.append(_network(text, f"{item}:{n}"))
            sources.append(item)
        else:
            nets.append(_network(item, "--scope"))
            sources.append(item)
    return Scope(tuple(nets), tuple(sources))


def expand_targets(specs: Iterable[str], limit: int = MAX_TARGETS) -> list[IPAddress]:
    """Addresses of each target spec (address, CIDR or host name), in order, without repeats."""
    out: list[IPAddress] = []
    seen: set[IPAddress] = set()

    def add(a: IPAddress) -> None:
        if a not in seen:
            if len(out) >= limit:
                raise UsageError(f"the targets expand to more than {limit} addresses; narrow them")
            seen.add(a)
            out.append(a)

    for spec in specs:
        for part in spec.split(","):
            text = part.strip()
            if not text:
                continue
            if "/" in text:
                net = _network(text, "target")
                if net.num_addresses > limit:
                    raise UsageError(f"target {text} holds {net.num_addresses} addresses "
                                     f"(at most {limit} per run); narrow it")
                hosts: list[IPAddress] = list(net.hosts()) if net.num_addresses > 2 else list(net)
                for h in hosts:
                    add(h)
                continue
            try:
                add(ipaddress.ip_address(text))
                continue
            except ValueError:
                pass
            try:
                infos = socket.getaddrinfo(text, None, proto=socket.IPPROTO_TCP)
            except (socket.gaierror, UnicodeError) as exc:
                raise UsageError(f"target {text!r} is not an address, CIDR range or known host name "
                                 f"({exc})") from None
            for info in infos:
                add(ipaddress.ip_address(info[4][0]))
    if not out:
        raise UsageError("no targets given")
    return out


def parse_ports(spec: str) -> list[int]:
    """``22,80,8000-8010`` → sorted unique ports; ``-`` means 1-65535."""
    ports: set[int] = set()
    for part in spec.split(","):
        text = part.strip()
        if not text:
            continue
        if text == "-":
            lo, hi = 1, MAX_PORT
        elif "-" in text:
            a, _, b = text.partition("-")
            lo = _port(a or "1", spec)
            hi = _port(b or str(MAX_PORT), spec)
            if lo > hi:
                raise UsageError(f"port range {text!r} runs backwards")
        else:
            lo = hi = _port(text, spec)
        ports.update(range(lo, hi + 1))
    if not ports:
        raise UsageError(f"no ports in {spec!r}")
    return sorted(ports)


def _port(text: str, spec: str) -> int:
    try:
        p = int(text.strip(), 10)
    except ValueError:
        raise UsageError(f"{text.strip()!r} in port list {spec!r} is not a port number") from None
    if not 0 <= p <= MAX_PORT:
        raise UsageError(f"port {p} in {spec!r} is outside 0-65535")
    return p
