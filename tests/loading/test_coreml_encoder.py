"""CoreMLAudioEncoder over real converted packages run by the portable runtime: every published
layout gives (B, n_ctx, D) like MLX, shapes are checked as the seed says, failures are typed."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.encoders import CoreMLAudioEncoder, FallbackEncoder, MLXAudioEncoder
from mlx_audio_coreml.errors import CoreMLInferenceFailed, ModelNotLoaded, PredictionFailed, ShapeConversionFailed
from mlx_audio_coreml.whisper.encoder_layouts import detect_layout


@pytest.fixture(scope="module")
def tiny_bundle(tiny_model_dir):
    from mlx_audio_coreml.whisper.loading import load_whisper

    return load_whisper(tiny_model_dir, dtype=mx.float32)


@pytest.fixture(scope="module")
def packages(tiny_bundle, tmp_path_factory):
    """The tiny encoder converted in each layout (float16, as published)."""
    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder

    source = SourceInfo("tiny-random", "local", tiny_bundle.weights_sha256, "mlx")
    out = tmp_path_factory.mktemp("layouts")
    return {
        layout: convert_encoder(
            tiny_bundle.model.encoder, 4, source, out / layout, ConvertOptions(layout=layout, validate=False)
        ).package
        for layout in ("default", "whispercpp", "whisperkit")
    }


def _encoder(model, **options) -> CoreMLAudioEncoder:
    return CoreMLAudioEncoder(model, layout=detect_layout(model.description), **options)


class _Recording:
    """Wraps a loaded model to see what crosses into predict."""

    def __init__(self, model) -> None:
        self.model = model
        self.description = model.description
        self.neural_engine_compiled = False
        self.fed: list[np.ndarray] = []

    def predict(self, inputs, outputs=None):
        self.fed.extend(inputs.values())
        return self.model.predict(inputs, outputs)

    def close(self) -> None:
        self.model.close()


@pytest.mark.parametrize("layout", ["default", "whispercpp", "whisperkit"])
def test_every_layout_returns_states_like_the_mlx_encoder(packages, tiny_bundle, layout):
    encoder = _encoder(PortableRuntime().load(packages[layout]), output_dtype=mx.float32)
    mel = mx.random.normal((1, 80, 3000))

    got = encoder.encode(mel)

    assert encoder.layout.name == layout and encoder.expected_input_shape == [1, 80, 3000]
    assert got.shape == (1, 1500, 64) and got.dtype == mx.float32
    want = MLXAudioEncoder(tiny_bundle.model.encoder, 80).encode(mel)
    assert float(mx.abs(got - want).max() / mx.abs(want).max()) < 2e-2  # float16 package vs float32 MLX


@pytest.fixture(scope="module")
def default_encoder(packages):
    return _encoder(PortableRuntime().load(packages["default"]))


@pytest.mark.parametrize("shape", [(1, 80, 5000), (1, 80, 2999), (1, 128, 3000), (80,), (1, 1, 80, 3000)])
def test_wrong_shapes_raise_shape_conversion_failed_with_expected_and_got(default_encoder, shape):
    with pytest.raises(ShapeConversionFailed) as raised:
        default_encoder.encode(mx.zeros(shape))
    assert raised.value.expected == [1, 80, 3000] and raised.value.got == list(shape)


def test_an_unconvertible_dtype_is_a_shape_conversion_failure(default_encoder):
    with pytest.raises(ShapeConversionFailed) as raised:
        default_encoder.encode(mx.zeros((1, 80, 3000), dtype=mx.int32))
    assert "dtype" in str(raised.value)


def test_unbatched_and_batched_mels_are_accepted(default_encoder):
    single = mx.random.normal((80, 3000))
    alone = default_encoder.encode(single)  # (n_mels, frames): a batch of one
    states = default_encoder.encode(mx.stack([single, single * 0.5]))  # the package takes batch 1: one by one
    assert alone.shape == (1, 1500, 64) and states.shape == (2, 1500, 64)
    assert mx.allclose(states[0], alone[0]).item()


def test_a_mel_in_the_packages_dtype_crosses_without_a_copy(packages):
    recording = _Recording(PortableRuntime().load(packages["default"]))
    encoder = _encoder(recording)
    mel = mx.random.normal((1, 80, 3000)).astype(mx.float16)  # the package's input dtype
    mx.eval(mel)

    encoder.encode(mel)

    assert np.shares_memory(recording.fed[0], np.asarray(mel))


def test_runtime_failure_is_coreml_inference_failed_with_the_underlying_error(packages):
    recording = _Recording(PortableRuntime().load(packages["default"]))
    failure = PredictionFailed("ANE went away")
    recording.predict = lambda inputs, outputs=None: (_ for _ in ()).throw(failure)
    encoder = _encoder(recording)

    with pytest.raises(CoreMLInferenceFailed) as raised:
        encoder.encode(mx.zeros((1, 80, 3000)))
    assert raised.value.underlying is failure


def test_closed_encoder_raises_model_not_loaded(packages):
    encoder = _encoder(PortableRuntime().load(packages["default"]))
    encoder.close()
    with pytest.raises(ModelNotLoaded):
        encoder.encode(mx.zeros((1, 80, 3000)))


def test_fit_problem_names_the_mismatch(default_encoder):
    assert default_encoder.fit_problem(80, 1500, 64) == ""
    assert "(80, 3000, 1500, 64)" in default_encoder.fit_problem(128, 1500, 1280)


def test_fallback_encoder_moves_to_mlx_for_good_when_coreml_fails(packages, tiny_bundle):
    recording = _Recording(PortableRuntime().load(packages["default"]))
    recording.predict = lambda inputs, outputs=None: (_ for _ in ()).throw(PredictionFailed("gone"))
    failures = []
    switch = FallbackEncoder(MLXAudioEncoder(tiny_bundle.model.encoder, 80), failures.append)
    switch.use_coreml(_encoder(recording))
    assert switch.backend == "coreML"

    states = switch.encode(mx.zeros((1, 80, 3000)))

    assert states.shape == (1, 1500, 64) and switch.backend == "mlx"
    assert len(failures) == 1 and isinstance(failures[0], CoreMLInferenceFailed)
    switch.encode(mx.zeros((1, 80, 3000)))
    assert len(failures) == 1  # stays on MLX; the broken model is not tried again
