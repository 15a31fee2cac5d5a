"""The seed's AudioVocoder pair (over a tiny real ML Program run by the portable runtime) and the
coremltools runtime (its description parsing runs here; predictions need macOS)."""

from __future__ import annotations

import platform

import mlx_audio_coreml  # noqa: F401  (BLAS first)
import mlx.core as mx
import numpy as np
import pytest

from mlx_audio_coreml.coreml import registry
from mlx_audio_coreml.coreml.coremltools_runtime import CoremltoolsRuntime, describe_spec
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.errors import (
    PredictionFailed,
    UnsupportedSampleRate,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)
from mlx_audio_coreml.vocoders import SAMPLE_RATE_METADATA_KEY, AudioVocoder, CoreMLVocoder, MLXVocoder


@pytest.fixture(scope="module")
def vocoder_package(tmp_path_factory):
    """A stand-in vocoder as a real ML Program: features (1, 8, 10) -> samples (1, 80) = 2 * features."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 10))], opset_version=ct.target.macOS13)
    def program(features):
        return mb.reshape(x=mb.mul(x=features, y=2.0), shape=[1, 80], name="audio")

    model = ct.convert(
        program, convert_to="mlprogram", skip_model_load=True,
        minimum_deployment_target=ct.target.macOS13, compute_precision=ct.precision.FLOAT32,
    )  # fmt: skip
    model.user_defined_metadata[SAMPLE_RATE_METADATA_KEY] = "24000"
    path = tmp_path_factory.mktemp("vocoder") / "AudioVocoder.mlpackage"
    model.save(str(path))
    return path


def test_coreml_vocoder_decodes_through_the_package(vocoder_package):
    vocoder = CoreMLVocoder(PortableRuntime().load(vocoder_package))
    features = mx.arange(80, dtype=mx.float32).reshape(1, 8, 10)

    samples = vocoder.decode(features)

    assert isinstance(vocoder, AudioVocoder) and vocoder.backend == "coreML" and vocoder.sample_rate == 24000
    assert samples.shape == (1, 80)
    assert np.array_equal(np.array(samples), 2 * np.arange(80, dtype=np.float32)[None])


def test_coreml_vocoder_rejects_other_shapes(vocoder_package):
    vocoder = CoreMLVocoder(PortableRuntime().load(vocoder_package))
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        vocoder.decode(mx.zeros((1, 8, 12)))
    assert raised.value.expected == [1, 8, 10] and raised.value.got == [1, 8, 12]


def test_coreml_vocoder_refuses_a_sample_rate_the_package_does_not_produce(vocoder_package):
    with pytest.raises(UnsupportedSampleRate) as raised:
        CoreMLVocoder(PortableRuntime().load(vocoder_package), sample_rate=16000)
    assert raised.value.sample_rate == 16000 and raised.value.supported == [24000]


def test_coreml_vocoder_runtime_failure_is_typed(vocoder_package):
    model = PortableRuntime().load(vocoder_package)
    failure = PredictionFailed("gone")

    def broken(inputs, outputs=None):
        raise failure

    model.predict = broken
    with pytest.raises(VocoderCoreMLInferenceFailed) as raised:
        CoreMLVocoder(model).decode(mx.zeros((1, 8, 10)))
    assert raised.value.underlying is failure


def test_mlx_vocoder_wraps_a_module_and_checks_its_rate():
    vocoder = MLXVocoder(lambda features: features.reshape(1, -1) * 2, sample_rate=24000, supported_sample_rates=(24000,))
    assert isinstance(vocoder, AudioVocoder) and vocoder.backend == "mlx"
    assert vocoder.decode(mx.ones((1, 8, 10))).shape == (1, 80)
    with pytest.raises(UnsupportedSampleRate):
        MLXVocoder(lambda f: f, sample_rate=22050, supported_sample_rates=(24000,))


def test_coremltools_description_matches_the_portable_runtimes(vocoder_package, tiny_companion_dir):
    import coremltools as ct

    for package in (vocoder_package, tiny_companion_dir / "AudioEncoder.mlpackage"):
        ours = describe_spec(ct.utils.load_spec(str(package)))
        portable = PortableRuntime().load(package).description
        assert ours.inputs == portable.inputs and ours.outputs == portable.outputs
        ours_keys = {k: v for k, v in portable.metadata.items() if k.startswith("mlx_audio_coreml")}
        assert dict(ours.metadata).items() >= ours_keys.items()


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the Linux answer")
def test_coremltools_runtime_says_why_it_cannot_run_here():
    found = registry.availability("coremltools")
    assert not found.available and "only on macOS" in found.reason
    assert CoremltoolsRuntime.claims_neural_engine


@pytest.mark.mac
@pytest.mark.skipif(platform.system() != "Darwin", reason="coremltools predicts only on macOS")
def test_coremltools_runtime_runs_the_encoder_package_on_a_mac(tiny_companion_dir):  # pragma: no cover - macOS
    from mlx_audio_coreml.coreml_encoder import CoreMLAudioEncoder

    package = tiny_companion_dir / "AudioEncoder.mlpackage"
    encoder = CoreMLAudioEncoder(CoremltoolsRuntime().load(package), output_dtype=mx.float32)
    reference = CoreMLAudioEncoder(PortableRuntime().load(package), output_dtype=mx.float32)
    mel = mx.random.normal((1, 80, 3000))
    assert float(mx.abs(encoder.encode(mel) - reference.encode(mel)).max()) < 5e-2
