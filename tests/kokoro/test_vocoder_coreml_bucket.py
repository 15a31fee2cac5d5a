"""A converted tiny vocoder package behind BucketedCoreMLVocoder / CoreMLVocoder through the portable runtime:
short chunks match the MLX vocoder (noise off), the trim point adds no click, shape-conversion and sample-rate errors."""

from __future__ import annotations

import numpy as np
import pytest

from kokoro_tiny import DIM_IN, SAMPLES_PER_FRAME, STYLE, convert_tiny, tiny_decoder
from mlx_audio_coreml.convert.kokoro_validate import snr_db, validation_features
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.errors import UnsupportedSampleRate, VocoderShapeConversionFailed
from mlx_audio_coreml.kokoro.vocoder_bucket import BucketedCoreMLVocoder
from mlx_audio_coreml.options import ComputeUnits
from mlx_audio_coreml.vocoders import CoreMLVocoder, MLXVocoder

BUCKET = 12


@pytest.fixture(scope="module")
def decoder():
    return tiny_decoder()


@pytest.fixture(scope="module")
def package(decoder, tmp_path_factory):
    return convert_tiny(decoder, tmp_path_factory.mktemp("voc"), "float32", (BUCKET,))[BUCKET]


@pytest.fixture()
def loaded(package):
    model = get_runtime("portable").load(package, ComputeUnits.ALL)
    yield model
    model.close()


def test_bucketed_vocoder_pads_decodes_and_trims_like_mlx(decoder, loaded):
    mlx_vocoder = MLXVocoder(decoder, seed=None)  # the package computes the source without noise
    vocoder = BucketedCoreMLVocoder(loaded, mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME)
    features = validation_features(DIM_IN, STYLE, 9)
    got, want = np.asarray(vocoder.decode(features)), np.asarray(mlx_vocoder.decode(features))
    assert got.shape == want.shape == (1, 9 * SAMPLES_PER_FRAME)
    assert snr_db(got, want) > 60.0


def test_trim_point_adds_no_discontinuity(decoder, loaded):
    """The last samples before the cut equal MLX's: the jump there is the speech's own, not the padding's."""
    mlx_vocoder = MLXVocoder(decoder, seed=None)
    vocoder = BucketedCoreMLVocoder(loaded, mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME)
    features = validation_features(DIM_IN, STYLE, 7)
    got, want = np.asarray(vocoder.decode(features))[0], np.asarray(mlx_vocoder.decode(features))[0]
    typical = float(np.median(np.abs(np.diff(want))))
    assert abs((got[-1] - got[-2]) - (want[-1] - want[-2])) < 0.01 * typical + 1e-4
    assert np.max(np.abs(got[-SAMPLES_PER_FRAME:] - want[-SAMPLES_PER_FRAME:])) < 1e-3


def test_longer_chunk_goes_to_mlx(decoder, loaded):
    mlx_vocoder = MLXVocoder(decoder, seed=None)
    vocoder = BucketedCoreMLVocoder(loaded, mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME)
    features = validation_features(DIM_IN, STYLE, BUCKET + 3)
    assert np.array_equal(np.asarray(vocoder.decode(features)), np.asarray(mlx_vocoder.decode(features)))


def test_shape_conversion_failed_names_expected_and_got(loaded):
    vocoder = CoreMLVocoder(loaded)
    features = validation_features(DIM_IN, STYLE, BUCKET - 2)  # not padded: the package's shape differs
    with pytest.raises(VocoderShapeConversionFailed) as caught:
        vocoder.decode(features)
    assert list(caught.value.expected) == [1, DIM_IN, BUCKET] and list(caught.value.got) == [1, DIM_IN, BUCKET - 2]


def test_package_refuses_another_sample_rate(loaded):
    with pytest.raises(UnsupportedSampleRate) as caught:
        CoreMLVocoder(loaded, sample_rate=16000)
    assert caught.value.sample_rate == 16000 and caught.value.supported == [24000]


def test_prewarm_on_zeros_succeeds(loaded):
    CoreMLVocoder(loaded).prewarm()  # silence, not NaN: the package floors its real-frame count at 1
