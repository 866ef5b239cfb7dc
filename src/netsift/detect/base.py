"""The shape every detector has, and what the pipeline feeds it.

A detector is a class with

- ``name``: its stable name (the config section, the findings' ``detector``);
- ``Thresholds``: a frozen dataclass whose every field has a default, each
  documented where it is defined with the source of the number;
- hooks, each optional (the base class's do nothing): :meth:`Detector.flows`
  gets finished flow records in batches as the flow table ends them,
  :meth:`Detector.dns` gets every DNS message the application layer read
  (:class:`DnsEvents`, one batch at a time);
- :meth:`Detector.finish`, called once at the end with a
  :class:`FinishContext`, returning its findings;
- :meth:`Detector.merge`, which folds another instance's state into this one
  (a run split across workers merges its partial states; ``run(a) merged with
  run(b)`` must give ``run(a + b)``'s findings).

State is bounded: a detector keeps per-entity figures (per destination, per
client and domain), capped, and says in its findings' evidence when a cap was
reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .finding import Finding

if TYPE_CHECKING:
    from ..defrag import FragmentTracker
    from ..flows import FlowRecord

__all__ = ["Detector", "DnsEvents", "FinishContext", "Sample"]


@dataclass
class DnsEvents:
    """DNS messages of one batch, as parallel lists (one item per message).

    ``client`` is the querier (the sender of a query, the receiver of a
    response) and ``server`` the other side, as (hi, lo) address halves (see
    :func:`netsift.columns.ip_text`).  For a response ``qname``/``qtype`` are
    those of its question (None when it had none).
    """

    ts_ns: list[int]
    file_index: list[int]
    frame: list[int]
    client: list[tuple[int, int]]
    server: list[tuple[int, int]]
    server_port: list[int]
    transport: list[str]  # "udp" or "tcp"
    response: list[bool]
    qname: list[str | None]
    qtype: list[int | None]
    rcode: list[int]
    #: answers of a response: (rtype, ttl, text) as netsift.dns.DnsSummary.answers
    answers: list[tuple[tuple[int, int, str | None], ...]]
    #: the message's length in bytes
    size: list[int]

    def __len__(self) -> int:
        return len(self.ts_ns)


@dataclass
class FinishContext:
    """What a detector may read when the run ends."""

    #: the report built so far (capture, quality, flows, fragments, dns, tls ... sections)
    report: dict[str, Any]
    #: the fragment tracker (None without the flow stage)
    fragments: FragmentTracker | None
    #: capture paths by file index
    inputs: list[str]


@dataclass(frozen=True)
class Sample:
    """A crafted capture for ``netsift selftest``: packets built with Scapy, written with
    ``wrpcap`` and analysed like any capture.

    ``build`` returns the packets (their ``time`` set).  A positive sample must make
    its detector report every code in ``expect``; a negative one (``expect`` empty)
    must make its detector report nothing at ``forbid_at`` severity or above.
    """

    name: str
    description: str
    build: Callable[[], list[Any]]
    expect: frozenset[str] = frozenset()
    forbid_at: str = "low"


class Detector:
    """Base class (see the module doc)."""

    name: ClassVar[str] = ""
    #: one line for ``--help`` and the docs
    title: ClassVar[str] = ""
    Thresholds: ClassVar[type] = type(None)

    def __init__(self, thresholds: Any = None) -> None:
        self.t = thresholds if thresholds is not None else self.Thresholds()

    def flows(self, records: list[FlowRecord]) -> None:
        """Finished flows, in the order the flow table ended them."""

    def dns(self, events: DnsEvents) -> None:
        """DNS messages, in capture order within a batch."""

    def finish(self, ctx: FinishContext) -> list[Finding]:
        return []

    def merge(self, other: Detector) -> None:
        """Add the state of another worker of a split run (``other`` may be taken apart:
        it is not used afterwards)."""
        raise NotImplementedError(f"{type(self).__name__}.merge")

    @classmethod
    def samples(cls) -> list[Sample]:
        """Positive and negative samples for ``netsift selftest`` (at least one of each)."""
        return []

    def thresholds_json(self) -> dict[str, Any]:
        if dataclasses.is_dataclass(self.t) and not isinstance(self.t, type):
            return _plain(dataclasses.asdict(self.t))  # type: ignore[no-any-return]
        return {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (frozenset, set)) else items
    return value
