"""QUIC test material shared by tests/test_quic.py and the fuzz/ harnesses: RFC 9001 §A.2's
CRYPTO frame and the variable-length integer encoding (RFC 9000 §16)."""

from __future__ import annotations

# RFC 9001 §A.2: the CRYPTO frame (offset 0, length 241) carrying the ClientHello.
A2_CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e86804fe3a47f06a2b69484c"
    "00000413011302010000c000000010000e00000b6578616d706c652e636f6dff01000100000a0008"
    "0006001d0017001800100007000504616c706e000500050100000000003300260024001d00209370b2"
    "c9caa47fbabaf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b0003020304000d0010000e"
    "0403050306030203080408050806002d00020101001c00024001003900320408ffffffffffffffff0504"
    "8000ffff07048000ffff0801100104800075300901100f088394c8f03e51570806048000ffff")


def varint(v: int) -> bytes:
    if v < 64:
        return bytes([v])
    if v < 16384:
        return (v | 0x4000).to_bytes(2, "big")
    return (v | 0x8000_0000).to_bytes(4, "big")
