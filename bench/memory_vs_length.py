"""Resident memory against audio length (issue #16, finding 8): 10 min, 30 min and 2 h of real speech.

Each length is a 16 kHz WAV made by repeating real clips (samples/jfk.wav and the LibriVox clips of
tests/speech_data.py). Each measurement runs in a fresh process with tiny.en loaded:
- "windowed" (this package): `session.transcribe(path)` then the first N windows decoded; RSS is
  sampled after the model loads, after transcribe() returns (the streamed measuring pass over the
  whole file is done by then) and after each window; the peak is the process's ru_maxrss;
- "whole clip" (what main did before): the file decoded whole and its log-mel computed whole, as
  `load_audio` + `log_mel_spectrogram(padding=N_SAMPLES)` did before the first window.
Decoding all of a 2 h file takes too long on this machine's 2 shared cores, so the windowed run
stops after N windows; the point is that memory after the measuring pass does not grow with
length, and that each window's work is the same whatever the length.

    .venv/bin/python bench/memory_vs_length.py [--windows 3] [--minutes 10 30 120]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

WINDOWED = """
import json, resource, sys, time
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
from mlx_audio_coreml.options import ModelLoadingOptions
from mlx_audio_coreml.whisper.session import WhisperSession
session = WhisperSession.from_pretrained(sys.argv[1], ModelLoadingOptions.mlx_only())
loaded = rss_mb()
started = time.perf_counter()
segments, info = session.transcribe(sys.argv[2], beam_size=1, without_timestamps=False)
measured, measure_s = rss_mb(), time.perf_counter() - started
per_window, seeks = [], set()
for segment in segments:
    seeks.add(segment.seek)
    if len(seeks) > int(sys.argv[3]):
        break
    per_window.append(rss_mb())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"loaded": loaded, "measured": measured, "windows_max": max(per_window), "peak": peak,
                  "measure_s": measure_s, "duration": info.duration}))
"""

WHOLE_CLIP = """
import json, resource, sys
import mlx.core as mx
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20
from mlx_audio_coreml.options import ModelLoadingOptions
from mlx_audio_coreml.whisper.session import WhisperSession
from mlx_audio_coreml.whisper.audio import N_SAMPLES, load_audio
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
session = WhisperSession.from_pretrained(sys.argv[1], ModelLoadingOptions.mlx_only())
loaded = rss_mb()
samples = load_audio(sys.argv[2])
mel = log_mel_spectrogram(samples, 80, padding=N_SAMPLES)
mx.eval(mel)
held = rss_mb()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"loaded": loaded, "held": held, "peak": peak}))
"""


def make_speech(path: Path, minutes: float) -> Path:
    """A WAV of `minutes` of real speech: the real clips repeated in order, written block by block."""
    import numpy as np
    import soundfile

    from mlx_audio_coreml.audio.decode import decode_audio
    from speech_data import JFK, librivox_clips

    clips = [decode_audio(JFK)] + [decode_audio(p) for p, _ in librivox_clips()]
    target = int(minutes * 60 * 16000)
    written = 0
    with soundfile.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as out:
        while written < target:
            for clip in clips:
                piece = clip[: target - written]
                out.write(np.asarray(piece))
                written += len(piece)
                if written >= target:
                    break
    return path


def run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed (rc {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 120])
    parser.add_argument("--windows", type=int, default=3, help="windows decoded per windowed run")
    parser.add_argument("--skip-whole", action="store_true", help="skip the whole-clip (old path) runs")
    args = parser.parse_args()
    from speech_data import real_model_dir

    model = real_model_dir("tiny.en")
    if model is None:
        raise SystemExit("tiny.en is not installed (scripts/fetch_models.sh tiny.en)")
    print(f"Resident memory (MB), tiny.en on MLX CPU, first {args.windows} windows decoded per run", flush=True)
    print(
        f"{'audio':>8} | {'after load':>10} | {'after measuring pass':>20} | {'max over windows':>16} | "
        f"{'peak (windowed)':>15} | {'measure s':>9} | {'whole clip held':>15} | {'whole clip peak':>15}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:  # a row as soon as it is measured: the 2 h one takes long
            wav = make_speech(Path(folder) / f"speech_{minutes:g}min.wav", minutes)
            w = run(WINDOWED, str(model), str(wav), str(args.windows))
            whole = None if args.skip_whole else run(WHOLE_CLIP, str(model), str(wav))
            wav.unlink()
            held = f"{whole['held']:15.0f}" if whole else f"{'-':>15}"
            peak = f"{whole['peak']:15.0f}" if whole else f"{'-':>15}"
            print(
                f"{minutes:>6g} m | {w['loaded']:10.0f} | {w['measured']:20.0f} | {w['windows_max']:16.0f} | "
                f"{w['peak']:15.0f} | {w['measure_s']:9.1f} | {held} | {peak}",
                flush=True,
            )


if __name__ == "__main__":
    main()
