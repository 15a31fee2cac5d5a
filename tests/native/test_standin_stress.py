"""Many predictions through the shim built against the CoreML stand-in: resident memory stays flat
over 10,000 of them, and 8 threads predicting at once neither crash nor mix up results.

The stand-in executes no model and proves nothing about Core ML: a leak or race found here is in
the shim (descriptors, wrapping, copies, handles, cffi buffers), not in Core ML.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from mlx_audio_coreml.coreml.apple import AppleRuntime

pytestmark = pytest.mark.standin

SHAPE = (1, 16, 256)  # 16 KiB of float32 per tensor: a leaked copy per predict would add ~160 MiB
GROWTH_BOUND_MIB = 8.0


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.fixture()
def model(standin_path, make_package, tmp_path):
    padded = [SHAPE[1] * 264, 264, 1]  # float16 output with padded rows: the shim copies and converts
    package = make_package(
        inputs=[{"name": "x", "dtype": "float32", "shape": list(SHAPE)}],
        outputs=[
            {"name": "y", "dtype": "float32", "shape": list(SHAPE), "from": "x", "scale": 2.0, "bias": 1.0},
            {"name": "h", "dtype": "float16", "shape": list(SHAPE), "from": "x", "scale": -1.0, "strides": padded},
        ],
        call_log=None,
    )
    runtime = AppleRuntime(library_path=standin_path, cache_dir=tmp_path / "compiled")
    loaded = runtime.load(package)
    yield loaded
    loaded.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm")
def test_ten_thousand_predicts_do_not_grow_resident_memory(model) -> None:
    x = np.linspace(-1, 1, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    y = np.empty(SHAPE, np.float32)
    h = np.empty(SHAPE, np.float32)
    for _ in range(500):  # warm up allocators and caches
        model.predict({"x": x}, {"y": y, "h": h})
    before = resident_mib()
    for _ in range(10_000):
        result = model.predict({"x": x}, {"y": y, "h": h})
    growth = resident_mib() - before
    assert growth < GROWTH_BOUND_MIB, f"resident memory grew {growth:.1f} MiB over 10,000 predicts"
    assert result.written_in_place == {"y"} and model.info().predictions == 10_500
    np.testing.assert_allclose(y, 2 * x + 1)
    np.testing.assert_allclose(h, -x, atol=1e-3)


def test_eight_threads_predict_at_once(model) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def work(seed: int) -> None:
        try:
            start.wait()
            rng = np.random.default_rng(seed)
            for _ in range(150):
                x = rng.standard_normal(SHAPE, dtype=np.float32)
                result = model.predict({"x": x})
                np.testing.assert_allclose(result.outputs["y"], 2 * x + 1, rtol=1e-6)
        except BaseException as exc:  # noqa: BLE001  (reported below, with the thread's seed)
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[0]
    assert model.info().predictions == 8 * 150
