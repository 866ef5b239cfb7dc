"""A bounded, mergeable table of numeric aggregates keyed by tuples of integers.

Statistics such as top talkers or conversations need "sum per key" over
millions of packets.  Doing that with a Python dict costs a dict operation per
distinct key per batch; here the batch is grouped with numpy (sort + reduce),
appended, and compacted when the pending rows pass a threshold.  The table
holds at most ``cap`` keys: when it must drop keys it keeps the heaviest by the
first value column and records how many keys were dropped and the largest
first-column value dropped, which bounds the error of every count reported
(the Space-Saving / Misra–Gries argument: a key missing from the table had at
most ``max_dropped`` in the primary column when it was dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

#: Aggregations supported per value column.
SUM, MIN, MAX = "sum", "min", "max"
_REDUCE = {SUM: np.add, MIN: np.minimum, MAX: np.maximum}
#: Rows that may pile up before a table is re-grouped.
COMPACT_ROWS = 65_536


def group(keys: Sequence[npt.NDArray[np.generic]], values: Sequence[I64], ops: Sequence[str]
          ) -> tuple[list[U64], list[I64]]:
    """Group rows by ``keys`` and reduce each value column with its op."""
    n = keys[0].shape[0] if keys else 0
    if n == 0:
        return [np.zeros(0, np.uint64) for _ in keys], [np.zeros(0, np.int64) for _ in values]
    ks = [np.asarray(k).astype(np.uint64, copy=False) for k in keys]
    # Constant key columns (e.g. the high half of IPv4-mapped addresses) do not
    # affect the grouping: sort on the others only.
    varying = [k for k in ks if k.shape[0] and k.min() != k.max()]
    if not varying:
        order = np.arange(n)
    elif len(varying) == 1:
        v = varying[0]
        # Time bins arrive sorted: skip the sort when it would change nothing.
        order = np.arange(n) if bool((v[1:] >= v[:-1]).all()) else np.argsort(v)
    else:
        spans = [(int(k.min()), int(k.max())) for k in varying]
        if len(varying) == 2 and all(hi - lo < (1 << 32) for lo, hi in spans):
            # Two narrow keys (IPv4 pairs): one 64-bit sort instead of two passes.
            packed = ((varying[0] - np.uint64(spans[0][0])) << np.uint64(32)) | (
                varying[1] - np.uint64(spans[1][0]))
            order = np.argsort(packed)
        else:
            order = np.lexsort(varying[::-1])
    sv = [k[order] for k in varying]
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in sv:
        change[1:] |= k[1:] != k[:-1]
    starts = np.nonzero(change)[0]
    out_k = [k[order[starts]] for k in ks]
    out_v = [_REDUCE[op].reduceat(np.asarray(v, dtype=np.int64)[order], starts) for v, op in zip(values, ops, strict=True)]
    return out_k, out_v


class KeyedTable:
    """Aggregates per key, bounded to ``cap`` keys; ``update`` and ``merge`` are exact until pruning."""

    def __init__(self, n_keys: int, ops: Sequence[str], cap: int = 100_000) -> None:
        self.n_keys = n_keys
        self.ops = tuple(ops)
        self.cap = cap
        self._keys: list[list[U64]] = []
        self._vals: list[list[I64]] = []
        self._pending = 0
        self._compacted = 0  # rows in the table right after the last compaction
        self.dropped_keys = 0
        self.max_dropped = 0

    def update(self, keys: Sequence[npt.NDArray[np.generic]], values: Sequence[npt.NDArray[np.generic]]) -> None:
        k, v = group(keys, [np.asarray(x, dtype=np.int64) for x in values], self.ops)
        if not k or k[0].shape[0] == 0:
            return
        self._keys.append(k)
        self._vals.append(v)
        self._pending += int(k[0].shape[0])
        # Re-group once the rows added since the last compaction outnumber the
        # table (at least COMPACT_ROWS): memory stays within a small multiple of
        # the live keys, and each row is re-sorted O(1) times on average.
        if self._pending - self._compacted > max(COMPACT_ROWS, self._compacted):
            self._compact()

    def _compact(self) -> None:
        if len(self._keys) > 1 or self._pending > self.cap:
            keys = [np.concatenate([part[i] for part in self._keys]) for i in range(self.n_keys)]
            vals = [np.concatenate([part[i] for part in self._vals]) for i in range(len(self.ops))]
            k, v = group(keys, vals, self.ops)
            if k[0].shape[0] > self.cap:
                order = np.argsort(-v[0], kind="stable")
                drop = order[self.cap :]
                self.dropped_keys += int(drop.shape[0])
                self.max_dropped = max(self.max_dropped, int(v[0][drop].max()))
                keep = np.sort(order[: self.cap])
                k = [x[keep] for x in k]
                v = [x[keep] for x in v]
            self._keys, self._vals = [k], [v]
            self._pending = int(k[0].shape[0])
        self._compacted = self._pending

    def merge(self, other: KeyedTable) -> None:
        self._keys.extend(other._keys)
        self._vals.extend(other._vals)
        self._pending += other._pending
        self.dropped_keys += other.dropped_keys
        self.max_dropped = max(self.max_dropped, other.max_dropped)
        self._compact()

    def result(self) -> tuple[list[U64], list[I64]]:
        self._compact()
        if not self._keys:
            return [np.zeros(0, np.uint64)] * self.n_keys, [np.zeros(0, np.int64)] * len(self.ops)
        return self._keys[0], self._vals[0]

    def __len__(self) -> int:
        self._compact()
        return self._pending

    @property
    def approximate(self) -> bool:
        return self.dropped_keys > 0


def top(keys: list[U64], vals: list[I64], by: int, n: int) -> npt.NDArray[np.intp]:
    """Indices of the ``n`` rows with the largest ``vals[by]`` (ties broken by key order)."""
    if not keys or keys[0].shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    order = np.lexsort([*(k for k in reversed(keys)), -vals[by]])
    return order[:n]


class SplitTable:
    """A :class:`KeyedTable` pair: rows whose ``hi_cols`` keys are all zero are grouped without them.

    Address keys are 128-bit (hi, lo) halves; IPv4 addresses (stored IPv4-mapped)
    have hi == 0.  Grouping those rows on the low halves alone turns a
    multi-key lexsort into one narrow sort; IPv6 rows keep the full key.
    Results are identical to one table's; each part has its own ``cap``.
    """

    def __init__(self, n_keys: int, hi_cols: Sequence[int], ops: Sequence[str], cap: int = 100_000
                 ) -> None:
        self.n_keys = n_keys
        self.hi_cols = tuple(hi_cols)
        self.lo_cols = tuple(i for i in range(n_keys) if i not in self.hi_cols)
        self.narrow = KeyedTable(len(self.lo_cols), ops, cap)
        self.wide = KeyedTable(n_keys, ops, cap)

    def update(self, keys: Sequence[npt.NDArray[np.generic]], values: Sequence[npt.NDArray[np.generic]]
               ) -> None:
        zero = np.ones(keys[0].shape[0], dtype=bool)
        for i in self.hi_cols:
            zero &= keys[i] == 0
        if zero.all():
            self.narrow.update([keys[i] for i in self.lo_cols], values)
        elif not zero.any():
            self.wide.update(keys, values)
        else:
            self.narrow.update([keys[i][zero] for i in self.lo_cols], [v[zero] for v in values])
            wide = ~zero
            self.wide.update([k[wide] for k in keys], [v[wide] for v in values])

    def merge(self, other: SplitTable) -> None:
        self.narrow.merge(other.narrow)
        self.wide.merge(other.wide)

    def result(self) -> tuple[list[U64], list[I64]]:
        nk, nv = self.narrow.result()
        wk, wv = self.wide.result()
        rows = nk[0].shape[0] if nk else 0
        full: list[U64] = []
        lo_iter = iter(nk)
        for i in range(self.n_keys):
            part = np.zeros(rows, np.uint64) if i in self.hi_cols else next(lo_iter)
            full.append(np.concatenate([part, wk[i]]))
        return full, [np.concatenate([a, b]) for a, b in zip(nv, wv, strict=True)]

    def __len__(self) -> int:
        return len(self.narrow) + len(self.wide)

    @property
    def approximate(self) -> bool:
        return self.narrow.approximate or self.wide.approximate

    @property
    def max_dropped(self) -> int:
        return max(self.narrow.max_dropped, self.wide.max_dropped)
