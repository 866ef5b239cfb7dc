"""TrafficStats.merge: statistics of two halves merged equal statistics of the whole."""

from __future__ import annotations

import json
from pathlib import Path

from netsift.capture import CaptureReader
from netsift.decode_fast import decode
from netsift.stats import TrafficStats

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample.pcap"


def test_merge_of_halves_equals_whole() -> None:
    with CaptureReader(str(SAMPLE), chunk_bytes=8192) as reader:
        batches = [(decode(b), b) for b in reader.batches()]
    assert len(batches) > 4
    whole, first, second = TrafficStats(), TrafficStats(), TrafficStats()
    half = len(batches) // 2
    for i, (cols, batch) in enumerate(batches):
        whole.update(cols, batch)
        (first if i < half else second).update(cols, batch)
    first.merge(second)
    assert first.packets == whole.packets == 514
    assert (first.first_ts, first.last_ts) == (whole.first_ts, whole.last_ts)
    # The duplicate window does not span the split (file state is per run), and
    # there are no duplicates in the sample: every section must agree.
    assert json.dumps(first.to_report(), sort_keys=True) == json.dumps(whole.to_report(), sort_keys=True)
