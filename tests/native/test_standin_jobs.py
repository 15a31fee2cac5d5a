"""Load jobs through the shim built against the CoreML stand-in.

The stand-in executes no model and proves nothing about Core ML: these tests show the shim's own
logic (deadlines, abandon on cancel, adoption, one compile per model, the compiled cache, failure
mapping) with compile and load times the stand-in fakes by sleeping.
"""

from __future__ import annotations

import _thread
import signal
import threading
import time

import pytest
from native_support import calls

from mlx_audio_coreml.cancel import CancelToken
from mlx_audio_coreml.coreml.apple import AppleRuntime, compiled_cache_path
from mlx_audio_coreml.coreml.runtime import ComputeUnits, LoadStage
from mlx_audio_coreml.errors import (
    ANECompilationCancelled,
    ANECompilationTimeout,
    ANENotAvailable,
    ModelLoadFailed,
    NativeError,
    PackageError,
)
from mlx_audio_coreml.native import abi, ffi

pytestmark = pytest.mark.standin

SLACK_S = 0.1  # the bound on returning after a deadline


@pytest.fixture()
def runtime(standin_path, tmp_path) -> AppleRuntime:
    return AppleRuntime(library_path=standin_path, cache_dir=tmp_path / "compiled")


def test_wait_returns_within_its_deadline_while_a_slow_load_runs(standin, make_package, tmp_path) -> None:
    package = make_package(compile_delay_s=3)
    with standin.begin_load(package, tmp_path / "c.mlmodelc") as job:
        for timeout_ms in (0, 150, 400):
            msg = ffi.new("char[]", 256)
            with job._guard.use() as handle:
                started = time.monotonic()
                status = standin.raw.macb_job_wait(handle, timeout_ms, msg, 256)
                elapsed = time.monotonic() - started
            assert status == abi.ERR_TIMEOUT
            assert elapsed < timeout_ms / 1000 + SLACK_S
            assert b"still loading" in ffi.string(msg)
        started = time.monotonic()
        assert job.wait(0.3) is False
        assert time.monotonic() - started < 0.3 + SLACK_S
        assert job.state().stage == LoadStage.COMPILING


def test_abandoned_slow_compiles_never_keep_a_new_load_queued(runtime, make_package) -> None:
    for index in range(4):  # more abandoned compiles than this machine has cores (2 here)
        with pytest.raises(ANECompilationTimeout):
            runtime.load(make_package(f"slow{index}", compile_delay_s=4), timeout_s=0.05)
    stages: list[LoadStage] = []
    with pytest.raises(ANECompilationTimeout):
        runtime.load(make_package("fresh", compile_delay_s=4), timeout_s=1.0, on_stage=stages.append)
    assert LoadStage.COMPILING in stages


def test_timeout_abandons_the_load_and_reports_it(runtime, make_package) -> None:
    stages: list[LoadStage] = []
    started = time.monotonic()
    with pytest.raises(ANECompilationTimeout) as caught:
        # 1 s, not less: on a loaded 2-core CI machine the background queue can take a few hundred
        # milliseconds to start the compile, and the stage at the deadline must be 'compiling'
        runtime.load(make_package(compile_delay_s=4), timeout_s=1.0, on_stage=stages.append)
    assert time.monotonic() - started < 1.0 + SLACK_S
    assert caught.value.timeout_s == 1.0 and caught.value.stage == "compiling"
    assert stages == [LoadStage.QUEUED, LoadStage.COMPILING, LoadStage.FAILED]


def test_cancel_returns_within_a_second_and_the_next_load_adopts_the_running_job(runtime, make_package) -> None:
    package = make_package(compile_delay_s=2)
    token = CancelToken()
    threading.Timer(0.2, token.cancel).start()
    started = time.monotonic()
    with pytest.raises(ANECompilationCancelled):
        runtime.load(package, cancel=token)
    assert time.monotonic() - started < 0.2 + 1.0
    model = runtime.load(package)  # the abandoned compile is still running: joined, not restarted
    assert model.adopted
    assert [line.split()[0] for line in calls(package)] == ["compile", "load", "predict"]
    model.close()


def test_ctrl_c_interrupts_a_waiting_load_within_a_poll(runtime, make_package) -> None:
    package = make_package(compile_delay_s=2)
    # Python's own Ctrl-C handler, also where this runs with SIGINT ignored (a shell's background job):
    # interrupt_main() raises nothing then
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.2, _thread.interrupt_main).start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            runtime.load(package)
        assert time.monotonic() - started < 0.2 + 0.5
    finally:
        signal.signal(signal.SIGINT, previous)
    assert runtime.load(package).adopted  # the interrupted load was abandoned, not restarted


def test_two_loads_at_once_share_one_compile(runtime, make_package) -> None:
    package = make_package(compile_delay_s=0.5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(runtime.load(package))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(model.adopted for model in results) == [False, True, True]
    assert sum(line.startswith("compile") for line in calls(package)) == 1


def test_stages_arrive_in_order_on_the_calling_thread(runtime, make_package) -> None:
    seen: list[tuple[LoadStage, int]] = []
    model = runtime.load(make_package(), on_stage=lambda stage: seen.append((stage, threading.get_ident())))
    assert [stage for stage, _ in seen] == [
        LoadStage.QUEUED,
        LoadStage.COMPILING,
        LoadStage.LOADING,
        LoadStage.PREWARMING,
        LoadStage.READY,
    ]
    assert {thread for _, thread in seen} == {threading.get_ident()}
    model.close()


def test_a_second_load_reuses_the_compiled_cache(runtime, make_package) -> None:
    package = make_package()
    runtime.load(package).close()
    stages: list[LoadStage] = []
    model = runtime.load(package, on_stage=stages.append)
    assert model.used_compiled_cache
    assert LoadStage.COMPILING not in stages
    assert [line.split()[0] for line in calls(package)] == ["compile", "load", "predict", "load", "predict"]
    model.close()


def test_changing_the_package_compiles_again(runtime, make_package, tmp_path) -> None:
    package = make_package()
    before = compiled_cache_path(package, tmp_path)
    time.sleep(0.01)
    make_package(metadata={"version": "2"})
    assert compiled_cache_path(package, tmp_path) != before
    runtime.load(package).close()
    assert runtime.load(package).description.metadata == {"version": "2"}


def test_a_cached_model_that_no_longer_loads_is_compiled_again(runtime, make_package) -> None:
    package = make_package()
    cached = compiled_cache_path(package, runtime.cache_dir)
    cached.mkdir(parents=True)  # an empty .mlmodelc: the stand-in cannot load it
    model = runtime.load(package)
    assert not model.used_compiled_cache
    assert [line.split()[0] for line in calls(package)] == ["compile", "load", "predict"]
    model.close()


def test_neural_engine_alone_on_a_machine_without_one_is_ane_not_available(runtime, make_package, monkeypatch) -> None:
    monkeypatch.setenv("MACB_STANDIN_ANE_CORES", "0")  # the stand-in plays a Mac without a Neural Engine
    package = make_package()
    with pytest.raises(ANENotAvailable, match="ANE not supported"):
        runtime.load(package, ComputeUnits.CPU_AND_NEURAL_ENGINE)
    assert not calls(package)  # refused before any compile was started
    runtime.load(package, ComputeUnits.CPU_ONLY).close()  # other compute units still load


def test_compute_units_reach_core_ml(runtime, make_package) -> None:
    package = make_package()
    model = runtime.load(package, ComputeUnits.CPU_AND_NEURAL_ENGINE)
    assert calls(package)[1] == "load 3"
    assert model.info().compute_units == ComputeUnits.CPU_AND_NEURAL_ENGINE
    model.close()


def test_a_compile_failure_carries_core_mls_message(runtime, make_package) -> None:
    stages: list[LoadStage] = []
    with pytest.raises(ModelLoadFailed) as caught:
        runtime.load(make_package(fail_compile="weights file truncated"), on_stage=stages.append)
    assert "weights file truncated" in caught.value.message
    assert isinstance(caught.value.__cause__, NativeError)
    assert caught.value.__cause__.status == abi.ERR_COMPILE_FAILED
    assert stages[-1] == LoadStage.FAILED


def test_a_load_failure_carries_core_mls_message(runtime, make_package) -> None:
    with pytest.raises(ModelLoadFailed, match="no ANE program"):
        runtime.load(make_package(fail_load="no ANE program"))


def test_a_failing_prewarm_fails_the_load(runtime, make_package) -> None:
    with pytest.raises(ModelLoadFailed, match="prewarm prediction failed.*ANE died"):
        runtime.load(make_package(fail_predict="ANE died"))


def test_a_feature_that_is_not_a_multiarray_is_unsupported(runtime, make_package) -> None:
    package = make_package(
        inputs=[{"name": "image", "dtype": "image", "shape": [1, 3, 8, 8]}],
        outputs=[{"name": "y", "dtype": "float32", "shape": [2]}],
    )
    with pytest.raises(PackageError, match="'image' is not a multi-array"):
        runtime.load(package)


def test_a_missing_package_is_a_package_error(runtime, tmp_path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        runtime.load(tmp_path / "nowhere.mlpackage")


def test_a_typo_in_the_standin_spec_is_an_error_not_a_silent_default(runtime, make_package) -> None:
    with pytest.raises(ModelLoadFailed, match="unknown keys.*compile_delay"):
        runtime.load(make_package(compile_delay=5))


def test_the_model_is_taken_once(standin, make_package, tmp_path) -> None:
    with standin.begin_load(make_package(), tmp_path / "c.mlmodelc") as job:
        assert job.wait(5)
        job.take_model().close()
        with pytest.raises(NativeError) as caught:
            job.take_model()
    assert caught.value.status == abi.CONSTANTS["MACB_ERR_STATE"]


def test_no_stage_reaches_a_job_after_it_is_closed(standin, make_package, tmp_path) -> None:
    package = make_package(compile_delay_s=0.3)
    first = standin.begin_load(package, tmp_path / "c.mlmodelc")
    first.close()
    delivered = first._stages.qsize()  # what arrived before close returned
    with standin.begin_load(package, tmp_path / "c.mlmodelc") as second:
        assert second.state().adopted
        assert second.wait(5)
        assert second.stages()[-1] == LoadStage.READY
    assert first._stages.qsize() == delivered


def test_neural_engine_compiled_needs_an_engine_and_asks_for_it(runtime, make_package, monkeypatch) -> None:
    package = make_package()
    assert runtime.load(package, ComputeUnits.ALL).neural_engine_compiled
    assert not runtime.load(package, ComputeUnits.CPU_ONLY).neural_engine_compiled
    monkeypatch.setenv("MACB_STANDIN_ANE_CORES", "0")
    assert runtime.load(package, ComputeUnits.ALL).neural_engine_compiled is False
