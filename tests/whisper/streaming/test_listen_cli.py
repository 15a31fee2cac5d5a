"""`mlx-audio-coreml listen -`: raw 16 kHz PCM on stdin in, confirmed text out, a line per utterance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from speech_data import JFK, JFK_TEXT, real_model_dir
from speech_data import text_similarity as similarity

pytestmark = [pytest.mark.realweights, pytest.mark.slow]  # a process with its own model load


def test_listen_prints_the_confirmed_text_of_pcm_on_stdin():
    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed (scripts/fetch_models.sh)")
    samples, _ = sf.read(JFK, dtype="float32")
    pcm = (np.clip(np.concatenate([samples, np.zeros(16000, np.float32)]), -1, 1) * 32767).astype("<i2").tobytes()
    done = subprocess.run(
        [sys.executable, "-m", "mlx_audio_coreml", "listen", "-", "--model", "tiny.en", "--step", "3"],
        input=pcm, capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and "\x1b[" not in out  # a pipe gets plain confirmed text, no terminal redraws
    assert similarity(JFK_TEXT, " ".join(lines)) >= 0.8, out
