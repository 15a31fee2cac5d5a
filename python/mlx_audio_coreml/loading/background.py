"""A session's load, in the foreground or on a worker thread, and the "usable yet?" gate around it.

    self._state = LoadState()
    self._state.start(self._load, background=options.load_in_background, name="kokoro-session-load")
    ...
    def _load(self) -> None:
        ...  # weights, selection, package download
        self._state.usable()  # MLX can serve from here on; a Core ML compile may still follow
        ...

A load that raises hands its error to the caller: at once in the foreground, on first use
(`wait_ready`) in the background. The seed's `loadInBackground`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..cpu.teardown import release_streams_at_thread_exit


class LoadState:
    """Whether a session is usable, and the error its load ended with."""

    def __init__(self) -> None:
        self._usable = threading.Event()
        self._error: BaseException | None = None

    def start(self, load: Callable[[], None], *, background: bool, name: str) -> None:
        """Run `load()`; in the background it returns at once, else it raises what `load` raised."""
        if background:
            threading.Thread(target=self._run, args=(load,), name=name, daemon=True).start()
            return
        self._run(load)
        if self._error is not None:
            raise self._error

    def usable(self) -> None:
        """Called by the load once the session can serve (on MLX at least)."""
        self._usable.set()

    @property
    def ready(self) -> bool:
        """True once the session is usable, or its load failed."""
        return self._usable.is_set()

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Wait for the load; raise its error if it failed. False on timeout."""
        if not self._usable.wait(timeout_s):
            return False
        if self._error is not None:
            raise self._error
        return True

    def _run(self, load: Callable[[], None]) -> None:
        release_streams_at_thread_exit()  # the load runs MLX on this thread (cpu/teardown.py)
        try:
            load()
        except BaseException as exc:  # handed to the caller (foreground) or to first use (background)
            self._error = exc
        finally:
            self._usable.set()
