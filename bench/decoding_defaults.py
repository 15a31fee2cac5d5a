"""Each engine's defaults on long real English speech: WER and time, ours vs faster-whisper (issue #14).

The audio, reference and WER are bench/longform_cpu.py's (jfk.wav + LibriVox clips, repeated); this
script runs only its `defaults` setting (each engine loaded and called exactly as a user does) but
keeps what that script throws away: every segment (start, end, text) of both engines, written to a
JSON file beside the results, and the word errors split by source clip, so a WER gap can be traced
to the windows that cause it. Engines run in turns, one warm-up each on jfk.wav, load average printed
before and after; times are wall and CPU (all threads of the process).

    timeout 5400 .venv/bin/python bench/decoding_defaults.py --model tiny.en --minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests"), str(ROOT / "bench")]

from longform_cpu import _cpu_seconds, _words, long_speech  # noqa: E402
from machine_info import cpu_flags, cpu_model  # noqa: E402


def _ours(model: str) -> object:
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from mlx_audio_coreml.whisper.session import WhisperSession

    session = WhisperSession.from_pretrained(model)

    def run(audio: object) -> list[tuple[float, float, str]]:
        segments, _info = session.transcribe(audio)
        return [(s.start, s.end, s.text) for s in segments]

    return run


def _faster_whisper(model: str, threads: int) -> object:
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.whisper.model_names import local_store

    fw = WhisperModel(str(local_store() / model), device="cpu", cpu_threads=threads)

    def run(audio: object) -> list[tuple[float, float, str]]:
        segments, _info = fw.transcribe(audio)
        return [(s.start, s.end, s.text) for s in segments]

    return run


def align_errors(reference: list[str], hypothesis: list[str]) -> list[int]:
    """Per reference word, the edit operations charged to it in a minimal alignment (0 = correct;
    an insertion is charged to the reference word after it, or the last)."""
    n, m = len(reference), len(hypothesis)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    charged = [0] * max(n, 1)
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            charged[i - 1] += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            charged[i - 1] += 1
            i -= 1
        else:
            charged[min(i, n - 1)] += 1
            j -= 1
    return charged


def per_clip(clip_texts: list[str], hypothesis: str) -> list[tuple[int, int]]:
    """(errors, reference words) for each clip occurrence of the long audio, in order."""
    words = [_words(t) for t in clip_texts]
    charged = align_errors([w for ws in words for w in ws], _words(hypothesis))
    out, at = [], 0
    for ws in words:
        out.append((sum(charged[at : at + len(ws)]), len(ws)))
        at += len(ws)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--order", choices=("ours-first", "theirs-first"), default="ours-first")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "decoding_defaults_run.json"))
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    audio, reference, how = long_speech(args.minutes * 60)
    from speech_data import JFK_TEXT, librivox_clips

    clip_texts_once = [JFK_TEXT, *(t for _p, t in librivox_clips())]
    passes = round(len(_words(reference)) / len(_words(" ".join(clip_texts_once))))
    clip_texts = clip_texts_once * passes
    result: dict[str, object] = {
        "cpu": f"{cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores, threads={args.threads}",
        "model": args.model,
        "audio": how,
        "seconds": len(audio) / 16000,
        "load_before": os.getloadavg()[0],
        "engines": {},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "engines"}), flush=True)
    runs = {"mlx-audio-coreml": _ours(args.model), "faster-whisper": _faster_whisper(args.model, args.threads)}
    names = list(runs) if args.order == "ours-first" else list(reversed(runs))
    for name in names:
        runs[name](str(ROOT / "samples" / "jfk.wav"))  # type: ignore[operator]
    for name in names:
        load = os.getloadavg()[0]
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        segments = runs[name](audio)  # type: ignore[operator]
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - start_cpu
        text = " ".join(s[2].strip() for s in segments)
        clips = per_clip(clip_texts, text)
        errors, total = sum(e for e, _ in clips), sum(n for _, n in clips)
        result["engines"][name] = {  # type: ignore[index]
            "wall_s": wall,
            "cpu_s": cpu,
            "load_at_start": load,
            "load_at_end": os.getloadavg()[0],
            "wer_aligned": errors / max(total, 1),
            "per_clip_errors": clips,
            "segments": segments,
        }
        print(
            f"{name}: wall {wall:.1f} s, CPU {cpu:.1f} s, WER {100 * errors / total:.2f}%, load {load:.1f}", flush=True
        )
        Path(args.out).write_text(json.dumps(result, indent=1))
    result["load_after"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
