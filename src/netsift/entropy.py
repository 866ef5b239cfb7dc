"""Entropy of names: how random a string looks, on a scale where random strings give about 1.

Shared by the DNS report (per-client mean over query names) and the
``dns_tunnel`` detector.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Final

_HEX: Final = frozenset("0123456789abcdef")
_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_B64: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/=")


def entropy_ratio(text: str) -> float:
    """Shannon entropy of ``text`` over the entropy expected of random characters of its length
    drawn from its alphabet (hex 16, lower-case alphanumerics 37, base64 64, else 256), with the
    Miller–Madow small-sample correction: random strings give about 1, words about 0.8–0.9."""
    n = len(text)
    if n < 2:
        return 0.0
    counts = Counter(text).values()
    h = -sum(c / n * math.log2(c / n) for c in counts)
    chars = set(text.lower())
    size = 16 if chars <= _HEX else 37 if chars <= _ALNUM else 64 if set(text) <= _B64 else 256
    expected = min(math.log2(size) - (size - 1) / (2 * n * math.log(2)), math.log2(n))
    return h / expected if expected > 0 else 0.0
