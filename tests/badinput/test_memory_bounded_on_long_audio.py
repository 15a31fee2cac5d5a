"""Finding 8: memory grew with audio length (2 h of audio reached 1.9 GB by 20% of the file): the file
was decoded whole and its log-mel computed whole before the first window. Now the audio is read in
blocks and each window's mel is computed when the seek loop reaches it (whisper/mel_windows.py),
from a buffer of about one window; bench/memory_vs_length.py prints the table for 10 min to 2 h."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import mlx.core as mx
import numpy as np
import pytest
import soundfile

from mlx_audio_coreml.audio.stream import BLOCK_SECONDS, open_stream
from mlx_audio_coreml.whisper import mel_windows
from mlx_audio_coreml.whisper.audio import N_FRAMES, N_SAMPLES, SAMPLE_RATE, load_audio, pad_or_trim
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
from mlx_audio_coreml.whisper.mel_windows import MelWindows
from speech_data import JFK, REPO


def _windows(samples: np.ndarray) -> MelWindows:
    stream = open_stream(samples, SAMPLE_RATE)
    return MelWindows.measure(lambda: stream.blocks(SAMPLE_RATE), 80)


@pytest.mark.parametrize("seconds", [0.01, 7.3, 65.0])
def test_windows_equal_slices_of_the_whole_clip_mel(seconds):
    samples = (np.random.default_rng(1).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)
    whole = log_mel_spectrogram(samples, 80, padding=N_SAMPLES)
    mel = _windows(samples)
    assert mel.content_frames == whole.shape[-1] - N_FRAMES
    for seek in sorted({0, 1, 1500, max(mel.content_frames - 10, 0), 3000} & set(range(mel.content_frames + 1))):
        n_frames = min(N_FRAMES, mel.content_frames - seek)
        assert mx.allclose(
            mel.window(seek, n_frames), pad_or_trim(whole[:, seek : seek + n_frames], N_FRAMES), rtol=0, atol=1e-5
        )


def test_real_speech_windows_equal_the_whole_clip_mel():
    whole = log_mel_spectrogram(load_audio(JFK), 80, padding=N_SAMPLES)
    stream = open_stream(JFK)
    mel = MelWindows.measure(lambda: stream.blocks(SAMPLE_RATE), 80, str(JFK))
    assert mx.allclose(
        mel.window(0, mel.content_frames), pad_or_trim(whole[:, : mel.content_frames], N_FRAMES), rtol=0, atol=1e-5
    )


def test_the_window_buffer_stays_one_window_and_a_block_whatever_the_length(monkeypatch):
    monkeypatch.setattr(mel_windows, "CACHED_FRAMES", 0)  # as for a clip too long to keep its measured mel
    minutes = 12
    samples = (np.random.default_rng(2).standard_normal(minutes * 60 * SAMPLE_RATE) * 0.1).astype(np.float32)
    mel = _windows(samples)
    held = []
    for seek in range(0, mel.content_frames, 2500):  # the seek loop's forward walk
        mel.window(seek, min(N_FRAMES, mel.content_frames - seek))
        held.append(mel.held_samples)
    bound = N_SAMPLES + BLOCK_SECONDS * SAMPLE_RATE + 400  # a window, a block, a frame's context
    assert max(held) <= bound and mel.total_samples == len(samples)


def _counting_reopen(samples: np.ndarray) -> tuple[list[int], object]:
    opened: list[int] = []
    stream = open_stream(samples, SAMPLE_RATE)

    def reopen():
        opened.append(1)
        return stream.blocks(SAMPLE_RATE)

    return opened, reopen


@pytest.mark.parametrize("cap_blocks", [30, 2])  # 150 s: kept under the default cap, streamed twice past 2 blocks
def test_a_clip_under_the_cap_is_read_once_and_its_windows_equal_the_second_pass(cap_blocks, monkeypatch):
    samples = (np.random.default_rng(3).standard_normal(150 * SAMPLE_RATE) * 0.1).astype(np.float32)
    opened, reopen = _counting_reopen(samples)
    monkeypatch.setattr(mel_windows, "CACHED_FRAMES", cap_blocks * mel_windows.FRAMES_PER_BLOCK)
    kept = MelWindows.measure(reopen, 80)
    monkeypatch.setattr(mel_windows, "CACHED_FRAMES", 0)
    streamed = MelWindows.measure(_counting_reopen(samples)[1], 80)
    seeks = [0, 1, 2999, 5999, 6000, 11000, streamed.content_frames - 10]  # windows within and across blocks
    for seek in seeks:
        n_frames = min(N_FRAMES, streamed.content_frames - seek)
        got, want = np.array(kept.window(seek, n_frames)), np.array(streamed.window(seek, n_frames))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    if cap_blocks == 30:
        assert len(opened) == 1, "a kept clip is read once"
    else:
        assert len(opened) > 1, "a clip past the cap is read again for its windows"


MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    def rss_mb():
        return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
    from mlx_audio_coreml.options import ModelLoadingOptions
    from mlx_audio_coreml.whisper.session import WhisperSession
    session = WhisperSession.from_pretrained(sys.argv[1], ModelLoadingOptions.mlx_only())
    loaded = rss_mb()
    segments, info = session.transcribe(sys.argv[2], beam_size=1)
    seeks = set()
    for segment in segments:
        seeks.add(segment.seek)
        if len(seeks) > 2:
            break
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"loaded": loaded, "peak": peak, "duration": info.duration}))
    """
)


@pytest.mark.slow
def test_an_hour_of_speech_stays_within_a_bound_set_by_a_window(tmp_path, tiny_en):
    """An hour of real speech (jfk.wav repeated) through the session: the peak stays within 250 MB of
    the loaded model, where the whole file's samples alone are 230 MB (and main held ~3x that)."""
    clip = load_audio(JFK)
    path = tmp_path / "hour.wav"
    with soundfile.SoundFile(str(path), "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as out:
        for _ in range(3600 * SAMPLE_RATE // len(clip) + 1):
            out.write(clip)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tiny_en), str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200, check=True)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["duration"] > 3600
    assert result["peak"] - result["loaded"] < 250, result
