"""The fallback switch: one component's MLX and Core ML implementations behind one object.

A session hands its pipeline the switch, never an implementation. It runs MLX until a Core ML
implementation is switched in (after its compile and warm-up), and MLX again, for good, when that
one fails while running: the failed call is answered by MLX, the broken model is closed, and
`on_coreml_failure(error)` tells the session (which emits the event and records it). The seed's
`coreMLInferenceFailed` path. `encoders.FallbackEncoder` and `vocoders.FallbackVocoder` are the
two switches; they differ only in the method they forward.

Thread-safe: calls run concurrently (no lock around them); only switching takes the lock. A Core
ML model switched out (by a failure, a new model or `close()`) is closed only after the last call
still running on it returns: a prediction may be writing into its buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import ClassVar, Generic, Protocol, TypeVar

R = TypeVar("R")


class Closable(Protocol):
    backend: str

    def close(self) -> None: ...


M = TypeVar("M")  # the MLX implementation
C = TypeVar("C", bound=Closable)  # the Core ML implementation

FailureCallback = Callable[[BaseException], None]


class FallbackSwitch(Generic[M, C]):
    """MLX until `use_coreml`; back to MLX for good when a Core ML call raises one of `failures`."""

    failures: ClassVar[tuple[type[BaseException], ...]] = ()  # what counts as "Core ML broke while running"

    def __init__(self, mlx_impl: M, on_coreml_failure: FailureCallback | None = None) -> None:
        self.mlx = mlx_impl
        self.coreml: C | None = None
        self.on_coreml_failure = on_coreml_failure
        self._lock = threading.Lock()
        self._calls: dict[int, int] = {}  # id(Core ML implementation) -> its calls in flight
        self._retired: dict[int, C] = {}  # switched out while calls were in flight: closed after the last

    @property
    def backend(self) -> str:
        """ "coreML" or "mlx": what runs the next call."""
        return "coreML" if self.coreml is not None else "mlx"

    def use_coreml(self, impl: C) -> None:
        self._switch_to(impl)

    def use_mlx(self) -> None:
        self._switch_to(None)

    def close(self) -> None:
        self.use_mlx()

    def _call(self, on_coreml: Callable[[C], R], on_mlx: Callable[[M], R]) -> R:
        with self._lock:
            coreml = self.coreml
            if coreml is not None:
                self._calls[id(coreml)] = self._calls.get(id(coreml), 0) + 1
        if coreml is None:
            return on_mlx(self.mlx)
        try:
            return on_coreml(coreml)
        except self.failures as exc:
            failure: BaseException = exc
        finally:
            self._release(coreml)
        self._drop(coreml, failure)
        return on_mlx(self.mlx)

    def _switch_to(self, impl: C | None) -> None:
        with self._lock:
            previous, self.coreml = self.coreml, impl
            close_now = previous is not None and previous is not impl and self._retire(previous)
        if close_now:
            assert previous is not None
            previous.close()

    def _retire(self, impl: C) -> bool:
        """Under the lock: True when `impl` can be closed now; else it is closed by its last call.
        A model is never closed under a prediction that still reads or writes its memory."""
        if self._calls.get(id(impl), 0) == 0:
            return True
        self._retired[id(impl)] = impl
        return False

    def _release(self, impl: C) -> None:
        with self._lock:
            left = self._calls[id(impl)] - 1
            if left:
                self._calls[id(impl)] = left
                return
            del self._calls[id(impl)]
            retired = self._retired.pop(id(impl), None)
        if retired is not None:
            retired.close()

    def _drop(self, coreml: C, error: BaseException) -> None:
        """Switch `coreml` out, once, however many concurrent calls saw it fail."""
        with self._lock:
            failed = self.coreml is coreml
            close_now = failed and self._retire(coreml)
            if failed:
                self.coreml = None
        if close_now:
            coreml.close()
        if failed and self.on_coreml_failure is not None:
            self.on_coreml_failure(error)
