"""Which matrix kernels each engine runs on this CPU, and how long they take (for bench/xeon_cpu.sh).

Transcribes jfk.wav (greedy or beam N, English) twice with one engine and one precision, in one process, with
the libraries' own call logs on: oneDNN's (ONEDNN_VERBOSE=1: each primitive or BLAS-like call, its
implementation, e.g. `brg:avx512_core_amx` or `jit:avx512_core_gemm_s8u8s32`, and milliseconds) for
ours, oneMKL's (MKL_VERBOSE=1: each GEMM and its microseconds) and CTranslate2's (CT2_VERBOSE=1: the
ISA and GEMM backends it picked) for faster-whisper. Set those variables before starting it; the
shell driver sums the log lines. Prints the wall and CPU seconds of each pass.

    MKL_VERBOSE=1 CT2_VERBOSE=1 python3 bench/xeon_cpu.kernels.py faster-whisper int8
    ONEDNN_VERBOSE=1 python3 bench/xeon_cpu.kernels.py mlx-audio-coreml int8 5   # beam 5
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDIO = str(ROOT / "samples" / "jfk.wav")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ours(dtype: str, threads: int, beam: int):  # noqa: ANN202  (a transcription callable)
    import mlx_audio_coreml  # noqa: F401  (first: it preloads OpenBLAS for MLX)
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    quant = WhisperQuantization.INT8 if dtype == "int8" else WhisperQuantization.FLOAT32
    session = WhisperSession.from_pretrained(
        "tiny.en", dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=quant)
    )
    return lambda: session.transcribe(AUDIO, language="en", beam_size=beam, temperature=0.0)[0]


def _faster_whisper(dtype: str, threads: int, beam: int):  # noqa: ANN202
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.whisper.model_names import local_store

    model = WhisperModel(str(local_store() / "tiny.en"), device="cpu", compute_type=dtype, cpu_threads=threads)
    return lambda: model.transcribe(AUDIO, language="en", beam_size=beam, temperature=0.0, vad_filter=False)[0]


def main() -> int:
    engine, dtype = sys.argv[1], sys.argv[2]
    beam = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    threads = len(os.sched_getaffinity(0))
    sys.path.insert(0, str(ROOT / "python"))
    run = (_ours if engine == "mlx-audio-coreml" else _faster_whisper)(dtype, threads, beam)
    for index in range(2):
        start, start_cpu = time.perf_counter(), _cpu_seconds()
        text = " ".join(segment.text.strip() for segment in run())
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - start_cpu
        print(
            f"KERNELS pass {index + 1}: {engine} {dtype} beam {beam} {wall:.3f} s wall {cpu:.3f} s CPU: {text[:60]}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
