"""Real Kokoro-82M decoder inputs for the vocoder benchmarks: a sentence's VocoderFeatures and the MLX model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SENTENCE = "ðə kwˈɪk bɹˈaʊn fˈɑːks ʤˈʌmps ˈOvəɹ ðə lˈAzi dˈɔɡ."  # "The quick brown fox ..." in Kokoro phonemes


def model_dir() -> Path:
    from mlx_audio_coreml import config

    return config.models_dir() / "kokoro"


def real_features(phonemes: str = SENTENCE, voice: str = "jf_alpha") -> tuple[Any, Any]:
    """(KokoroModel, VocoderFeatures) for `phonemes` on the installed real weights."""
    import mlx.core as mx

    from mlx_audio_coreml.kokoro.config import KokoroConfig
    from mlx_audio_coreml.kokoro.model.kokoro_model import KokoroModel
    from mlx_audio_coreml.kokoro.weights.folder import load_kokoro_folder

    weights = load_kokoro_folder(model_dir())
    model = KokoroModel(KokoroConfig.from_dict(weights.config))
    model.load_state(weights.state)
    ids = [0] + [weights.vocab[p] for p in phonemes if p in weights.vocab] + [0]
    pack = np.load(model_dir() / "voices" / f"{voice}.npy")
    features, _ = model.features(mx.array([ids], mx.int32), mx.array(pack[len(ids) - 3]), 1.0)
    return model, features
