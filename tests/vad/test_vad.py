"""Silero VAD: its probabilities against Silero's frame-by-frame model, the speech-span rules against
faster-whisper's, streaming against whole-file, and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from vad_helpers import speech_in_noise

from mlx_audio_coreml.errors import InvalidOption
from mlx_audio_coreml.errors.vad import VadModelMissing
from mlx_audio_coreml.vad import (
    FRAME_SAMPLES,
    MODEL_DIR,
    SileroVad,
    VadOptions,
    find_model,
    spans_from_probabilities,
    speech_timestamps,
)
from speech_data import librivox_clips


def _frame_by_frame(path, samples: np.ndarray) -> np.ndarray:
    """Silero's stock streaming model (`silero_vad.onnx`) run the way Silero's OnnxWrapper runs it:
    one 512-sample frame per call, led by the previous frame's last 64 samples, state carried."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frames = np.zeros(-(-samples.size // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.float32)
    frames[: samples.size] = samples
    context, state, out = np.zeros((1, 64), np.float32), np.zeros((2, 1, 128), np.float32), []
    for frame in frames.reshape(-1, FRAME_SAMPLES):
        x = np.concatenate([context, frame[None]], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": np.array(16000, np.int64)})
        out.append(float(prob[0, 0]))
        context = x[:, -64:]
    return np.array(out, dtype=np.float32)


def test_probabilities_equal_silero_frame_by_frame_model_on_real_speech(vad_model, jfk):
    stock = vad_model.path.parent / "silero_vad.onnx"
    if stock.parent.name != MODEL_DIR or not stock.is_file():
        pytest.skip("Silero's frame-by-frame model not installed beside ours (scripts/fetch_models.sh silero-vad)")
    clips = [jfk] + [_read(path) for path, _ in librivox_clips()[:2]]
    for samples in clips:
        ours = vad_model.probabilities(samples)
        reference = _frame_by_frame(stock, samples)
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours, reference, atol=1e-5)
        assert ours.max() > 0.9 and ours.min() < 0.1  # real speech with pauses: both extremes occur


def _read(path) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return samples


def test_stream_fed_in_uneven_pieces_gives_the_whole_file_probabilities(vad_model, jfk):
    whole = vad_model.probabilities(jfk)
    stream = vad_model.stream()
    pieces, start = [], 0
    for size in [1, 511, 513, 7000, 160, 16000 * 3] * 10:
        pieces.append(stream.feed(jfk[start : start + size]))
        start += size
        if start >= jfk.size:
            break
    pieces.append(stream.feed(jfk[start:]))
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert stream.frames_done == whole.size


def test_utterance_in_a_minute_of_noise_is_the_only_speech_found(vad_model, jfk):
    audio = speech_in_noise(jfk, at_s=30.0)
    spans = speech_timestamps(audio, VadOptions(), vad_model)
    assert len(spans) == 1
    # jfk.wav (11 s) speaks from ~0.3 s to its last second; the default padding is 0.4 s each side
    assert 29.5 <= spans[0].start_s <= 30.5
    assert 40.5 <= spans[0].end_s <= 41.5


def test_noise_and_silence_alone_hold_no_speech(vad_model):
    audio = speech_in_noise(np.zeros(0, np.float32), at_s=0.0, total_s=30.0)
    assert speech_timestamps(audio, VadOptions(), vad_model) == []
    assert speech_timestamps(np.zeros(16000 * 3, np.float32), VadOptions(), vad_model) == []


def test_short_silence_settings_cut_jfk_at_its_pauses(vad_model, jfk):
    coarse = speech_timestamps(jfk, VadOptions(), vad_model)
    fine = speech_timestamps(jfk, VadOptions(min_silence_duration_ms=100, speech_pad_ms=30), vad_model)
    assert len(coarse) == 1 and len(fine) >= 4  # jfk has four clear pauses
    assert all(a.end <= b.start for a, b in itertools.pairwise(fine))


@pytest.mark.parametrize(
    "options",
    [
        VadOptions(),
        VadOptions(min_silence_duration_ms=100, speech_pad_ms=30, min_speech_duration_ms=250),
        VadOptions(threshold=0.7, neg_threshold=0.2, min_silence_duration_ms=300),
        VadOptions(max_speech_duration_s=2.0, min_silence_duration_ms=500, speech_pad_ms=100),
        VadOptions(max_speech_duration_s=1.0, min_silence_duration_ms=2000),
    ],
)
def test_spans_follow_faster_whisper_rules_for_the_same_probabilities(vad_model, jfk, options):
    fw_vad = pytest.importorskip("faster_whisper.vad")
    audio = np.concatenate([jfk, np.zeros(16000 * 3, np.float32), jfk[: 16000 * 4]])
    probs = vad_model.probabilities(audio)

    class SameProbabilities:  # faster-whisper's loop over the probabilities we computed
        def __call__(self, padded: np.ndarray) -> np.ndarray:
            wanted = padded.size // FRAME_SAMPLES
            return np.pad(probs, (0, wanted - probs.size))[:wanted, None]

    fw_options = fw_vad.VadOptions(**{k: getattr(options, k) for k in fw_vad.VadOptions.__dataclass_fields__})
    original = fw_vad.get_vad_model
    fw_vad.get_vad_model = SameProbabilities
    try:
        theirs = fw_vad.get_speech_timestamps(audio, fw_options)
    finally:
        fw_vad.get_vad_model = original
    ours = spans_from_probabilities(probs, audio.size, options)
    assert [(s.start, s.end) for s in ours] == [(t["start"], t["end"]) for t in theirs]
    assert ours  # the rules were exercised on speech, not on an empty list


@pytest.mark.parametrize(
    "options",
    [
        VadOptions(threshold=1.5),
        VadOptions(neg_threshold=0.9),
        VadOptions(speech_pad_ms=-1),
        VadOptions(max_speech_duration_s=0),
    ],
)
def test_bad_options_raise_invalid_option(options):
    with pytest.raises(InvalidOption):
        spans_from_probabilities(np.zeros(4, np.float32), 2048, options)


def test_missing_model_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # no silero-vad package either
    with pytest.raises(VadModelMissing) as info:
        find_model()
    assert str(tmp_path / "models" / MODEL_DIR) in info.value.searched[0]
    assert "fetch_models.sh silero-vad" in info.value.hint
    with pytest.raises(VadModelMissing):
        SileroVad()
