"""Route coremltools' own op tests to the portable runtime.

coremltools' MIL op tests build a program, convert it to an ML Program and compare
`MLModel.predict` with a numpy reference, but only on macOS. Here, for the tests in this folder:
- the test matrix is limited to ML Programs (PYMIL_TEST_TARGETS=mlprogram; fp32 too with
  PORTABLE_CONFORMANCE_FP32=1), set before coremltools' test modules are imported;
- `coremltools.converters.mil.testing_utils` is told it runs on macOS 15, so the prediction and
  comparison steps run instead of being skipped;
- `MLModel.predict` loads the model's saved package with PortableRuntime and predicts with it,
  converting inputs to the declared dtypes as Core ML's MLMultiArray conversion does;
- `MLModel.make_state` returns the portable model's own state (PortableState), which coremltools'
  helpers pass back to predict, as they do with Core ML's MLState.
A failed prediction is raised as coremltools raises Core ML's: RuntimeError("Unable to compute the
prediction using ML Program ..."). A package using an op the portable runtime lacks is skipped
with a reason starting "portable-unsupported:", which bench/portable_conformance.py counts as
unsupported.
With PORTABLE_CONFORMANCE_REPORT=path, one JSON line per test outcome is appended to that file.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest

os.environ.setdefault("PYMIL_TEST_TARGETS", "mlprogram")
if os.environ.get("PORTABLE_CONFORMANCE_FP32") == "1":
    os.environ["INCLUDE_MIL_FP32_UNIT_TESTS"] = "1"

import numpy as np  # noqa: E402

import mlx_audio_coreml  # noqa: E402,F401  (loads the fast BLAS before MLX)
from mlx_audio_coreml.errors import PredictionFailed, UnsupportedOp  # noqa: E402

UNSUPPORTED_PREFIX = "portable-unsupported:"
_MODELS: dict[str, object] = {}  # package path -> loaded PortableModel, for repeated predicts


def _portable_model(mlmodel):
    """The PortableModel for this MLModel's saved package, loaded once per package."""
    from mlx_audio_coreml.coreml.portable import PortableRuntime

    if not mlmodel.is_package or mlmodel.package_path is None:
        pytest.skip("not an ML Program package (neural network backend)")
    path = str(mlmodel.package_path)
    if path not in _MODELS:
        try:
            _MODELS.clear()  # one model at a time: these packages are throwaway
            _MODELS[path] = PortableRuntime().load(Path(path))
        except UnsupportedOp as exc:
            pytest.skip(f"{UNSUPPORTED_PREFIX} {exc.op} ({exc.opset})")
    return _MODELS[path]


def _portable_predict(self, data, state=None):
    model = _portable_model(self)
    inputs = {}
    for spec in model.description.inputs:
        if spec.name in data:
            value = np.asarray(data[spec.name])
            if value.shape == () or (value.shape == (1,) and spec.shape == ()):
                value = value.reshape(spec.shape)
            inputs[spec.name] = np.ascontiguousarray(value.astype(spec.dtype))
    for name in data:
        if name not in inputs:
            inputs[name] = np.asarray(data[name])  # unknown names reach the runtime's own check
    try:
        return dict(model.predict(inputs, state=state).outputs)
    except PredictionFailed as exc:  # what coremltools raises when Core ML's prediction fails
        raise RuntimeError(f"Unable to compute the prediction using ML Program ({exc})") from exc


def _portable_make_state(self):
    """Core ML's MLModel.make_state(): a fresh state of the portable model, passed back to predict."""
    return _portable_model(self).make_state()


@pytest.fixture(autouse=True)
def portable_coremltools_backend(monkeypatch):
    """Make coremltools' test helpers predict through the portable runtime, for this test only."""
    import coremltools as ct
    import coremltools.models.utils as ct_utils
    from coremltools.converters.mil import testing_utils

    fake_utils = types.SimpleNamespace(
        **{name: getattr(ct_utils, name) for name in dir(ct_utils) if not name.startswith("__")}
    )
    fake_utils._macos_version = lambda: (15, 0)
    fake_utils._is_macos = lambda: True
    monkeypatch.setattr(testing_utils, "coremltoolsutils", fake_utils)
    monkeypatch.setattr(testing_utils, "_IS_MACOS", True)
    monkeypatch.setattr(ct.models.MLModel, "predict", _portable_predict)
    monkeypatch.setattr(ct.models.MLModel, "make_state", _portable_make_state)
    yield
    _MODELS.clear()


def pytest_runtest_logreport(report):
    path = os.environ.get("PORTABLE_CONFORMANCE_REPORT")
    if not path or (report.when != "call" and not (report.skipped or report.failed)):
        return
    reason = ""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
    elif report.failed:
        reason = str(report.longreprtext).strip().splitlines()[-1][:300] if report.longreprtext else ""
    record = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "reason": reason,
        "xfail": hasattr(report, "wasxfail"),
    }
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
