"""Where a long-form tiny.en int8 transcription (greedy or beam 5) spends its time on this CPU, and what the decoder
switches change: one process, variants in turns, faster-whisper as the in-process reference.

Each variant transcribes the same long audio (bench/longform_cpu.py's real clips), int8, greedy
or beam 5 (`--setting`);
the variants are the CPU decoder's switches, flipped in this process between runs:
- `default`: as shipped;
- `rows-no-amx`: few-row int8 products skip oneDNN's AMX kernels (MLX_AUDIO_COREML_ROWS_AMX=0;
  the decoder's prepared products are built once per variant and swapped in);
- `split-cross`: cross-attention's heads split between the 2 host workers (MLX_AUDIO_COREML_SPLIT_CROSS=1);
- `faster-whisper`: CTranslate2 on the same weights (int8, cpu_threads as given).
Prints per round wall and CPU seconds (all threads of the process), the decoder steps and CPU
ms per step of ours, medians, whether every variant gave the same text, then a cProfile of one
default run (top 25 by own time), and the load average before and after.

    python3 bench/xeon_cpu.profile.py --minutes 1 --rounds 3      # after `source bench/xeon_cpu.env.sh`
    python3 bench/xeon_cpu.profile.py --setting beam5-int8 --no-profile
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--setting", default="greedy-int8", choices=["greedy-int8", "beam5-int8"])
    parser.add_argument("--variants", nargs="+", default=["default", "rows-no-amx", "split-cross", "faster-whisper"])
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    from longform_cpu import faster_whisper, long_speech
    from machine_info import cpu_flags, cpu_model
    from mlx_audio_coreml.whisper import host_decoder

    print(f"CPU: {cpu_model()} ({cpu_flags()}); load {os.getloadavg()[0]:.2f}; threads {args.threads}")
    audio, _reference, how = long_speech(args.minutes * 60)
    print(f"audio: {how}; setting {args.setting}")
    run_ours, decoder = _ours(args.setting)
    warm = audio[: 16000 * 11]
    run_ours(warm)
    steps = [0]
    step = host_decoder.decode_step

    def counted(*a: object, **k: object) -> object:
        steps[0] += 1
        return step(*a, **k)

    host_decoder.decode_step = counted  # type: ignore[assignment]
    prepared = {"default": decoder.host_weights}
    if "rows-no-amx" in args.variants:
        os.environ["MLX_AUDIO_COREML_ROWS_AMX"] = "0"
        decoder.host_weights = None
        run_ours(warm)  # builds (and warms) the no-AMX products
        prepared["rows-no-amx"] = decoder.host_weights
        os.environ.pop("MLX_AUDIO_COREML_ROWS_AMX")
    runs = {}
    for name in args.variants:
        if name == "faster-whisper":
            runs[name] = faster_whisper("tiny.en", args.setting, args.threads)
            runs[name](warm)
            continue

        def variant(clip: object, name: str = name) -> str:
            decoder.host_weights = prepared.get(name, prepared["default"])
            kept = host_decoder._SPLIT_CROSS
            host_decoder._SPLIT_CROSS = True if name == "split-cross" else kept
            try:
                return run_ours(clip)
            finally:
                host_decoder._SPLIT_CROSS = kept
                decoder.host_weights = prepared["default"]

        runs[name] = variant
        variant(warm)
    _in_turns(runs, audio, args.rounds, steps)
    if not args.no_profile:
        _profile(run_ours, audio, steps)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def _ours(setting: str) -> tuple[Callable[[object], str], Any]:
    """Our transcription as bench/longform_cpu.py runs it (`ours`), and the session's text decoder."""
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=WhisperQuantization.INT8)
    session = WhisperSession.from_pretrained("tiny.en", options)
    kwargs = {"beam_size": 5 if setting.startswith("beam5") else 1, "temperature": 0.0, "language": "en"}

    def run(audio: object) -> str:
        segments, _info = session.transcribe(audio, **kwargs)
        return " ".join(s.text.strip() for s in segments)

    assert session.bundle is not None  # loaded in the foreground (mlx_only)
    return run, session.bundle.model.decoder


def _in_turns(runs: dict, audio: object, rounds: int, steps: list[int]) -> None:
    walls: dict[str, list[float]] = {n: [] for n in runs}
    cpus: dict[str, list[float]] = {n: [] for n in runs}
    per_step: dict[str, list[float]] = {n: [] for n in runs}
    texts: dict[str, str] = {}
    for index in range(rounds):
        for name in list(runs) if index % 2 == 0 else list(reversed(runs)):
            steps[0] = 0
            start, start_cpu = time.perf_counter(), _cpu()
            texts[name] = runs[name](audio)
            wall, cpu = time.perf_counter() - start, _cpu() - start_cpu
            walls[name].append(wall)
            cpus[name].append(cpu)
            if steps[0]:
                per_step[name].append(1000 * cpu / steps[0])
            print(f"round {index} {name:15s} wall {wall:6.2f} s  CPU {cpu:6.2f} s  steps {steps[0]:5d}  "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    print(
        "\n| variant | median wall s | median CPU s | CPU ms per decoder step (run's CPU / steps) | text as default's |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name in runs:
        ms = f"{statistics.median(per_step[name]):.2f}" if per_step[name] else "-"
        same = "-" if name == "faster-whisper" else "same" if texts[name] == texts.get("default") else "DIFFERS"
        print(
            f"| {name} | {statistics.median(walls[name]):.2f} | {statistics.median(cpus[name]):.2f} | {ms} | {same} |"
        )


def _profile(run: object, audio: object, steps: list[int]) -> None:
    steps[0] = 0
    profile = cProfile.Profile()
    start, start_cpu = time.perf_counter(), _cpu()
    profile.enable()
    run(audio)  # type: ignore[operator]
    profile.disable()
    print(f"\ncProfile of one default run: wall {time.perf_counter() - start:.2f} s, CPU {_cpu() - start_cpu:.2f} s, "
          f"{steps[0]} decoder steps; top 25 by own time")  # fmt: skip
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
