"""Write the seed corpora of the fuzz harnesses into a directory (nothing is committed).

    python fuzz/make_seeds.py SEEDS_DIR

makes ``SEEDS_DIR/{capture,analyze,decode,dns,tls,http,quic}``.  Seeds come from
the shared capture corpus (``$NETSIFT_CORPUS``, else ``shared/corpus`` beside
the repository, as the tests find it): small captures of every format and link
type (cut to a few records), and the DNS, TLS, HTTP and QUIC payloads found in a
few of them; plus a few built here (a gzipped capture, a QUIC frame payload
holding the RFC 9001 §A.2 ClientHello).  Without the corpus only the built
seeds are written.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import struct
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from netsift import decode_fast
from netsift.capture import CaptureReader
from netsift.columns import LINK_TYPES
from netsift.errors import NetsiftError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from quicgen import A2_CRYPTO_FRAME  # RFC 9001 §A.2's CRYPTO frame, shared with tests/test_quic.py

REPO = Path(__file__).resolve().parents[1]
MAX_CAPTURE_SEED = 4096
PER_KIND = 40
#: Captures whose payloads seed the protocol harnesses (paths inside the corpus).
PAYLOAD_SOURCES = (
    "foxio-ja4/pcap/tls12.pcap",
    "foxio-ja4/pcap/tls-handshake.pcapng",
    "foxio-ja4/pcap/tls-sni.pcapng",
    "foxio-ja4/pcap/tls-alpn-h2.pcap",
    "foxio-ja4/pcap/tls3.pcapng",
    "foxio-ja4/pcap/http1.pcapng",
    "foxio-ja4/pcap/http1-with-cookies.pcapng",
    "foxio-ja4/pcap/http-empty-useragent.pcap",
    "foxio-ja4/pcap/quic-tls-handshake.pcapng",
    "foxio-ja4/pcap/chrome-cloudflare-quic-with-secrets.pcapng",
    "foxio-ja4/pcap/https3-301-get.pcap",
    "foxio-ja4/pcap/ipv6.pcapng",
    "dmachard-datasets-malicious-dns/dnscat2.pcap",
    "dmachard-datasets-malicious-dns/iodine.pcap",
)


def corpus_dir() -> Path:
    env = os.environ.get("NETSIFT_CORPUS")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def put(out: Path, kind: str, data: bytes) -> None:
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.iterdir())) < PER_KIND or kind in ("capture", "analyze"):
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def cut_pcap(raw: bytes) -> bytes:
    """The global header and the whole records that fit in MAX_CAPTURE_SEED bytes."""
    if len(raw) < 24:
        return raw
    order = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos + 16 <= len(raw):
        incl = struct.unpack_from(order + "I", raw, pos + 8)[0]
        if pos + 16 + incl > MAX_CAPTURE_SEED:
            break
        pos += 16 + incl
    return raw[:max(pos, 24)]


def cut_pcapng(raw: bytes) -> bytes:
    """The whole blocks that fit in MAX_CAPTURE_SEED bytes (at least the first one)."""
    order = "<" if raw[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    pos = 0
    while pos + 12 <= len(raw):
        blen = struct.unpack_from(order + "I", raw, pos + 4)[0]
        if blen < 12 or (pos and pos + blen > MAX_CAPTURE_SEED):
            break
        pos += blen
    return raw[:pos]


def capture_seeds(corpus: Path, out: Path) -> list[Path]:
    """One or two small captures per (format, link type), cut to a few records."""
    picked: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    with open(corpus / "FILES.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["role"] == "capture" and row["capture_format"] and 100 < int(row["bytes"]) < 20000:
                picked[(row["capture_format"], row["encapsulation"])].append(
                    (int(row["bytes"]), row["path"]))
    sources = []
    for key in sorted(picked):
        for _size, path in sorted(picked[key])[:2 if key[1] in ("ether", "per-packet") else 1]:
            raw = (corpus / path).read_bytes()
            seed = cut_pcapng(raw) if raw[:4] == b"\x0a\x0d\x0d\x0a" else cut_pcap(raw)
            put(out, "capture", seed)
            put(out, "analyze", seed)
            sources.append(corpus / path)
    return sources


def decode_seed(path: Path) -> bytes | None:
    """fuzz_decode.py's record format from the first records of a capture."""
    links = (*sorted(LINK_TYPES), 9, 105, 147)
    out = bytearray()
    try:
        with CaptureReader(str(path)) as reader:
            for batch in reader.batches():
                for i in range(min(len(batch), 6)):
                    lt = int(batch.link_type[i])
                    data = batch.packet_bytes(i)[:300]
                    if lt not in links:
                        continue
                    out += bytes([links.index(lt)]) + len(data).to_bytes(2, "big") + b"\x00" + data
                break
    except NetsiftError:
        return None
    return bytes(out) or None


def payload_seeds(corpus: Path, out: Path) -> None:
    """DNS, TLS, HTTP and QUIC payloads of a few captures, found with netsift's decoder."""
    for rel in PAYLOAD_SOURCES:
        path = corpus / rel
        if not path.exists():
            continue
        with CaptureReader(str(path)) as reader:
            for batch in reader.batches():
                cols = decode_fast.decode(batch)
                for i in np.nonzero(cols.payload_len > 0)[0].tolist():
                    start = int(batch.off[i]) + int(cols.payload_off[i])
                    n = min(int(cols.payload_len[i]), int(batch.caplen[i]) - int(cols.payload_off[i]))
                    data = batch.buf[start:start + n].tobytes()
                    ports = {int(cols.sport[i]), int(cols.dport[i])}
                    udp = int(cols.ip_proto[i]) == 17
                    if not data:
                        continue
                    if 53 in ports:
                        put(out, "dns", data if udp else data[2:])
                    elif udp and 443 in ports and data[0] & 0x80:
                        put(out, "quic", data)
                    elif data[:2] == b"\x16\x03":
                        put(out, "tls", data)
                    elif data[:4] in (b"GET ", b"POST", b"HTTP", b"HEAD", b"PUT "):
                        put(out, "http", data)


def built_seeds(out: Path) -> None:
    put(out, "quic", b"\x00" + A2_CRYPTO_FRAME)
    put(out, "quic", b"\x03" + A2_CRYPTO_FRAME)
    put(out, "tls", b"\x16\x03\x01\x00\xf5" + A2_CRYPTO_FRAME[4:])
    put(out, "http", b"GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc"
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    put(out, "dns", bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001"))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    built_seeds(out)
    corpus = corpus_dir()
    if (corpus / "FILES.tsv").exists():
        for path in capture_seeds(corpus, out):
            seed = decode_seed(path)
            if seed:
                put(out, "decode", seed)
        payload_seeds(corpus, out)
        gz = sorted((out / "capture").iterdir())[0].read_bytes()
        put(out, "capture", gzip.compress(gz, mtime=0))
    for kind in sorted(p.name for p in out.iterdir()):
        files = list((out / kind).iterdir())
        print(f"{kind}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
