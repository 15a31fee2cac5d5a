"""coreml/call.py, the call path the encoder and the vocoder share: NaN/Inf outputs are inference
failures on both entries (numpy predict, MLX predict_mlx), tensor checks are shape failures."""

from __future__ import annotations

import math

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml.call import CallErrors, CoreMLCall, all_finite
from mlx_audio_coreml.coreml.runtime import ModelDescription, PredictResult, TensorSpec
from mlx_audio_coreml.errors import (
    NonFiniteOutput,
    TensorDtypeMismatch,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)

ERRORS = CallErrors(VocoderShapeConversionFailed, VocoderCoreMLInferenceFailed)


class _Model:
    """Copies input `x` (float16 (1, 4)) to output `y`; `predict_mlx` exists only when asked for."""

    description = ModelDescription((TensorSpec("x", "float16", (1, 4)),), (TensorSpec("y", "float16", (1, 4)),))
    neural_engine_compiled = False

    def __init__(self, mlx_entry: bool) -> None:
        if mlx_entry:
            self.predict_mlx = lambda inputs: {"y": inputs["x"]}

    def predict(self, inputs, outputs=None):
        buffer = outputs["y"]
        buffer[...] = inputs["x"]
        return PredictResult({"y": buffer}, written_in_place=frozenset({"y"}))

    def close(self) -> None:
        pass


@pytest.mark.parametrize("dtype", [mx.float16, mx.float32, mx.bfloat16])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_all_finite_finds_nan_and_inf_in_every_float_dtype(dtype, bad):
    good = mx.random.normal((3, 50)).astype(dtype)
    assert all_finite(good) and all_finite(mx.transpose(good))
    assert not all_finite(mx.concatenate([good, mx.full((3, 1), bad, dtype=dtype)], axis=1))


@pytest.mark.parametrize("mlx_entry", [False, True], ids=["numpy-predict", "predict_mlx"])
def test_nan_output_is_an_inference_failure_on_both_entries(mlx_entry):
    call = CoreMLCall(_Model(mlx_entry), ERRORS)
    fine = mx.array([[1.0, 2.0, 3.0, 4.0]], dtype=mx.float16)

    assert np.array_equal(np.array(call.run({"x": fine}, expected=[1, 4], got=[1, 4])["y"]), np.array(fine))
    with pytest.raises(VocoderCoreMLInferenceFailed) as raised:
        call.run({"x": fine * math.nan}, expected=[1, 4], got=[1, 4])
    assert isinstance(raised.value.underlying, NonFiniteOutput) and raised.value.underlying.output == "y"


def test_a_tensor_check_is_a_shape_conversion_failure_with_the_callers_shapes():
    model = _Model(mlx_entry=False)
    model.predict = lambda inputs, outputs=None: (_ for _ in ()).throw(TensorDtypeMismatch("x", "float16", "int32"))
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        CoreMLCall(model, ERRORS).run({"x": mx.zeros((1, 4))}, expected=[1, 4], got=[1, 5])
    assert (raised.value.expected, raised.value.got) == ([1, 4], [1, 5])


def test_a_vocoder_package_may_name_its_inputs_in_its_metadata():
    import json

    from loading_helpers import features

    from mlx_audio_coreml.vocoders import INPUT_NAMES_METADATA_KEY, SAMPLE_RATE_METADATA_KEY, CoreMLVocoder

    renamed = {"asr": "text_features", "f0": "pitch", "energy": "power", "style": "ref_s"}
    shapes = {"asr": (1, 4, 5), "f0": (1, 10), "energy": (1, 10), "style": (1, 3)}

    class Renamed:
        description = ModelDescription(
            tuple(TensorSpec(renamed[k], "float32", s) for k, s in shapes.items()),
            (TensorSpec("audio", "float32", (1, 10)),),
            {SAMPLE_RATE_METADATA_KEY: "24000", INPUT_NAMES_METADATA_KEY: json.dumps(renamed)},
        )
        neural_engine_compiled = False
        fed: dict = {}

        def predict(self, inputs, outputs=None):
            self.fed.update(inputs)
            return PredictResult({"audio": inputs["pitch"]})

        def close(self) -> None:
            pass

    model = Renamed()
    audio = CoreMLVocoder(model).decode(features())

    assert sorted(model.fed) == sorted(renamed.values()) and np.array_equal(np.array(audio), np.full((1, 10), 100.0))
