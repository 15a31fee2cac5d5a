"""In-process A/B of the int8 many-row products: prepared int32-sum kernels against oneDNN's gemm.

`linear.HostLinear` sends int8 products of more than 8 rows (the encoder's pieces, the audio
keys/values, prompt rows) to prepared 1x1-convolution kernels (`onednn_rows.RowProduct`,
sums_only); `linear.many_rows_conv = False` puts them back on `onednn.gemm_u8s8`. Both give the
same int32 sums and the same scaling passes, so the outputs must be bit-identical (checked).

Captures the real encoder and prefill calls of one greedy tiny.en int8 transcription of
bench/longform_cpu.py's long speech, then replays them with the switch on and off in turns (the
order alternating each round) and prints per phase the median wall and CPU (user + sys) ms per
call, with the CPU model and the load average before and after.

    python3 bench/host_products_ab.py --seconds 80 --rounds 7
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "python")]

Call = tuple[tuple[Any, ...], dict[str, Any]]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _captured(seconds: float) -> tuple[dict[str, Callable[..., Any]], dict[str, list[Call]]]:
    """The encoder's and the prefill's functions and their calls in one transcription."""
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from longform_cpu import long_speech
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper import host_encoder, host_prefill
    from mlx_audio_coreml.whisper.session import WhisperSession

    functions = {"encoder": host_encoder.encode_blocks, "prefill": host_prefill.prefill}
    calls: dict[str, list[Call]] = {name: [] for name in functions}

    def capturing(name: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name].append((args, kwargs))
            return functions[name](*args, **kwargs)

        return wrapper

    host_encoder.encode_blocks = capturing("encoder")  # type: ignore[assignment]
    host_prefill.prefill = capturing("prefill")  # type: ignore[assignment]
    options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=WhisperQuantization.INT8)
    session = WhisperSession.from_pretrained("tiny.en", options)
    audio, _reference, how = long_speech(seconds)
    segments, _info = session.transcribe(audio, language="en", temperature=0.0)
    list(segments)
    host_encoder.encode_blocks, host_prefill.prefill = functions["encoder"], functions["prefill"]
    print(f"audio: {how}")
    return functions, calls


def _host_logits(decoder: Any, logits_layer: Any, normed: np.ndarray) -> Any:
    """`host_prefill._logits` without the lazy MLX product of the earlier rows' logits: the
    decoding task never reads those (so it never runs), and evaluating them here would add ~100 ms
    of float32 MLX work to both routes."""
    import mlx.core as mx

    return mx.array(logits_layer(normed[-1:])[None])


def _outputs(name: str, function: Callable[..., Any], call: Call) -> list[np.ndarray]:
    result = function(*call[0], **call[1])
    if name == "encoder":
        return [np.asarray(result)]
    logits, cache, _scores = result  # the word-timing scores are lazy and stay unread, as in decoding
    return [np.asarray(logits)] + [np.asarray(t) for layer in cache for pair in layer for t in pair]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=80.0)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from machine_info import cpu_flags, cpu_model

    print(f"CPU: {cpu_model()} ({cpu_flags()}); load before {os.getloadavg()[:3]}")
    functions, calls = _captured(args.seconds)
    from mlx_audio_coreml.cpu import linear
    from mlx_audio_coreml.whisper import host_prefill

    host_prefill._logits = _host_logits  # type: ignore[assignment]

    prompts = [call[0][1].shape[1] for call in calls["prefill"]]
    print(f"calls: encoder {len(calls['encoder'])}, prefill {len(calls['prefill'])} (prompt lengths {prompts})")
    print("| phase | kernels (new) wall ms | CPU ms | gemm (old) wall ms | CPU ms | new / old CPU | bit-identical |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, function in functions.items():
        outputs = {}
        for on in (True, False):  # warm-up, and the outputs of each route
            linear.many_rows_conv = on
            outputs[on] = [_outputs(name, function, call) for call in calls[name]]
        same = all(np.array_equal(a, b) for new, old in zip(outputs[True], outputs[False]) for a, b in zip(new, old))
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for index in range(args.rounds):
            for on in (True, False) if index % 2 == 0 else (False, True):
                linear.many_rows_conv = on
                cpu_start, start = _cpu_s(), time.perf_counter()
                for call in calls[name]:
                    _outputs(name, function, call)
                wall[on].append(1000 * (time.perf_counter() - start) / len(calls[name]))
                cpu[on].append(1000 * (_cpu_s() - cpu_start) / len(calls[name]))
        new, old = (statistics.median(wall[on]) for on in (True, False))
        new_cpu, old_cpu = (statistics.median(cpu[on]) for on in (True, False))
        print(
            f"| {name} | {new:.1f} | {new_cpu:.1f} | {old:.1f} | {old_cpu:.1f} | {new_cpu / old_cpu:.3f} | {same} |",
            flush=True,
        )
    linear.many_rows_conv = True
    print(f"load after {os.getloadavg()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
