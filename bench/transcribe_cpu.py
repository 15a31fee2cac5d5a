"""Transcription speed on this CPU: mlx-audio-coreml vs faster-whisper (CTranslate2 int8 and float32).

Same audio, same model size, same decoding (greedy or --beam-size N for both, English, no word timestamps), same thread count,
in one run. Engines take turns, one transcription each per round (after one warm-up each), so a
noisy shared CPU slows them alike. Prints a table of medians, real-time factors and ratios (against
faster-whisper at the same precision, and against its fastest), plus the machine, versions, BLAS
and load average, and writes it to bench/results/transcribe_cpu.md.

    .venv/bin/python bench/transcribe_cpu.py --models tiny.en base --repeats 5 --dtypes float32 int8
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine_info import cpu_flags, cpu_model, version

ROOT = Path(__file__).resolve().parents[1]


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (the engines run in it one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_in_turns(runs: dict[str, Callable[[], str]], repeats: int) -> dict[str, tuple[float, float, str]]:
    """name -> (median wall seconds, median CPU seconds, text); each engine warms up once, then they
    take turns. CPU time is what a crowded machine distorts less."""
    texts = {name: fn() for name, fn in runs.items()}  # warm-up: first-call costs are not speed
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            texts[name] = fn()
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(_cpu_seconds() - start_cpu)
    return {name: (statistics.median(seconds[name]), statistics.median(cpu[name]), texts[name]) for name in runs}


def _load_engines(
    factories: dict[str, Callable[[], Callable[[], str]]],
) -> tuple[dict[str, Callable[[], str]], dict[str, str]]:
    """(name -> loaded engine, name -> why it could not load): a missing engine (not installed, no
    weights) becomes a row saying so instead of stopping the others' run."""
    runs: dict[str, Callable[[], str]] = {}
    failed: dict[str, str] = {}
    for name, factory in factories.items():
        try:
            runs[name] = factory()
        except Exception as exc:  # reported in the table, the other engines still run
            failed[name] = f"{type(exc).__name__}: {exc}".replace("|", "/").splitlines()[0][:160]
    return runs, failed


def ours(model: str, audio: str, dtype: str, beam_size: int) -> Callable[[], str]:
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    quant = {"float32": WhisperQuantization.FLOAT32, "int8": WhisperQuantization.INT8}.get(
        dtype, WhisperQuantization.FLOAT16
    )
    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=quant)
    session = WhisperSession.from_pretrained(model, options)

    def run() -> str:
        segments, _info = session.transcribe(audio, language="en", beam_size=beam_size, temperature=0.0)
        return " ".join(s.text.strip() for s in segments)

    return run


def faster_whisper(model: str, audio: str, compute_type: str, threads: int, beam_size: int) -> Callable[[], str]:
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.whisper.model_names import local_store

    fw = WhisperModel(str(local_store() / model), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def run() -> str:
        segments, _info = fw.transcribe(
            audio,
            language="en",
            beam_size=beam_size,
            temperature=0.0,
            condition_on_previous_text=True,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments)

    return run


def collect_cpu_kernels() -> str:
    from mlx_audio_coreml.cpu import onednn

    return f"oneDNN {onednn.version()}" if onednn.available() else "none (no oneDNN)"


def _machine(threads: int) -> list[str]:
    import mlx.core as mx

    from mlx_audio_coreml.cpu import blas as _blas

    cpu = cpu_model() if cpu_model() != "unknown CPU" else platform.processor() or platform.machine()
    return [
        f"machine: {cpu} ({cpu_flags()}), {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} usable, "
        f"threads={threads}, {platform.platform()}",
        f"versions: python {platform.python_version()}, mlx {mx.__version__} ({mx.default_device()}), "
        f"ctranslate2 {version('ctranslate2')}, faster-whisper {version('faster_whisper')}",
        f"BLAS for MLX: {_blas.blas_note}; CPU kernels: {collect_cpu_kernels()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--audio", default=str(ROOT / "samples" / "jfk.wav"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beam-size", type=int, default=1, help="1: greedy; 5: faster-whisper's default beam search")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float16"], help="our MLX dtypes to time")
    parser.add_argument("--openai-whisper", action="store_true", help="also time openai-whisper on torch (bench extra)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "transcribe_cpu.md"))
    args = parser.parse_args()
    _set_threads(args.threads)
    sys.path.insert(0, str(ROOT / "python"))

    import soundfile

    duration = soundfile.info(args.audio).duration
    load_before = os.getloadavg()[0]
    rows = []
    missing: list[tuple[str, str, str]] = []
    for model in args.models:
        factories: dict[str, Callable[[], Callable[[], str]]] = {
            f"faster-whisper {c}": functools.partial(faster_whisper, model, args.audio, c, args.threads, args.beam_size)
            for c in ("int8", "float32")
        }
        if args.openai_whisper:  # the original PyTorch implementation, on our weights (bench/peers)
            from peers.openai_whisper import openai_whisper

            factories["openai-whisper float32 (torch)"] = functools.partial(
                openai_whisper, model, args.audio, args.threads
            )
        factories.update(
            {
                f"mlx-audio-coreml {d}": functools.partial(ours, model, args.audio, d, args.beam_size)
                for d in args.dtypes
            }
        )
        runs, failed = _load_engines(factories)
        missing += [(model, name, reason) for name, reason in failed.items()]
        timed = _time_in_turns(runs, args.repeats)
        best_fw = min((s for name, (s, _c, _t) in timed.items() if name.startswith("faster")), default=float("nan"))
        for name, (s, cpu, text) in timed.items():
            peer = timed.get(f"faster-whisper {name.split()[1]}")
            mine = peer and not name.startswith("faster")
            same = f"{peer[0] / s:.2f}x" if mine else ""
            same_cpu = f"{peer[1] / cpu:.2f}x" if mine else ""
            rows.append((model, name, s, cpu, s / duration, text, same, same_cpu, best_fw / s))

    lines = _machine(args.threads) + [
        f"audio: {Path(args.audio).name} ({duration:.1f} s), {'greedy' if args.beam_size == 1 else f'beam {args.beam_size}'}, English, engines in turns, median of {args.repeats} after 1 warm-up each",
        f"load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}",
        "",
        "| model | engine | median s | median CPU s | RTF | speed vs faster-whisper, same precision "
        "| CPU-time speed, same precision | speed vs fastest faster-whisper |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m} | {e} | {s:.3f} | {cpu:.3f} | {rtf:.3f} | {same} | {same_cpu} | {ratio:.2f}x |"
        for m, e, s, cpu, rtf, _t, same, same_cpu, ratio in rows
    ]
    lines += [f"| {m} | {e} | not run: {reason} |  |  |  |  |  |" for m, e, reason in missing]
    lines += ["", "texts:"] + [f"- {row[0]} / {row[1]}: {row[5]}" for row in rows]
    report = "\n".join(lines)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
