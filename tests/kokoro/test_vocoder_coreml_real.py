"""Kokoro-82M's real decoder converted (one bucket) and run through the portable runtime against the MLX decoder.

Real weights, a real sentence's features (jf_alpha), bucket 256 text frames (the sentence has 146: the
padding path), source noise off on both sides. Measured on this 2-core machine (load ~15-20):
float32 SNR 57.2 dB (53.5 dB before the STFT's branch-cut rule, stft.BRANCH_CUT), log-mel distance
0.003 dB, the last 600 samples before the trim point within 1.4e-11 of MLX's and the step into the
last sample within 2.0e-11 of MLX's (a typical step is 2.5e-3: no click). Each package run takes
~10 minutes here (686 s wall, 267 s CPU): slow.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from audio_distance import log_mel_distance

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.convert.kokoro import KokoroConvertOptions, convert_decoder
from mlx_audio_coreml.convert.kokoro_validate import padded_inputs, snr_db
from mlx_audio_coreml.coreml.registry import get_runtime
from mlx_audio_coreml.kokoro.config import KokoroConfig
from mlx_audio_coreml.kokoro.model.kokoro_model import KokoroModel
from mlx_audio_coreml.kokoro.weights.folder import load_kokoro_folder
from mlx_audio_coreml.options import ComputeUnits

pytestmark = pytest.mark.slow
PHONEMES = "ðə kwˈɪk bɹˈaʊn fˈɑːks ʤˈʌmps ˈOvəɹ ðə lˈAzi dˈɔɡ."
BUCKET = 256


@pytest.fixture(scope="module")
def model_and_features(kokoro_dir):
    weights = load_kokoro_folder(kokoro_dir)
    model = KokoroModel(KokoroConfig.from_dict(weights.config))
    model.load_state(weights.state)
    ids = [0] + [weights.vocab[p] for p in PHONEMES if p in weights.vocab] + [0]
    pack = np.load(kokoro_dir / "voices" / "jf_alpha.npy")
    features, _ = model.features(mx.array([ids], mx.int32), mx.array(pack[len(ids) - 3]), 1.0)
    return model, features


def _package_audio(model, features, tmp_path, precision: str) -> tuple[np.ndarray, np.ndarray]:
    options = KokoroConvertOptions(precision=precision, buckets=(BUCKET,), validate=False)
    path = convert_decoder(model.decoder, "kokoro", tmp_path, options).packages[BUCKET]
    want = np.asarray(model.decoder(features, key=None))[0]
    loaded = get_runtime("portable").load(path, ComputeUnits.ALL)
    try:
        got = np.asarray(loaded.predict(padded_inputs(features, BUCKET)).outputs["audio"])[0, : want.shape[0]]
    finally:
        loaded.close()
    return got, want


def test_float32_package_matches_mlx_above_40_db_without_a_click(model_and_features, tmp_path):
    model, features = model_and_features
    assert features.frames < BUCKET
    got, want = _package_audio(model, features, tmp_path, "float32")
    assert snr_db(got, want) >= 40.0
    assert log_mel_distance(got, want) < 0.1
    assert np.max(np.abs(got[-600:] - want[-600:])) < 1e-4  # the samples at the trim point are MLX's
