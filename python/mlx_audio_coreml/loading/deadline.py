"""Compile and load a Core ML package with a deadline and a cancel token, never blocking past either.

Nothing in Core ML stops a compile once started, and neither coremltools nor the portable runtime
can be interrupted. So every runtime's `load` runs on a worker thread here, and the caller waits on
it in short slices: on cancel or timeout the caller returns at once (well within the seed's 1 s)
and the worker is abandoned. The runtime gets the same cancel token and deadline, so one that can
abandon natively (the apple runtime) drops its work too; a model that finishes loading after it was
abandoned is closed, not leaked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from ..cancel import CancelToken
from ..coreml.runtime import ComputeUnits, CoreMLRuntime, LoadedModel, LoadStage
from ..errors import ANECompilationCancelled, ANECompilationTimeout

logger = logging.getLogger(__name__)

_POLL_S = 0.02  # how often the waiting thread looks at the cancel token: bounds cancel latency
TICK_S = 1.0  # how often `on_tick(elapsed_s)` is called while the compile runs

TickCallback = Callable[[float], None]


T = TypeVar("T")


class _Job(Generic[T]):
    """One piece of work on a worker thread; its outcome waits for the waiter to collect or abandon it."""

    def __init__(self, work: Callable[[CancelToken], T], dispose: Callable[[T], None]) -> None:
        self.work = work
        self.dispose = dispose  # frees a result nobody will collect
        self.token = CancelToken()  # the work's own token: set when the waiter gives up
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.abandoned = False
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            result = self.work(self.token)
        except BaseException as exc:  # handed to the waiter, who raises it
            with self._lock:
                self.error = exc
        else:
            with self._lock:
                keep = not self.abandoned
                if keep:
                    self.result = result
            if not keep:
                _dispose_quietly(self.dispose, result)
        finally:
            self.done.set()

    def abandon(self) -> None:
        self.token.cancel()
        with self._lock:
            self.abandoned = True
            result, self.result = self.result, None
        if result is not None:
            _dispose_quietly(self.dispose, result)


def run_with_deadline(
    work: Callable[[CancelToken], T],
    *,
    timeout_s: float,
    cancel: CancelToken | None = None,
    on_tick: TickCallback | None = None,
    stage: Callable[[], str] = lambda: "",
    dispose: Callable[[T], None] = lambda result: None,
    name: str = "coreml-job",
) -> T:
    """Run `work(token)` on a worker thread; return its result, or raise on cancel/timeout at once.

    Raises ANECompilationCancelled / ANECompilationTimeout (with `stage()` at that moment), or what
    `work` raised. An abandoned job's token is cancelled and its late result passed to `dispose`.
    """
    job: _Job[T] = _Job(work, dispose)
    worker = threading.Thread(target=job.run, name=name, daemon=True)
    started = time.monotonic()
    worker.start()
    next_tick = TICK_S
    while not job.done.wait(_POLL_S):
        elapsed = time.monotonic() - started
        if cancel is not None and cancel.cancelled:
            job.abandon()
            raise ANECompilationCancelled(stage())
        if elapsed >= timeout_s:
            job.abandon()
            raise ANECompilationTimeout(timeout_s, stage())
        if on_tick is not None and elapsed >= next_tick:
            next_tick += TICK_S
            _tick(on_tick, elapsed)
    if job.error is not None:
        raise job.error
    return job.result  # type: ignore[return-value]


def load_with_deadline(
    runtime: CoreMLRuntime,
    package: Path,
    compute_units: ComputeUnits,
    *,
    timeout_s: float,
    cancel: CancelToken | None = None,
    on_tick: TickCallback | None = None,
) -> LoadedModel:
    """`runtime.load(package)` bounded by `timeout_s` and `cancel`.

    Raises ANECompilationTimeout, ANECompilationCancelled, or whatever the runtime raised
    (ModelLoadFailed, CoreMLRuntimeUnavailable, PackageError ...). `on_tick` sees the elapsed seconds
    about once a second; an exception from it is logged and ignored.
    """
    stage = [LoadStage.QUEUED]

    def load(token: CancelToken) -> LoadedModel:
        return runtime.load(
            package, compute_units, timeout_s=timeout_s, cancel=token, on_stage=lambda s: stage.__setitem__(0, s)
        )

    return run_with_deadline(
        load,
        timeout_s=timeout_s,
        cancel=cancel,
        on_tick=on_tick,
        stage=lambda: stage[0].value,
        dispose=lambda model: model.close(),
        name=f"coreml-load:{package.name}",
    )


def _tick(on_tick: TickCallback, elapsed: float) -> None:
    try:
        on_tick(elapsed)
    except Exception:
        logger.exception("compile progress callback raised; continuing")


def _dispose_quietly(dispose: Callable[[T], None], result: T) -> None:
    try:
        dispose(result)
    except Exception:
        logger.exception("freeing the result of an abandoned Core ML job failed")
