"""A one-line text progress bar for the command line, drawn on stderr with carriage returns.

Redraws at most every `min_interval_s` (and always at the end), so a fast producer does not
flood the terminal. `enabled=False` makes every call a no-op, so callers need no branches.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        width: int = 30,
        min_interval_s: float = 0.1,
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.min_interval_s = min_interval_s
        self._last_draw = 0.0
        self._drawn = False

    @staticmethod
    def wanted(forced: bool, stream: TextIO | None = None) -> bool:
        """Draw when asked to, or when the stream is a terminal."""
        stream = stream if stream is not None else sys.stderr
        return forced or bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: float, total: float) -> None:
        """Show `done` out of `total` (seconds of audio)."""
        if not self.enabled:
            return
        now = time.monotonic()
        finished = total > 0 and done >= total
        if not finished and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        self.stream.write("\r" + self.render(done, total))
        self.stream.flush()
        self._drawn = True

    def render(self, done: float, total: float) -> str:
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        label = f"{self.label} " if self.label else ""
        return f"{label}[{bar}] {fraction * 100:5.1f}% {done:7.1f}/{total:.1f} s"

    def clear(self) -> None:
        """Take the bar off its line (a terminal erases it; a file just gets a line break)."""
        if self.enabled and self._drawn:
            is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
            self.stream.write("\r\033[K" if is_tty else "\n")
            self.stream.flush()
            self._drawn = False
            self._last_draw = 0.0

    def close(self) -> None:
        """End the bar's line (only if something was drawn)."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
