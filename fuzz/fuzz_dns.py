"""Fuzz the DNS parsers: netsift.dns (Python) and the C summarizer netsift._dns.

Input: one DNS message (UDP payload), also read as a DNS-over-TCP stream.
Checks, for every input:

- ``parse_message`` and ``summarize_py`` never raise, and report only the
  documented anomaly codes (``dns.ANOMALIES``);
- the C ``summarize`` returns exactly ``summarize_py``'s summary (the Python
  code is the specification of the C code);
- ``split_tcp_messages`` cuts the stream into length-prefixed messages that
  join back into the input, and ``_dns.summarize_many`` over those messages
  equals ``summarize`` of each.
"""

from __future__ import annotations

import sys

import atheris
from _common import main

with atheris.instrument_imports(include=["netsift"]):
    from netsift import _dns, dns


def test_one_input(data: bytes) -> None:
    message = dns.parse_message(data)
    assert set(message.anomalies) <= set(dns.ANOMALIES), message.anomalies
    want = dns.summarize_py(data)
    got = dns.summarize(data)
    assert got == want, (got, want)
    assert set(want.anomalies) <= set(dns.ANOMALIES)

    messages, tail = dns.split_tcp_messages(data)
    assert b"".join(len(m).to_bytes(2, "big") + m for m in messages) + tail == data
    starts, lens, pos = [], [], 0
    for m in messages:
        starts.append(pos + 2)
        lens.append(len(m))
        pos += 2 + len(m)
    many = _dns.summarize_many(data, starts, lens)
    assert [dns.DnsSummary._make(s) for s in many] == [dns.summarize(m) for m in messages]


if __name__ == "__main__":
    main(test_one_input, max_len=2048)
    sys.exit(0)
