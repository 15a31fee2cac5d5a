"""A load job on the shim (macb_job): waited on in short polls, polled for its stage, cancelled.

Core ML cannot stop a compile: `cancel()` abandons the job for this handle and returns at once,
the work finishes in the background, and a later load of the same model while it runs adopts it.
Stages come from a native callback on the shim's thread; it only queues them, and `stages()`
hands them to the caller's thread in order.
"""

from __future__ import annotations

import atexit
import os
import queue
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..coreml.runtime import ComputeUnits, LoadStage
from ..errors import NativeError
from . import abi
from .binding import POLL_INTERVAL_S, HandleGuard, NativeCall, NativeLibrary, ffi

_open_jobs: weakref.WeakSet[LoadJob] = weakref.WeakSet()


@dataclass(frozen=True)
class JobState:
    stage: LoadStage
    adopted: bool  # joined a load of the same model already running in this process
    used_compiled_cache: bool  # the compiled .mlmodelc was reused (no compile)
    elapsed_s: float  # since the underlying load started


def _stage(code: int) -> LoadStage:
    return LoadStage(abi.STAGE_NAMES.get(code, "failed"))


class LoadJob:
    """A handle on a background compile + load. Close it (or use it as a context manager)."""

    def __init__(
        self,
        lib: NativeLibrary,
        model_path: Path,
        compiled_path: Path | None,
        compute_units: ComputeUnits,
        prewarm: bool,
        function: str | None = None,
    ) -> None:
        self.library = lib
        self.model_path = model_path
        self.function = function  # a multi-function model's function; None: its default
        self.last_stage = LoadStage.QUEUED  # the last stage handed out by stages()
        self._guard = HandleGuard(lambda: NativeError(abi.CONSTANTS["MACB_ERR_STATE"], "the load job is closed"))
        self._stages: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._user_data = ffi.new_handle(self._stages)  # referenced until the handle is freed
        model = ffi.new("char[]", os.fsencode(model_path))
        compiled = ffi.new("char[]", os.fsencode(compiled_path)) if compiled_path else ffi.NULL
        function_name = ffi.new("char[]", function.encode()) if function is not None else ffi.NULL
        params = ffi.new(
            "macb_load_params *",
            {
                "struct_size": ffi.sizeof("macb_load_params"),
                "model_path": model,
                "compiled_path": compiled,
                "compute_units": int(compute_units),
                "flags": abi.CONSTANTS["MACB_LOAD_PREWARM"] if prewarm else 0,
                "on_stage": lib.stage_callback,
                "user_data": self._user_data,
                "function_name": function_name,
            },
        )
        out = ffi.new("macb_job **")
        call = NativeCall("macb_load_begin")
        call.check(lib.raw.macb_load_begin(params, out, call.msg, abi.MESSAGE_CAPACITY), **self._context())
        self._guard.set(out[0])
        _open_jobs.add(self)

    def stages(self) -> list[LoadStage]:
        """Stages entered since the last call, oldest first (READY or FAILED comes last)."""
        found: list[LoadStage] = []
        while True:
            try:
                found.append(_stage(self._stages.get_nowait()))
            except queue.Empty:
                break
        if found:
            self.last_stage = found[-1]
        return found

    def wait(self, timeout_s: float) -> bool:
        """True once the model is ready, False if `timeout_s` passes first (the job goes on).

        Raises the load's failure (ModelLoadFailed, PackageError, UnknownFunction, CoreMLRuntimeUnavailable) or
        ANECompilationCancelled after cancel(). Waits in slices of POLL_INTERVAL_S for Ctrl-C.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            slice_ms = int(max(0.0, min(POLL_INTERVAL_S, remaining)) * 1000)
            call = NativeCall("macb_job_wait")
            with self._guard.use() as handle:
                status = self.library.raw.macb_job_wait(handle, slice_ms, call.msg, abi.MESSAGE_CAPACITY)
            if status == abi.OK:
                return True
            if status != abi.ERR_TIMEOUT:
                call.check(status, stage=self.last_stage.value, **self._context())
            if remaining <= 0:
                return False

    def _context(self) -> dict[str, str]:
        """What a failure of this job names: the model, and the function asked for."""
        return {"path": str(self.model_path), "function": self.function or ""}

    def state(self) -> JobState:
        out = ffi.new("macb_job_state *", {"struct_size": ffi.sizeof("macb_job_state")})
        with self._guard.use() as handle:
            NativeCall("macb_job_state_get").check(self.library.raw.macb_job_state_get(handle, out))
        return JobState(_stage(out.stage), bool(out.adopted), bool(out.used_compiled_cache), float(out.elapsed_s))

    def cancel(self) -> None:
        """Abandons the load for this handle; returns at once. Idempotent; no-op once closed."""
        if self._guard.is_open:
            with self._guard.use() as handle:
                NativeCall("macb_job_cancel").check(self.library.raw.macb_job_cancel(handle))

    def take_model(self) -> Any:
        """The loaded model (a NativeModel); once per job, after wait() returned True."""
        from .model import NativeModel  # model.py imports nothing from here

        out = ffi.new("macb_model **")
        call = NativeCall("macb_job_take_model")
        with self._guard.use() as handle:
            status = self.library.raw.macb_job_take_model(handle, out, call.msg, abi.MESSAGE_CAPACITY)
        call.check(status, path=str(self.model_path), stage=self.last_stage.value)
        return NativeModel(self.library, out[0], self.model_path)

    def close(self) -> None:
        """Cancels if still running and frees the handle; the stage callback is never called after."""
        self._guard.close(self.library.raw.macb_job_free)
        _open_jobs.discard(self)

    def __enter__(self) -> LoadJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None and guard.is_open:
            self.close()


@atexit.register
def _close_open_jobs() -> None:
    """No stage callback may reach an interpreter that is shutting down."""
    for job in list(_open_jobs):
        job.close()
