"""Byte progress for downloads: huggingface_hub's per-file progress bars added up into one fraction.

huggingface_hub reports bytes through a tqdm class it instantiates per file; `ByteProgress.tqdm_class()`
is a minimal look-alike that forwards every update here, and `on_fraction` hears the share of all
bytes done, at most once per percent (always at 0.0 when forced and at 1.0).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

FractionCallback = Callable[[float], None]


class ByteProgress:
    """Adds up bytes from huggingface_hub's per-file progress bars into one fraction callback."""

    _STEP = 0.01  # report at most every 1 %

    def __init__(self, total: int, on_fraction: FractionCallback | None) -> None:
        self.total = total
        self.done = 0
        self.on_fraction = on_fraction
        self._last = -1.0
        self._lock = threading.Lock()

    def add(self, count: float) -> None:
        with self._lock:
            self.done += int(count)  # negative after a restarted transfer
        self.report()

    def settle(self, done: int) -> None:
        with self._lock:
            self.done = done
        self.report()

    def report(self, force: bool = False) -> None:
        fraction = 1.0 if self.total <= 0 else min(max(self.done / self.total, 0.0), 1.0)
        small_step = abs(fraction - self._last) < self._STEP and fraction < 1.0
        if self.on_fraction is None or fraction == self._last or (small_step and not force):
            return
        self._last = fraction
        self.on_fraction(fraction)

    def finish(self) -> None:
        self.settle(self.total)

    def tqdm_class(self) -> type:
        """A minimal tqdm look-alike that huggingface_hub can instantiate per file."""
        owner = self

        class _Bar:
            def __init__(self, *args: object, **kwargs: object) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, n: float | None = 1) -> None:
                owner.add(n or 0)

            def close(self) -> None:
                pass

        return _Bar
