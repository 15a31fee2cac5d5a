"""Helpers for the portable runtime's tests: build tiny ML Programs with coremltools' MIL builder,
save them as .mlpackage, load them with PortableRuntime."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
from mlx_audio_coreml.coreml.portable import PortableModel, PortableRuntime

ct = pytest.importorskip("coremltools")
logging.getLogger("coremltools").setLevel(logging.ERROR)

from coremltools.converters.mil import Builder as mb  # noqa: E402

_counter = [0]


def save_program(
    tmp_path: Path,
    build: Callable[..., object],
    input_shapes: Sequence[tuple[int, ...]],
    *,
    precision: str = "fp32",
    opset=None,
    input_dtypes: Sequence[object] | None = None,
) -> Path:
    """Convert `build` (a function of MIL input vars) to an ML Program package on disk."""
    opset = opset or ct.target.iOS17
    dtypes = input_dtypes or [None] * len(input_shapes)
    specs = [
        mb.TensorSpec(shape=shape, dtype=dtype) if dtype is not None else mb.TensorSpec(shape=shape)
        for shape, dtype in zip(input_shapes, dtypes)
    ]
    program = mb.program(input_specs=specs, opset_version=opset)(build)
    model = ct.convert(
        program,
        convert_to="mlprogram",
        minimum_deployment_target=opset,
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
    )
    _counter[0] += 1
    path = tmp_path / f"model_{_counter[0]}.mlpackage"
    model.save(str(path))
    return path


def load(path: Path, **kwargs) -> PortableModel:
    return PortableRuntime(**kwargs).load(path)


def run_program(
    tmp_path: Path, build, inputs: Sequence[np.ndarray], *, precision: str = "fp32", opset=None, input_dtypes=None
) -> list[np.ndarray]:
    """Build, save, load and predict; the outputs in the program's order."""
    path = save_program(
        tmp_path, build, [x.shape for x in inputs], precision=precision, opset=opset, input_dtypes=input_dtypes
    )
    model = load(path)
    feeds = {spec.name: np.asarray(x).astype(spec.dtype) for spec, x in zip(model.description.inputs, inputs)}
    result = model.predict(feeds)
    return [result.outputs[spec.name] for spec in model.description.outputs]


def assert_close(got: np.ndarray, want: np.ndarray, precision: str = "fp32") -> None:
    tol = dict(rtol=1e-5, atol=1e-5) if precision == "fp32" else dict(rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), **tol)
