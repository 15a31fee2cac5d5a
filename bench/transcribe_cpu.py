"""Transcription speed on this CPU: mlx-audio-coreml vs faster-whisper (CTranslate2 int8 and float32).

Same audio, same model size, same decoding (greedy, English, no word timestamps), same thread count,
in one run. Prints a table of medians, real-time factors and ratios, plus the machine, versions and
BLAS, and writes it to bench/results/transcribe_cpu.md.

    .venv/bin/python bench/transcribe_cpu.py --models tiny.en base --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _time(fn: Callable[[], str], repeats: int) -> tuple[float, str]:
    text = fn()  # warm-up: first-call costs (graph building, allocation) are not transcription speed
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        text = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), text


def ours(model: str, audio: str, dtype: str) -> Callable[[], str]:
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    quant = WhisperQuantization.FLOAT32 if dtype == "float32" else WhisperQuantization.FLOAT16
    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=quant)
    session = WhisperSession.from_pretrained(model, options)

    def run() -> str:
        segments, _info = session.transcribe(audio, language="en", beam_size=None, temperature=0.0)
        return " ".join(s.text.strip() for s in segments)

    return run


def faster_whisper(model: str, audio: str, compute_type: str, threads: int) -> Callable[[], str]:
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.whisper.models import local_store

    fw = WhisperModel(str(local_store() / model), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def run() -> str:
        segments, _info = fw.transcribe(audio, language="en", beam_size=1, temperature=0.0,
                                        condition_on_previous_text=True, vad_filter=False)
        return " ".join(s.text.strip() for s in segments)

    return run


def _machine(threads: int) -> list[str]:
    import ctranslate2
    import faster_whisper as fw_pkg
    import mlx.core as mx

    from mlx_audio_coreml import _blas

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [
        f"machine: {cpu}, {os.cpu_count()} cores, threads={threads}, {platform.platform()}",
        f"versions: python {platform.python_version()}, mlx {mx.__version__} ({mx.default_device()}), "
        f"ctranslate2 {ctranslate2.__version__}, faster-whisper {fw_pkg.__version__}",
        f"BLAS for MLX: {_blas.blas_note}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--audio", default=str(ROOT / "samples" / "jfk.wav"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"], help="our MLX dtypes to time")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "transcribe_cpu.md"))
    args = parser.parse_args()
    _set_threads(args.threads)
    sys.path.insert(0, str(ROOT / "python"))

    import soundfile

    duration = soundfile.info(args.audio).duration
    rows = []
    for model in args.models:
        engines: list[tuple[str, Callable[[], Callable[[], str]]]] = [
            ("faster-whisper int8", lambda: faster_whisper(model, args.audio, "int8", args.threads)),
            ("faster-whisper float32", lambda: faster_whisper(model, args.audio, "float32", args.threads)),
        ] + [(f"mlx-audio-coreml {d}", lambda d=d: ours(model, args.audio, d)) for d in args.dtypes]
        timed = [(name, *_time(make(), args.repeats)) for name, make in engines]
        best_fw = min(s for name, s, _t in timed if name.startswith("faster"))
        rows += [(model, name, s, s / duration, text, best_fw / s) for name, s, text in timed]

    lines = _machine(args.threads) + [
        f"audio: {Path(args.audio).name} ({duration:.1f} s), greedy, English, median of {args.repeats} after 1 warm-up",
        "",
        "| model | engine | median s | RTF | speed vs best faster-whisper |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {m} | {e} | {s:.3f} | {rtf:.3f} | {ratio:.2f}x |" for m, e, s, rtf, _t, ratio in rows]
    lines += ["", "texts:"] + [f"- {m} / {e}: {t}" for m, e, _s, _r, t, _x in rows]
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
