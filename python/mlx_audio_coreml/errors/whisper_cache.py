"""Errors of the CPU host decoder's key/value cache (whisper/host_cache.py)."""

from __future__ import annotations

from .conversion import DecodingError


class StaleCache(DecodingError):
    """A cached keys/values value was read after its buffer's rows were rewritten in place (beam
    search reorders the newest value of a buffer where it lies; every older value of it goes stale)."""

    def __init__(self, length: int, version: int, current: int) -> None:
        self.length = length
        self.version = version
        self.current = current
        super().__init__(
            f"stale host cache: {length} token rows of buffer version {version}, rewritten since (now version {current})"
        )
