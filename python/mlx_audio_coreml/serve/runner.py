"""Running the app on uvicorn: in the foreground (the CLI) or on a background thread bound to a
free loopback port (tests, benchmarks, apps that embed the server).

    with BackgroundServer(app) as url:   # "http://127.0.0.1:PORT"
        ...
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"


def config(
    app: Any, host: str = LOOPBACK, port: int = 8000, grace_s: float = 30.0, log_level: str = "info"
) -> uvicorn.Config:
    """uvicorn's settings for us: shutdown waits `grace_s` for requests in flight (drains)."""
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=int(grace_s))


class BackgroundServer:
    """The app served on a free loopback port from a daemon thread, until the block ends."""

    def __init__(self, app: Any, grace_s: float = 10.0, log_level: str = "warning") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((LOOPBACK, 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.server = uvicorn.Server(config(app, LOOPBACK, self.port, grace_s, log_level))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self.url

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop taking requests, let those in flight finish, then stop."""
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()
