"""Deterministic derived seeds and identifiers (hashlib, never ``hash()`` or the global ``random``)."""

from __future__ import annotations

import hashlib
import random

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _digest(parts: tuple[object, ...]) -> bytes:
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()


def derive_seed(*parts: object) -> int:
    """A 64-bit seed that depends only on ``parts`` (stable across processes and Python versions)."""
    return int.from_bytes(_digest(parts)[:8], "big")


def rng_for(*parts: object) -> random.Random:
    return random.Random(derive_seed(*parts))


def unit_interval(*parts: object) -> float:
    """A deterministic number in [0, 1) for per-record decisions ("is this record corrupted?")."""
    return derive_seed(*parts) / 2.0**64


def hex_token(*parts: object, length: int = 32) -> str:
    return _digest(parts).hex()[:length]


def base62_id(*parts: object, length: int = 8) -> str:
    """Short opaque ids shaped like real exercise ids (``y7lOpwnJ``)."""
    number = int.from_bytes(_digest(parts), "big")
    chars = []
    for _ in range(length):
        number, remainder = divmod(number, 62)
        chars.append(_BASE62[remainder])
    return "".join(chars)
