"""Whisper model speed on this machine: encoder ms per 30 s window and decoder ms per token.

Compares our model (float32 and int8 on the CPU host path, plain MLX float32, float16, MLX int4)
with CTranslate2 (faster-whisper's engine, float32 and int8) on the same random mel, interleaving
the variants round by round so a shared, noisy CPU hits them alike; prints medians and ratios.

    .venv/bin/python bench/model_speed.py [--model tiny.en] [--rounds 5] [--steps 32] [--skip f16,int4]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
from mlx_audio_coreml.cpu import blas as _blas
from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.whisper.loading import load_whisper
from mlx_audio_coreml.whisper.model_names import resolve_local

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip


def our_variants(model_dir, skip: set[str]) -> dict[str, tuple[object, bool]]:
    """name -> (bundle, host math on)"""
    wanted = {
        "ours f32 host": (mx.float32, None, True),
        "mlx f32 plain": (mx.float32, None, False),
        "mlx f16": (mx.float16, None, False),
        "ours int8 host": (mx.float32, "int8", True),  # oneDNN int8 on the CPU (MLX group int8 elsewhere)
        "mlx int4": (mx.float32, "int4", True),
    }
    out = {}
    for name, (dtype, quant, host) in wanted.items():
        if any(s in name for s in skip):
            continue
        out[name] = (load_whisper(model_dir, dtype=dtype, quantization=quant), host)
    return out


def time_encoder(bundle, host: bool, mel: mx.array) -> float:
    start = time.perf_counter()
    if host:
        mx.eval(bundle.model.encoder(mel))
    else:
        with host_math.disabled():
            mx.eval(bundle.model.encoder(mel))
    return time.perf_counter() - start


def prompt_of(bundle) -> list[int]:
    tokenizer = bundle.get_tokenizer(language="en") if bundle.model.is_multilingual else bundle.tokenizer
    return list(tokenizer.sot_sequence_including_notimestamps)


def time_decoder(bundle, host: bool, features: mx.array, steps: int) -> float:
    """Seconds per greedy step with the KV cache (argmax read back each step, as a decoder does)."""
    model = bundle.model
    prompt = mx.array([prompt_of(bundle)])

    def run() -> float:
        logits, cache, _ = model.decoder(prompt, features)
        token = int(mx.argmax(logits[0, -1]).item())
        start = time.perf_counter()
        for _ in range(steps):
            logits, cache, _ = model.decoder(mx.array([[token]]), features, cache)
            token = int(mx.argmax(logits[0, -1]).item())
        return (time.perf_counter() - start) / steps

    if host:
        return run()
    with host_math.disabled():
        return run()


def ct2_timers(
    model_dir, mel_np: np.ndarray, steps: int, prompt: list[int], never: list[int]
) -> dict[str, tuple[Callable[[], float], Callable[[], float]]]:
    try:
        import ctranslate2
    except ImportError:
        return {}
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel_np))
    timers = {}
    for compute in ("float32", "int8"):
        model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type=compute, intra_threads=2)

        def encode(model=model) -> float:
            start = time.perf_counter()
            model.encode(features, to_cpu=True)
            return time.perf_counter() - start

        def step(model=model) -> float:  # (time for a long run - time for a short one) / tokens between
            encoded = model.encode(features)
            kwargs = dict(beam_size=1, suppress_tokens=never, suppress_blank=False)  # no early end
            lengths, times = [], []
            for max_length in (8, 8 + 2 * steps):  # CTranslate2 returned max_length / 2 tokens here: count them
                start = time.perf_counter()
                result = model.generate(encoded, [prompt], max_length=max_length, **kwargs)
                times.append(time.perf_counter() - start)
                lengths.append(len(result[0].sequences_ids[0]))
            return (times[1] - times[0]) / (lengths[1] - lengths[0])

        timers[f"ct2 {compute}"] = (encode, step)
    return timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--skip", default="", help="comma-separated substrings of variant names to leave out")
    args = parser.parse_args()
    model_dir = resolve_local(args.model)
    skip = {s for s in args.skip.split(",") if s}
    ours = our_variants(model_dir, skip)
    n_mels = next(iter(ours.values()))[0].dims.n_mels
    mel_np = np.random.default_rng(0).standard_normal((1, n_mels, 3000)).astype(np.float32) * 0.5
    mel = mx.array(mel_np.transpose(0, 2, 1))  # (B, frames, mels)
    features = {name: b.model.encoder(mel) for name, (b, _) in ours.items()}
    mx.eval(features)
    first = next(iter(ours.values()))[0]
    never = [first.tokenizer.eot, first.tokenizer.sot]
    ct2 = {
        k: v
        for k, v in ct2_timers(model_dir, mel_np, args.steps, prompt_of(first), never).items()
        if not any(s in k for s in skip)
    }
    enc: dict[str, list[float]] = {name: [] for name in [*ours, *ct2]}
    dec: dict[str, list[float]] = {name: [] for name in [*ours, *ct2]}
    for round_index in range(args.rounds + 1):  # round 0 warms up and is dropped
        for name, (bundle, host) in ours.items():
            e, d = time_encoder(bundle, host, mel), time_decoder(bundle, host, features[name], args.steps)
            if round_index:
                enc[name].append(e), dec[name].append(d)
        for name, (encode, step) in ct2.items():
            e, d = encode(), step()
            if round_index:
                enc[name].append(e), dec[name].append(d)
    print_table(args, enc, dec)


def print_table(args: argparse.Namespace, enc: dict[str, list[float]], dec: dict[str, list[float]]) -> None:
    print(
        f"model {args.model}; {platform.processor() or platform.machine()}; MLX {mx.__version__}; BLAS: {_blas.blas_note}"
    )
    print(f"medians of {args.rounds} interleaved rounds; decoder: {args.steps} greedy steps with KV cache, batch 1")
    base = "ct2 float32" if "ct2 float32" in enc else None
    print(
        f"{'variant':<16} {'encoder ms/window':>18} {'decoder ms/token':>17} {'enc vs ct2 f32':>15} {'dec vs ct2 f32':>15}"
    )
    for name in enc:
        e, d = statistics.median(enc[name]) * 1000, statistics.median(dec[name]) * 1000
        re = f"{e / (statistics.median(enc[base]) * 1000):.2f}x" if base else "-"
        rd = f"{d / (statistics.median(dec[base]) * 1000):.2f}x" if base else "-"
        print(f"{name:<16} {e:>18.1f} {d:>17.2f} {re:>15} {rd:>15}")


if __name__ == "__main__":
    main()
