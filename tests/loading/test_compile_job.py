"""loading/deadline.py: a runtime's load bounded by a deadline and a cancel token, abandoned, never waited on.

The "runtime" here is a stand-in class whose load sleeps (ignoring its cancel token, as Core ML
does): it exercises the waiting logic only. The real runtimes under it are tested in
test_scenarios.py (portable) and test_standin_scenarios.py (apple over the shim's stand-in).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mlx_audio_coreml.cancel import CancelToken
from mlx_audio_coreml.coreml.runtime import ComputeUnits, LoadStage, ModelDescription
from mlx_audio_coreml.errors import ANECompilationCancelled, ANECompilationTimeout, ModelLoadFailed
from mlx_audio_coreml.loading.deadline import load_with_deadline, run_with_deadline


class _Model:
    description = ModelDescription((), ())
    neural_engine_compiled = False

    def __init__(self) -> None:
        self.closed = threading.Event()

    def predict(self, inputs, outputs=None):  # pragma: no cover - never called here
        raise AssertionError

    def close(self) -> None:
        self.closed.set()


class _SlowRuntime:
    """Loads for `seconds`, reporting stages, without looking at its cancel token (like Core ML)."""

    name = "slow"
    claims_neural_engine = True

    def __init__(self, seconds: float, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error
        self.model = _Model()
        self.finished = threading.Event()

    def load(self, package, compute_units=ComputeUnits.ALL, *, timeout_s=None, cancel=None, on_stage=None):
        on_stage(LoadStage.COMPILING)
        time.sleep(self.seconds / 2)
        on_stage(LoadStage.LOADING)
        time.sleep(self.seconds / 2)
        self.finished.set()
        if self.error is not None:
            raise self.error
        return self.model


def test_a_load_within_the_deadline_returns_the_model():
    runtime = _SlowRuntime(0.05)
    assert load_with_deadline(runtime, Path("x.mlpackage"), ComputeUnits.ALL, timeout_s=5) is runtime.model


def test_timeout_raises_at_the_deadline_with_the_stage_and_frees_the_late_model():
    runtime = _SlowRuntime(1.0)
    started = time.monotonic()
    with pytest.raises(ANECompilationTimeout) as raised:
        load_with_deadline(runtime, Path("x.mlpackage"), ComputeUnits.ALL, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 0.5
    assert raised.value.timeout_s == 0.3 and raised.value.stage == "compiling"
    assert runtime.finished.wait(2) and runtime.model.closed.wait(1)  # finished later, then closed


def test_cancel_returns_at_once_even_though_the_runtime_keeps_going():
    runtime = _SlowRuntime(2.0)
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(ANECompilationCancelled):
        load_with_deadline(runtime, Path("x.mlpackage"), ComputeUnits.ALL, timeout_s=60, cancel=token)
    assert time.monotonic() - started < 0.4
    assert not runtime.finished.is_set()  # abandoned, not waited for


def test_runtime_errors_pass_through():
    runtime = _SlowRuntime(0.01, ModelLoadFailed("x.mlpackage", "bad spec"))
    with pytest.raises(ModelLoadFailed):
        load_with_deadline(runtime, Path("x.mlpackage"), ComputeUnits.ALL, timeout_s=5)


def test_ticks_report_elapsed_time_about_once_a_second_and_a_raising_tick_is_ignored():
    ticks: list[float] = []

    def tick(elapsed: float) -> None:
        ticks.append(elapsed)
        raise RuntimeError("UI gone")

    run_with_deadline(lambda token: time.sleep(2.3), timeout_s=10, on_tick=tick)
    assert len(ticks) == 2 and 1.0 <= ticks[0] < 1.2 and 2.0 <= ticks[1] < 2.2
