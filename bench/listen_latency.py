"""Live transcription latency on this CPU: from the end of an utterance to its final text.

Real speech (LibriVox clips from pocketsphinx-testdata, and jfk.wav) with 2 s of silence between
clips is fed to `session.listen` at real-time pace: a producer thread releases 100 ms of audio
every 100 ms; the listener takes whatever has arrived each time it is ready. Each clip's true end
of speech is found offline (Silero VAD, 100 ms minimum silence, no padding). Its latency is the
wall time from that sample's release to the first `final` event whose speech ends at or after it
(VAD's silence wait plus the final decode). Prints p50 and p95 per model, and the load average.

    .venv/bin/python bench/listen_latency.py --models tiny.en base
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CHUNK = 1600  # 100 ms


def stream_audio(n_clips: int, gap_s: float) -> tuple[np.ndarray, list[float]]:
    """The clips joined with silence, and each clip's end of speech (seconds into the stream)."""
    from mlx_audio_coreml.vad import VadOptions, speech_timestamps
    from speech_data import JFK, librivox_clips

    clips = [sf.read(path, dtype="float32")[0] for path, _ in librivox_clips()[: n_clips - 1]]
    clips.append(sf.read(JFK, dtype="float32")[0])
    gap = np.zeros(int(gap_s * 16000), np.float32)
    parts, ends, at = [gap], [], gap.size
    tight = VadOptions(min_silence_duration_ms=100, speech_pad_ms=0)
    for clip in clips:
        ends.append((at + speech_timestamps(clip, tight)[-1].end) / 16000)
        parts += [clip, gap]
        at += clip.size + gap.size
    return np.concatenate(parts), ends


def run_live(session: object, audio: np.ndarray) -> tuple[float, list[tuple[float, float]]]:
    """Feed `audio` at real-time pace; returns (start wall time, [(final's speech end, wall time)])."""
    from mlx_audio_coreml.whisper.streaming import LiveTranscriber

    arrivals: queue.Queue = queue.Queue()
    start = time.monotonic() + 0.2

    def produce() -> None:
        for i in range(0, audio.size, CHUNK):
            time.sleep(max(0.0, start + (i + CHUNK) / 16000 - time.monotonic()))
            arrivals.put(audio[i : i + CHUNK])
        arrivals.put(None)

    threading.Thread(target=produce, daemon=True).start()
    live, finals, done = LiveTranscriber(session), [], False
    while not done:
        pieces = [arrivals.get()]
        while not arrivals.empty():
            pieces.append(arrivals.get())
        done = pieces[-1] is None
        pieces = [p for p in pieces if p is not None]
        events = live.feed(np.concatenate(pieces)) if pieces else []
        events += live.finish() if done else []
        finals += [(e.end, time.monotonic()) for e in events if e.kind == "final"]
    return start, finals


def latencies(start: float, finals: list[tuple[float, float]], ends: list[float]) -> list[float]:
    out = []
    for end in ends:
        match = next((wall for speech_end, wall in finals if speech_end >= end - 0.3), None)
        if match is not None:
            out.append(match - (start + end))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--gap", type=float, default=2.0, help="seconds of silence between clips")
    args = parser.parse_args()
    import mlx_audio_coreml as mac

    audio, ends = stream_audio(args.clips, args.gap)
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores; "
          f"{audio.size / 16000:.1f} s of audio, {len(ends)} utterances, fed at real-time pace")  # fmt: skip
    print("\n| model | utterances timed | p50 (s) | p95 (s) | max (s) | load avg before / after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        session = mac.WhisperSession.from_pretrained(name)
        list(session.transcribe(audio[: 16000 * 2])[0])  # warm-up
        load_before = os.getloadavg()[0]
        start, finals = run_live(session, audio)
        timed = latencies(start, finals, ends)
        p50 = statistics.median(timed) if timed else float("nan")
        p95 = float(np.percentile(timed, 95)) if timed else float("nan")
        print(f"| {name} | {len(timed)}/{len(ends)} | {p50:.2f} | {p95:.2f} | {max(timed, default=float('nan')):.2f} "
              f"| {load_before:.1f} / {os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
