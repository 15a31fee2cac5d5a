"""Converted tiny vocoder packages (buckets 8 and 12) behind BucketedCoreMLVocoder through the portable runtime:
each chunk goes to the smallest bucket that holds it and matches the MLX vocoder (noise off), a longer one goes
to MLX, the trim point adds no click; the seed's VocoderError cases at the bucket level."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest

from kokoro_tiny import DIM_IN, SAMPLES_PER_FRAME, STYLE, convert_tiny, tiny_decoder
from mlx_audio_coreml.convert.kokoro_validate import snr_db, validation_features
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.errors import (
    NonFiniteOutput,
    UnsupportedSampleRate,
    VocoderCoreMLInferenceFailed,
    VocoderShapeConversionFailed,
)
from mlx_audio_coreml.kokoro.vocoder_bucket import BucketedCoreMLVocoder
from mlx_audio_coreml.options import ComputeUnits
from mlx_audio_coreml.vocoders import CoreMLVocoder, FallbackVocoder, MLXVocoder, VocoderFeatures

SMALL, LARGE = 8, 12


@pytest.fixture(scope="module")
def decoder():
    return tiny_decoder()


@pytest.fixture(scope="module")
def packages(decoder, tmp_path_factory):
    return convert_tiny(decoder, tmp_path_factory.mktemp("voc"), "float32", (SMALL, LARGE))


@pytest.fixture()
def loaded(packages):
    models = {frames: get_runtime("portable").load(path, ComputeUnits.ALL) for frames, path in packages.items()}
    yield models
    for model in models.values():
        model.close()


@pytest.fixture()
def mlx_vocoder(decoder):
    return MLXVocoder(decoder, seed=None)  # the packages compute the source without noise


def _both(loaded, mlx_vocoder) -> BucketedCoreMLVocoder:
    parts = [BucketedCoreMLVocoder(m, mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME) for m in loaded.values()]
    return BucketedCoreMLVocoder.combine(parts)


class _Spy:
    """An MLX vocoder that counts its calls."""

    def __init__(self, inner: MLXVocoder) -> None:
        self.inner, self.calls, self.sample_rate, self.backend = inner, 0, inner.sample_rate, "mlx"

    def decode(self, features: VocoderFeatures) -> mx.array:
        self.calls += 1
        return self.inner.decode(features)


@pytest.mark.parametrize(("chunk", "bucket"), [(5, SMALL), (SMALL, SMALL), (SMALL + 1, LARGE), (LARGE, LARGE)])
def test_each_chunk_goes_to_the_smallest_bucket_that_holds_it_and_matches_mlx(loaded, mlx_vocoder, chunk, bucket):
    vocoder = _both(loaded, mlx_vocoder)
    assert list(vocoder.buckets) == [SMALL, LARGE] and vocoder.bucket_for(chunk) == bucket
    features = validation_features(DIM_IN, STYLE, chunk, seed=chunk)
    got, want = np.asarray(vocoder.decode(features)), np.asarray(mlx_vocoder.decode(features))
    assert got.shape == want.shape == (1, chunk * SAMPLES_PER_FRAME)
    assert snr_db(got, want) > 60.0


def test_a_chunk_longer_than_the_largest_bucket_goes_to_mlx(loaded, mlx_vocoder):
    spy = _Spy(mlx_vocoder)
    vocoder = BucketedCoreMLVocoder.combine(
        [BucketedCoreMLVocoder(m, spy, samples_per_frame=SAMPLES_PER_FRAME) for m in loaded.values()]
    )
    features = validation_features(DIM_IN, STYLE, LARGE + 3)
    assert np.array_equal(np.asarray(vocoder.decode(features)), np.asarray(mlx_vocoder.decode(features)))
    vocoder.decode(validation_features(DIM_IN, STYLE, LARGE))
    assert spy.calls == 1  # only the long chunk


def test_trim_point_adds_no_discontinuity(loaded, mlx_vocoder):
    """The last samples before the cut equal MLX's: the jump there is the speech's own, not the padding's."""
    vocoder = _both(loaded, mlx_vocoder)
    features = validation_features(DIM_IN, STYLE, 7)
    got, want = np.asarray(vocoder.decode(features))[0], np.asarray(mlx_vocoder.decode(features))[0]
    typical = float(np.median(np.abs(np.diff(want))))
    assert abs((got[-1] - got[-2]) - (want[-1] - want[-2])) < 0.01 * typical + 1e-4
    assert np.max(np.abs(got[-SAMPLES_PER_FRAME:] - want[-SAMPLES_PER_FRAME:])) < 1e-3


def test_combining_two_packages_of_one_bucket_is_refused(loaded, mlx_vocoder):
    part = BucketedCoreMLVocoder(loaded[SMALL], mlx_vocoder)
    with pytest.raises(ValueError, match="8 frames"):
        BucketedCoreMLVocoder.combine([part, part])


# --- The seed's VocoderError cases ---------------------------------------------------------------


def test_shape_conversion_failed_names_expected_and_got(loaded, mlx_vocoder):
    features = validation_features(DIM_IN, STYLE, LARGE - 2)  # not padded: the package's shape differs
    with pytest.raises(VocoderShapeConversionFailed) as caught:
        CoreMLVocoder(loaded[LARGE]).decode(features)
    assert list(caught.value.expected) == [1, DIM_IN, LARGE] and list(caught.value.got) == [1, DIM_IN, LARGE - 2]
    wide = VocoderFeatures(mx.zeros((1, DIM_IN + 1, 5)), mx.zeros((1, 10)), mx.zeros((1, 10)), mx.zeros((1, STYLE)))
    with pytest.raises(VocoderShapeConversionFailed) as caught:  # padded to bucket 8, channels still wrong
        _both(loaded, mlx_vocoder).decode(wide)
    assert list(caught.value.expected) == [1, DIM_IN, SMALL] and list(caught.value.got) == [1, DIM_IN + 1, SMALL]


def test_unsupported_sample_rate_at_the_bucket(loaded, mlx_vocoder):
    with pytest.raises(UnsupportedSampleRate) as caught:
        BucketedCoreMLVocoder(loaded[SMALL], mlx_vocoder, sample_rate=16000)
    assert caught.value.sample_rate == 16000 and caught.value.supported == [24000]


class _NaNModel:
    """A loaded package whose predictions come back NaN (as a broken compile or float16 overflow gives)."""

    def __init__(self, inner) -> None:
        self.inner, self.description, self.neural_engine_compiled = inner, inner.description, False

    def predict(self, inputs, outputs=None, *, state=None):
        result = self.inner.predict(inputs)
        return type(result)({k: np.full_like(np.asarray(v), np.nan) for k, v in result.outputs.items()})

    def close(self) -> None:
        self.inner.close()


def test_nan_from_one_bucket_is_an_inference_failure_and_the_switch_answers_with_mlx(loaded, mlx_vocoder):
    good = BucketedCoreMLVocoder(loaded[SMALL], mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME)
    bad = BucketedCoreMLVocoder(_NaNModel(loaded[LARGE]), mlx_vocoder, samples_per_frame=SAMPLES_PER_FRAME)
    vocoder = BucketedCoreMLVocoder.combine([good, bad])
    features = validation_features(DIM_IN, STYLE, LARGE - 1)
    with pytest.raises(VocoderCoreMLInferenceFailed) as caught:
        vocoder.decode(features)
    assert isinstance(caught.value.underlying, NonFiniteOutput)  # the underlying error, kept
    failures: list[BaseException] = []
    switch = FallbackVocoder(mlx_vocoder, on_coreml_failure=failures.append)
    switch.use_coreml(vocoder)
    assert np.array_equal(np.asarray(switch.decode(features)), np.asarray(mlx_vocoder.decode(features)))
    assert switch.backend == "mlx" and len(failures) == 1 and isinstance(failures[0], VocoderCoreMLInferenceFailed)


def test_default_buckets_pad_a_chunk_by_at_most_28_percent_from_32_to_512_frames():
    """A padded frame costs the portable runtime ~30% of a real one, so the ladder is ~1.25x steps (the
    converter's and the CLI's default; bench/results/vocoder_portable_vs_mlx.md)."""
    import argparse

    from mlx_audio_coreml.cli import convert_kokoro as cli
    from mlx_audio_coreml.kokoro.vocoder_bucket import DEFAULT_BUCKETS

    assert DEFAULT_BUCKETS[0] == 32 and DEFAULT_BUCKETS[-1] == 512
    assert all(1.0 < b / a <= 1.28 for a, b in zip(DEFAULT_BUCKETS, DEFAULT_BUCKETS[1:]))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    assert parser.parse_args(["kokoro", "--model", "x", "--out", "o"]).buckets == DEFAULT_BUCKETS
