"""How much the decoding loop adds over the bare decoder step, in ms per decoded token.

Usage: .venv/bin/python bench/decode_loop.py [MODEL] [AUDIO] [--repeat N]

Measures, on one 30 s window of real speech with real weights (median of N interleaved rounds, after a warm-up):
- loop:   DecodingTask.run (greedy, timestamp rules and suppression on, log-probs, the
          stop check), minus the prefix step, per sampled token;
- bare:   the same number of decoder steps fed their own argmax (queued with mx.async_eval on a
          GPU, evaluated step by step on the CPU, as the loop does);
- prefix: the first decoder call over the start-of-transcript tokens.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import mlx.core as mx  # noqa: E402

import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before mlx.core)
from mlx_audio_coreml.cpu import blas as _blas
from mlx_audio_coreml.encoders import MLXAudioEncoder  # noqa: E402
from mlx_audio_coreml.whisper.audio import N_FRAMES, load_audio, pad_or_trim  # noqa: E402
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask  # noqa: E402
from mlx_audio_coreml.whisper.loading import load_whisper  # noqa: E402
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram  # noqa: E402
from mlx_audio_coreml.whisper.model_names import resolve_local  # noqa: E402
from mlx_audio_coreml.whisper.sampling import DecoderStep, pipelining_pays  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="tiny.en")
    parser.add_argument("audio", nargs="?", default="samples/jfk.wav")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    bundle = load_whisper(resolve_local(args.model))
    mel = pad_or_trim(log_mel_spectrogram(load_audio(args.audio), bundle.dims.n_mels), N_FRAMES)
    features = MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels).encode(mel[None])
    mx.eval(features)
    task = DecodingTask(bundle.model, bundle.tokenizer, DecodingOptions(), bundle.config)
    result = task.run(features)[0]
    n_tokens = len(result.tokens) + 1  # + EOT

    prefix = mx.array([task.initial_tokens])
    pipelined = pipelining_pays()  # the same choice the decoding loop makes

    def prefix_step() -> None:
        mx.eval(bundle.model.decoder(prefix, features)[:2])

    def decode_window() -> None:
        task.run(features)

    def bare_loop() -> None:
        step = DecoderStep(bundle.model, features)
        logits, cache = step(prefix, None)
        for _ in range(n_tokens):
            token = mx.argmax(logits, axis=-1).astype(mx.int32)[:, None]
            logits, cache = step(token, cache)
            (mx.async_eval if pipelined else mx.eval)(logits, cache)
        mx.eval(logits)

    # Interleaved rounds, so a busy machine slows all three alike; medians over rounds.
    for fn in (decode_window, prefix_step, bare_loop):
        fn()  # warm-up (compiles, allocations)
    rounds = [tuple(timed(fn) for fn in (decode_window, prefix_step, bare_loop)) for _ in range(args.repeat)]
    t_loop, t_prefix, t_bare = (statistics.median(r[i] for r in rounds) for i in range(3))
    overhead = statistics.median((loop - bare) / n_tokens for loop, _, bare in rounds) * 1e3
    loop_ms = (t_loop - t_prefix) / n_tokens * 1e3
    bare_ms = (t_bare - t_prefix) / n_tokens * 1e3
    print(f"machine: {platform.machine()} {platform.processor() or ''}, mlx {mx.__version__}, BLAS: {_blas.blas_note}")
    print(
        f"model {args.model} ({bundle.dtype}), audio {args.audio}, {n_tokens} tokens decoded, median of {args.repeat}"
    )
    print(f"{'':24}{'ms/token':>10}")
    print(f"{'decoding loop':24}{loop_ms:10.2f}")
    print(f"{'bare decoder step':24}{bare_ms:10.2f}")
    print(
        f"{'loop overhead':24}{overhead:10.2f}   ({overhead / bare_ms * 100:+.1f}% of a bare step; median of per-round differences)"
    )
    print(f"prefix step: {t_prefix * 1e3:.1f} ms; whole window decode: {t_loop * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
