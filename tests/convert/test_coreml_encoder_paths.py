"""CoreMLAudioEncoder over the portable runtime stays in MLX (predict_mlx, never numpy predict),
and gives exactly what the numpy path gives, for every published layout and precision."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.runtime import ComputeUnits
from mlx_audio_coreml.encoders import CoreMLAudioEncoder
from mlx_audio_coreml.errors import (
    CoreMLInferenceFailed,
    PredictionFailed,
    ShapeConversionFailed,
    TensorShapeMismatch,
)
from mlx_audio_coreml.whisper.encoder_layouts import detect_layout


def _encoder(model) -> CoreMLAudioEncoder:
    return CoreMLAudioEncoder(model, layout=detect_layout(model.description))


class _NumpyOnly:
    """The loaded model seen through the plain LoadedModel interface (as apple/coremltools offer it)."""

    def __init__(self, model) -> None:
        self.model = model
        self.description = model.description
        self.neural_engine_compiled = False

    def predict(self, inputs, outputs=None):
        return self.model.predict(inputs, outputs)

    def close(self) -> None:
        self.model.close()


class _Spy(_NumpyOnly):
    """The model with both entry points, counting which one the encoder calls and what it feeds."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.numpy_calls = 0
        self.fed: list[object] = []

    def predict(self, inputs, outputs=None):
        self.numpy_calls += 1
        return super().predict(inputs, outputs)

    def predict_mlx(self, inputs):
        self.fed.extend(inputs.values())
        return self.model.predict_mlx(inputs)


@pytest.mark.parametrize("precision", ["float32", "float16"])
@pytest.mark.parametrize("layout", ["default", "whispercpp", "whisperkit"])
def test_portable_models_run_in_mlx_and_match_the_numpy_path(tiny_package, layout, precision):
    model = PortableRuntime().load(tiny_package(layout, precision).package, ComputeUnits.CPU_ONLY)
    spy = _Spy(model)
    through_mlx, through_numpy = _encoder(spy), _encoder(_NumpyOnly(model))
    mel = mx.random.normal((2, 80, 3000), key=mx.random.key(3))  # batch 2: item by item

    got = through_mlx.encode(mel)
    want = through_numpy.encode(mel)

    assert spy.numpy_calls == 0 and len(spy.fed) == 2
    assert all(isinstance(fed, mx.array) for fed in spy.fed)
    assert got.shape == want.shape == (2, 1500, 64) and got.dtype == want.dtype
    np.testing.assert_array_equal(np.array(got.astype(mx.float32)), np.array(want.astype(mx.float32)))


def test_errors_on_the_mlx_path_are_typed(tiny_package):
    spy = _Spy(PortableRuntime().load(tiny_package("default", "float32").package, ComputeUnits.CPU_ONLY))
    encoder = _encoder(spy)
    refusal = TensorShapeMismatch("mel", [1, 80, 3000], [1, 80, 2999])
    spy.predict_mlx = lambda inputs: (_ for _ in ()).throw(refusal)
    with pytest.raises(ShapeConversionFailed) as refused:
        encoder.encode(mx.zeros((1, 80, 3000)))
    assert (refused.value.expected, refused.value.got) == ([1, 80, 3000], [1, 80, 2999])
    failure = PredictionFailed("device lost")
    spy.predict_mlx = lambda inputs: (_ for _ in ()).throw(failure)
    with pytest.raises(CoreMLInferenceFailed) as raised:
        encoder.encode(mx.zeros((1, 80, 3000)))
    assert raised.value.underlying is failure and spy.numpy_calls == 0
