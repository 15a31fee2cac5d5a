"""A cancel token: the synchronous twin of asyncio task cancellation, shared by every long job."""

from __future__ import annotations

import threading


class CancelToken:
    """Set once by any thread; long jobs poll `cancelled` or wait on it with a timeout."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`; True as soon as the token is cancelled."""
        return self._event.wait(timeout_s)
