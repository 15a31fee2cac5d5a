"""The seed's AudioVocoder pair (over a tiny real ML Program run by the portable runtime) and the
coremltools runtime (its description parsing runs here; predictions need macOS)."""

from __future__ import annotations

import platform

import mlx.core as mx
import numpy as np
import pytest
from loading_helpers import features

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml import registry
from mlx_audio_coreml.coreml.coremltools_runtime import CoremltoolsRuntime, describe_spec
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.errors import (
    PredictionFailed,
    UnsupportedSampleRate,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)
from mlx_audio_coreml.vocoders import AudioVocoder, CoreMLVocoder, MLXVocoder, VocoderFeatures


def test_coreml_vocoder_decodes_through_the_package(vocoder_package):
    vocoder = CoreMLVocoder(PortableRuntime().load(vocoder_package))

    samples = vocoder.decode(features())

    assert isinstance(vocoder, AudioVocoder) and vocoder.backend == "coreML" and vocoder.sample_rate == 24000
    expected = np.concatenate([2 * np.arange(20), np.full(10, 100.0), -np.ones(10), [1.0, 2.0, 3.0]])[None]
    assert np.array_equal(np.array(samples), expected.astype(np.float32))


def test_coreml_vocoder_rejects_other_shapes(vocoder_package):
    vocoder = CoreMLVocoder(PortableRuntime().load(vocoder_package))
    with pytest.raises(VocoderShapeConversionFailed) as raised:
        vocoder.decode(features(frames=6))
    assert raised.value.expected == [1, 4, 5] and raised.value.got == [1, 4, 6]


def test_coreml_vocoder_refuses_a_sample_rate_the_package_does_not_produce(vocoder_package):
    with pytest.raises(UnsupportedSampleRate) as raised:
        CoreMLVocoder(PortableRuntime().load(vocoder_package), sample_rate=16000)
    assert raised.value.sample_rate == 16000 and raised.value.supported == [24000]


def test_coreml_vocoder_runtime_failure_is_typed(vocoder_package):
    model = PortableRuntime().load(vocoder_package)
    failure = PredictionFailed("gone")

    def broken(inputs, outputs=None):
        raise failure

    model.predict = model.predict_mlx = broken  # the portable runtime's entry is predict_mlx
    with pytest.raises(VocoderCoreMLInferenceFailed) as raised:
        CoreMLVocoder(model).decode(features())
    assert raised.value.underlying is failure


class _Doubler:
    """A stand-in MLX vocoder module: 2 * asr, flattened, plus noise from the key it is given."""

    sample_rate = 24000

    def __call__(self, features: VocoderFeatures, key: mx.array | None = None) -> mx.array:
        return features.asr.reshape(1, -1) * 2 + mx.random.uniform(shape=(1, 1), key=key)


def test_mlx_vocoder_wraps_a_module_and_checks_its_rate():
    vocoder = MLXVocoder(_Doubler())
    assert isinstance(vocoder, AudioVocoder) and vocoder.backend == "mlx" and vocoder.sample_rate == 24000
    assert vocoder.decode(features()).shape == (1, 20)
    assert np.array_equal(np.array(vocoder.decode(features())), np.array(vocoder.decode(features())))
    with pytest.raises(UnsupportedSampleRate) as raised:
        MLXVocoder(_Doubler(), sample_rate=22050)
    assert raised.value.supported == [24000]


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
    from mlx_audio_coreml.encoders import CoreMLAudioEncoder
    from mlx_audio_coreml.whisper.encoder_layouts import detect_layout

    package = tiny_companion_dir / "AudioEncoder.mlpackage"
    layout = detect_layout(PortableRuntime().load(package).description)
    encoder = CoreMLAudioEncoder(CoremltoolsRuntime().load(package), layout=layout, output_dtype=mx.float32)
    reference = CoreMLAudioEncoder(PortableRuntime().load(package), layout=layout, output_dtype=mx.float32)
    mel = mx.random.normal((1, 80, 3000))
    assert float(mx.abs(encoder.encode(mel) - reference.encode(mel)).max()) < 5e-2


def test_companion_packages_lists_every_bucket_of_the_manifest_in_numeric_order(tmp_path):
    import json

    from mlx_audio_coreml.loading.packages import companion_packages
    from mlx_audio_coreml.options import Component

    for name in ("AudioVocoder-64.mlpackage", "AudioVocoder-128.mlpackage"):
        (tmp_path / name).mkdir()
    listed = {
        "128": "AudioVocoder-128.mlpackage",
        "64": "AudioVocoder-64.mlpackage",
        "512": "AudioVocoder-512.mlpackage",
    }
    alone = tmp_path / "AudioVocoder-64.mlpackage"
    assert companion_packages(alone, Component.VOCODER) == [alone]  # no manifest: the package itself
    (tmp_path / "manifest.json").write_text(json.dumps({"components": {"vocoder": {"packages": listed}}}))
    expected = [tmp_path / "AudioVocoder-64.mlpackage", tmp_path / "AudioVocoder-128.mlpackage"]  # 512 is absent
    assert companion_packages(alone, Component.VOCODER) == expected
    assert companion_packages(tmp_path, Component.VOCODER) == expected
    assert companion_packages(alone, Component.ENCODER) == [alone]
