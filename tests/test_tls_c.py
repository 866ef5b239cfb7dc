"""The C hello fast path (``netsift._tls``) against the Python parsers it short-cuts.

``netsift.tls._client_hello`` / ``_server_hello`` first ask
``_tls.parse_hello_body`` and fall back to their own code when it answers None.
Every result with the fast path must equal the result without it (the Python
code is the specification), field by field, anomaly tuples, value types and
instance ``__dict__`` included:

- on every hello buffer the corpus gives (the collection of tests/test_tls_fast.py);
- on the built hellos of tests/test_tls_fast.py cut at every length;
- on Hypothesis-mutated, truncated and random bytes, and on arbitrary body
  offsets handed to the C function directly (memory safety).

A clean Chrome ClientHello must actually take the fast path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netsift.tls as tls
from fastpath import strict
from netsift.tls import ClientHello, ServerHello
from test_tls_fast import BASES, corpus_captures, hello_buffers, mutated

_tls = pytest.importorskip("netsift._tls")

CI = os.environ.get("CI") == "true"
EXAMPLES = 3000 if CI else 400


# --------------------------------------------------------------------------- comparison


@contextmanager
def fast_path(on: bool) -> Iterator[None]:
    """The fast path on (the C function) or off (None) inside the block."""
    saved = tls._parse_hello_body
    tls._parse_hello_body = _tls.parse_hello_body if on else None
    try:
        yield
    finally:
        tls._parse_hello_body = saved




def check_hello(new: ClientHello | ServerHello | None, old: ClientHello | ServerHello | None) -> None:
    assert strict(new) == strict(old)
    if new is None or old is None:
        assert new is old
        return
    assert new == old and hash(new) == hash(old) and repr(new) == repr(old)
    for f in dataclasses.fields(new):
        assert getattr(new, f.name) == getattr(old, f.name), f.name
    assert new.extension_types == old.extension_types
    assert new.anomalies == old.anomalies
    assert all(type(e) is tls.Extension for e in new.extensions)
    assert [vars(e) for e in new.extensions] == [vars(e) for e in old.extensions]
    rebuilt = type(new)(**{f.name: getattr(new, f.name) for f in dataclasses.fields(new)})
    assert rebuilt == new and hash(rebuilt) == hash(new)
    if isinstance(new, ClientHello):
        assert isinstance(old, ClientHello)
        assert tls.client_fingerprints(new) == tls.client_fingerprints(old)
        assert (tls.ja3(new), tls.ja4(new), tls.ja4_o(new)) == (tls.ja3(old), tls.ja4(old), tls.ja4_o(old))
    else:
        assert isinstance(old, ServerHello)
        assert tls.ja3s(new) == tls.ja3s(old)


def both(fn: Callable[[], Any]) -> tuple[Any, Any]:
    with fast_path(True):
        new = fn()
    with fast_path(False):
        old = fn()
    return new, old


def check_read(data: bytes) -> None:
    new, old = both(lambda: tls.read_hello(data))
    assert (new.complete, new.consumed, new.anomalies) == (old.complete, old.consumed, old.anomalies)
    check_hello(new.hello, old.hello)
    assert strict(new) == strict(old)


def check_bodies(body: bytes) -> None:
    for record_version in (None, 0x0301):
        check_hello(*both(lambda rv=record_version: tls.parse_client_hello(body, rv)))
        check_hello(*both(lambda rv=record_version: tls.parse_server_hello(body, rv)))


def check_everything(data: bytes) -> None:
    check_read(data)
    check_bodies(data)
    check_bodies(data[4:])
    check_bodies(data[9:])


class Counter:
    """A stand-in for the C function that counts the calls it answered."""

    def __init__(self) -> None:
        self.calls = self.taken = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        fields = _tls.parse_hello_body(*args)
        self.taken += fields is not None
        return fields


# --------------------------------------------------------------------------- the fast path is taken


def test_clean_chrome_hello_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counter()
    monkeypatch.setattr(tls, "_parse_hello_body", counter)
    read = tls.read_hello(BASES["chrome"])
    assert read.complete and read.anomalies == () and isinstance(read.hello, ClientHello)
    assert (counter.calls, counter.taken) == (1, 1)
    assert read.hello.sni is not None and read.hello.alpn and read.hello.supported_versions
    assert tls.client_fingerprints(read.hello).ja4.hash.startswith("t13d")
    server = tls.read_hello(BASES["server"])
    assert isinstance(server.hello, ServerHello) and server.hello.supported_version == 0x0304
    assert (counter.calls, counter.taken) == (2, 2)
    # a hello with an anomaly is left to Python
    tls.read_hello(BASES["duplicates"])
    assert (counter.calls, counter.taken) == (3, 2)


def test_real_chrome_hello_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch, corpus_dir: Path) -> None:
    path = corpus_dir / "foxio-ja4" / "pcap" / "tls-handshake.pcapng"
    if not path.is_file():
        pytest.skip("tls-handshake.pcapng is absent from the corpus")
    data = next(d for d in hello_buffers(path) if d[:1] == b"\x16")
    counter = Counter()
    monkeypatch.setattr(tls, "_parse_hello_body", counter)
    read = tls.read_hello(data)
    assert isinstance(read.hello, ClientHello) and read.anomalies == ()
    assert (counter.calls, counter.taken) == (1, 1)
    check_read(data)


def test_c_function_arguments() -> None:
    f = _tls.parse_hello_body
    body = BASES["chrome"][9:]
    fields = f(body, 0, len(body), 1)
    assert fields is not None and len(fields) == 10
    assert type(fields[3]) is tuple and all(type(b) is bytes for b in fields[3])
    with_class = f(body, 0, len(body), 1, tls.Extension)
    assert with_class is not None
    assert with_class[3] == tuple(tls.Extension(t, b) for t, b in zip(fields[2], fields[3], strict=True))
    assert f(body, 0, len(body), 3) is None
    for start, end in ((-1, len(body)), (0, len(body) + 1), (5, 4), (len(body) + 1, len(body) + 1)):
        assert f(body, start, end, 1) is None
    with pytest.raises(TypeError):
        f(bytearray(body), 0, len(body), 1)
    with pytest.raises(TypeError):
        f(body, 0, len(body))
    with pytest.raises(TypeError):
        f(body, 0, len(body), 1, int)
    with pytest.raises(TypeError):
        f(body, 0, len(body), 1, "Extension")


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize("name", sorted(BASES))
def test_built_hellos_cut_at_every_length(name: str) -> None:
    data = BASES[name]
    for n in range(len(data) + 1):
        check_everything(data[:n])


def test_huge_and_odd_lengths() -> None:
    ext = b"\x00\x17\x00\x00"
    for data in (
        b"\x03\x03" + b"\x00" * tls.MAX_HELLO_BYTES,
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x04" + ext,
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x03\x13\x01\x02" + b"\x01\x00",
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00" + b"\x00\x05" + ext,
        b"\x7f\x12" + b"\x00" * 32 + b"\x13\x01" + b"\x00\x04" + ext,
        b"\x7f\x12" + b"\x00" * 32 + b"\x13\x01",
        b"\x03\x03" + b"\x00" * 32 + b"\x00\x13\x01\x00" + b"\x00\x06" + b"\x00\x2b\x00\x02\x03\x04",
        b"\x03\x03" + b"\x00" * 32 + b"\x00\x13\x01\x00" + b"\x00\x07" + b"\x00\x2b\x00\x03\x03\x04\x00",
    ):
        check_bodies(data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(mutated())
def test_mutated_and_truncated_hellos(data: bytes) -> None:
    check_everything(data)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check_everything(data)
    check_read(b"\x16\x03\x03" + (len(data) + 4).to_bytes(2, "big") + b"\x01"
               + len(data).to_bytes(3, "big") + data)
    check_read(b"\x16\x03\x03" + (len(data) + 4).to_bytes(2, "big") + b"\x02"
               + len(data).to_bytes(3, "big") + data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data())
def test_arbitrary_offsets(data: st.DataObject) -> None:
    """The private parsers on any ``d[p:end]``, and the C function on any offsets at all."""
    d = bytes(data.draw(mutated()))
    end = data.draw(st.integers(0, len(d)))
    p = data.draw(st.integers(0, end))
    for parse in (tls._client_hello, tls._server_hello):
        check_hello(*both(lambda parse=parse: parse(d, p, end, None)))
    start = data.draw(st.integers(-5, len(d) + 5))
    stop = data.draw(st.integers(-5, len(d) + 5))
    for kind in (0, 1, 2, 3):
        _tls.parse_hello_body(d, start, stop, kind)
        _tls.parse_hello_body(d, start, stop, kind, tls.Extension)


# --------------------------------------------------------------------------- corpus


@pytest.mark.corpus
def test_corpus_hellos(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captures = corpus_captures(corpus_dir)
    if not captures:
        pytest.skip("no TLS captures in the corpus")
    buffers = hellos = 0
    counter = Counter()
    for path in captures:
        for data in hello_buffers(path):
            buffers += 1
            check_read(data)
            with monkeypatch.context() as m:
                m.setattr(tls, "_parse_hello_body", counter)
                if tls.read_hello(data).hello is not None:
                    hellos += 1
    print(f"\ncorpus: {buffers} buffers, {hellos} hellos, "
          f"{counter.calls} body parses, {counter.taken} on the C fast path")
    assert hellos >= 3000, (buffers, hellos)
    # nearly every real hello is clean: the fast path must carry most of them
    assert counter.taken >= 0.8 * hellos, (counter.calls, counter.taken, hellos)
