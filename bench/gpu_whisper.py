"""Our MLX Whisper against PyTorch + transformers on one GPU: encoder ms per window, decoder ms per token.

Random weights at real shapes (default large-v3-turbo, float16), nothing downloaded. Encoder: the
product's call `MLXAudioEncoder(model.encoder).encode(mel)`, eager as the product runs it and under
mx.compile, vs transformers' WhisperEncoder (sdpa, inference_mode), per 30 s window at each batch.
Decoder, batch 1, KV cache, per token after the prefill: the product's greedy loop
(`sampling.sample_tokens` with its logit filters; EOT -1, so a fixed number of steps) and a plain
step loop that evaluates and reads back each token, vs transformers' `generate` (min = max new
tokens, timed as (t(N) - t(1)) / (N - 1)) and its decoder stepped by hand with its cache. Also
PERF.md's floors from the dims and the rate each time implies. Medians after warm-up; each timed
region ends in mx.eval + mx.synchronize or torch.cuda.synchronize; outputs are checked finite.
Needs mlx (CUDA build on a GPU), numpy, the repo's python/ on PYTHONPATH; torch + transformers 5.x
are optional (else the peer cells say "n/a: <reason>"). Writes bench/results/<--out>.md.

GPU (H100, about 2 minutes):
    source .gpu/b/env.sh && PYTHONPATH=python:/tmp/site python3 bench/gpu_whisper.py --out gpu_h100_large-v3-turbo
CPU smoke test:
    .venv/bin/python bench/gpu_whisper.py --dims tiny.en --dtype float32 --smoke --out smoke_cpu_tiny
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (loads a fast BLAS before MLX on the CPU)
from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.encoders import MLXAudioEncoder
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep
from mlx_audio_coreml.whisper.logit_filters import ApplyTimestampRules, SuppressBlank, SuppressTokens
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip
from mlx.utils import tree_flatten  # isort: skip

DIMS = {  # n_mels, audio ctx/state/heads/layers, n_vocab, text ctx/state/heads/layers
    "tiny.en": ModelDimensions(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4),
    "base": ModelDimensions(80, 1500, 512, 8, 6, 51865, 448, 512, 8, 6),
    "large-v3-turbo": ModelDimensions(128, 1500, 1280, 20, 32, 51866, 448, 1280, 20, 4),
}
N_FRAMES = 3000  # mel frames per 30 s window
PEAK_TFLOPS, PEAK_TBPS = 800.0, 3.0  # H100 fp16 matrix rate and memory bandwidth, as PERF.md assumes
TARGET_ENCODER_MS, TARGET_DECODER_MS = 4.0, 0.8  # PERF.md: our targets at batch 1
Result = float | str  # milliseconds, or "n/a: <reason>"


def encoder_flops(d: ModelDimensions) -> float:
    """Per window: two convs, then per layer q/k/v/out 8 T w^2, MLP 16 T w^2, QK^T and AV 4 T^2 w."""
    t, w = d.n_audio_ctx, d.n_audio_state
    convs = 2 * (2 * t) * 3 * d.n_mels * w + 2 * t * 3 * w * w
    return convs + d.n_audio_layer * (24 * t * w * w + 4 * t * t * w)


def decoder_bytes(d: ModelDimensions, itemsize: int, cached_tokens: int) -> float:
    """Read per step: self attn 4 w^2, cross q/out 2 w^2, MLP 8 w^2 per layer, the embedding (it is
    also the output projection), and the cross and self K/V caches."""
    w = d.n_text_state
    weights = d.n_vocab * w + d.n_text_layer * 14 * w * w
    return float(itemsize * (weights + d.n_text_layer * 2 * w * (d.n_audio_ctx + cached_tokens)))


def median_ms(measure: Callable[[], float], warmup: int, repeats: int) -> float:
    """`measure` returns one run's milliseconds and syncs the device itself."""
    for _ in range(warmup):
        measure()
    return statistics.median(measure() for _ in range(repeats))


def clock(fn: Callable[[], object], finish: Callable[[object], None]) -> float:
    """Milliseconds of `fn()` until `finish(result)` returns (it waits for the device)."""
    start = time.perf_counter()
    finish(fn())
    return (time.perf_counter() - start) * 1e3


def mlx_done(out: object) -> None:
    mx.eval(out)
    mx.synchronize()


def not_available(exc: BaseException) -> str:
    return f"n/a: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:90]}"


def check_finite(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what}: output has NaN or inf")


def prompt_tokens(d: ModelDimensions) -> list[int]:
    """The product's window start: <|startoftranscript|>, plus <|en|><|transcribe|> if multilingual."""
    eot = 50256 + int(d.n_vocab >= 51865)
    return [eot + 1, eot + 2, d.n_vocab - 1501 - 5] if d.n_vocab >= 51865 else [eot + 1]


def product_filters(d: ModelDimensions, sample_begin: int) -> list:
    """A default transcription's logit filters (ids from Whisper's vocabulary layout)."""
    eot, ts_begin = 50256 + int(d.n_vocab >= 51865), d.n_vocab - 1501
    return [
        SuppressBlank([220, eot], d.n_vocab),
        SuppressTokens([1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, eot + 1], d.n_vocab),
        ApplyTimestampRules(
            eot=eot,
            no_timestamps=ts_begin - 1,
            timestamp_begin=ts_begin,
            n_vocab=d.n_vocab,
            sample_begin=sample_begin,
            max_initial_timestamp_index=50,
        ),
    ]


def build_ours(d: ModelDimensions, dtype: mx.Dtype) -> tuple[Whisper, str]:
    """Our model with random weights, every floating parameter checked to be `dtype`; and its path."""
    model = Whisper(d, dtype)
    mx.eval(model.parameters())
    wrong = [
        name for name, p in tree_flatten(model.parameters()) if mx.issubdtype(p.dtype, mx.floating) and p.dtype != dtype
    ]
    if wrong:
        raise RuntimeError(f"parameters not {dtype}: {wrong[:5]}")
    path = "host math (numpy softmax/GELU, CPU float32)" if host_math.available(dtype) else "pure MLX ops"
    return model, path


def our_encoder(
    model: Whisper, d: ModelDimensions, batch: int, args: argparse.Namespace, path: str
) -> tuple[Result, Result]:
    """(eager, compiled) ms per window of the product's encoder call."""
    encoder = MLXAudioEncoder(model.encoder, d.n_mels)
    mel = mx.random.normal((batch, d.n_mels, N_FRAMES))  # float32, as log_mel_spectrogram gives
    out = encoder.encode(mel)
    check_finite(
        bool(mx.all(mx.isfinite(out)).item()) and out.shape == (batch, d.n_audio_ctx, d.n_audio_state), "our encoder"
    )
    eager = median_ms(lambda: clock(lambda: encoder.encode(mel), mlx_done), args.warmup, args.repeats) / batch
    if path != "pure MLX ops":
        return eager, "n/a: the host-math path evaluates mid-graph"
    try:
        compiled_encode = mx.compile(encoder.encode)
        check_finite(bool(mx.all(mx.isfinite(compiled_encode(mel))).item()), "our compiled encoder")
        return eager, median_ms(
            lambda: clock(lambda: compiled_encode(mel), mlx_done), args.warmup, args.repeats
        ) / batch
    except Exception as exc:  # report, keep measuring the rest
        return eager, not_available(exc)


def our_decoder(model: Whisper, d: ModelDimensions, args: argparse.Namespace) -> tuple[Result, ...]:
    """ms per token at batch 1, prefill excluded: the product loop with the dynamic step and with the
    static compiled step (whisper/gpu_step.py), a plain dynamic step loop, a static step loop."""
    features = mx.random.normal((1, d.n_audio_ctx, d.n_audio_state)).astype(model.dtype)
    prompt, steps = prompt_tokens(d), args.steps
    prefix = mx.array([prompt], dtype=mx.int32)

    def prefill() -> tuple[mx.array, list]:
        logits, cache, _ = model.decoder(prefix, features)
        check_finite(bool(mx.all(mx.isfinite(logits)).item()), "our decoder")
        mx.eval(logits, cache)
        return logits[:, -1, :], cache

    static_step = StaticDecoderStep(model, features)  # one compiled graph for every run
    dynamic_step = DecoderStep(model, features)

    def product_loop(step: Callable = dynamic_step) -> float:
        last, cache = prefill()
        filters = product_filters(d, len(prompt))
        start = time.perf_counter()  # steps + 1 token choices, `steps` decoder calls: EOT -1 never stops it
        tokens, _ = sample_tokens(step, last, cache, prefix, filters, temperature=0.0, eot=-1, n_steps=steps + 1)
        elapsed = (time.perf_counter() - start) * 1e3
        if tokens.shape != (1, len(prompt) + steps + 1):
            raise RuntimeError(f"the product loop made {tokens.shape[1] - len(prompt)} tokens, expected {steps + 1}")
        return elapsed / steps

    def step_loop() -> float:
        last, cache = prefill()
        token = mx.argmax(last, axis=-1).astype(mx.int32)[:, None]  # (1, 1)
        mx.eval(token)
        start = time.perf_counter()
        for _ in range(steps):
            logits, cache, _ = model.decoder(token, features, cache)
            token = mx.argmax(logits[:, -1, :], axis=-1).astype(mx.int32)[:, None]
            mx.eval(token, cache)
            token.item()  # read back, as a loop checking for EOT must
        return (time.perf_counter() - start) * 1e3 / steps

    def static_loop(read_every: int = 32) -> float:
        """Static compiled step, greedy argmax on the device, async eval, a read-back every N tokens."""
        last, cache = prefill()
        token = mx.argmax(last, axis=-1).astype(mx.int32)[:, None]
        mx.eval(token)
        start = time.perf_counter()
        for i in range(steps):
            logits, cache = static_step(token, cache)
            token = mx.argmax(logits, axis=-1).astype(mx.int32)[:, None]
            mx.async_eval(token)
            if (i + 1) % read_every == 0:
                token.item()
        token.item()
        return (time.perf_counter() - start) * 1e3 / steps

    rows: list[Result] = []
    for run in (product_loop, lambda: product_loop(static_step), step_loop, static_loop):
        try:
            rows.append(median_ms(run, args.warmup_decoder, args.repeats_decoder))
        except Exception as exc:  # DECODE's loop may change its signature: say so, measure the rest
            rows.append(not_available(exc))
    return tuple(rows)


def load_peer(d: ModelDimensions, dtype_name: str) -> tuple | str:
    """(torch, WhisperForConditionalGeneration with random weights, device) or why there is none."""
    try:
        import torch
        import transformers
        from transformers import WhisperConfig, WhisperForConditionalGeneration
    except ImportError as exc:
        return f"n/a: {exc.name or exc} not installed"
    transformers.logging.set_verbosity_error()
    w = d.n_audio_state
    config = WhisperConfig(
        vocab_size=d.n_vocab,
        num_mel_bins=d.n_mels,
        d_model=w,
        max_source_positions=d.n_audio_ctx,
        encoder_layers=d.n_audio_layer,
        encoder_attention_heads=d.n_audio_head,
        encoder_ffn_dim=4 * w,
        decoder_layers=d.n_text_layer,
        decoder_attention_heads=d.n_text_head,
        decoder_ffn_dim=4 * w,
        max_target_positions=d.n_text_ctx,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with torch.device(device):
            model = WhisperForConditionalGeneration._from_config(
                config, attn_implementation="sdpa", dtype=getattr(torch, dtype_name)
            )
    except Exception as exc:
        return not_available(exc)
    return torch, model.eval(), device


def peer_encoder(peer: tuple, d: ModelDimensions, batch: int, args: argparse.Namespace) -> Result:
    torch, model, device = peer
    done = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    mel = torch.randn(batch, d.n_mels, N_FRAMES, device=device, dtype=model.dtype)
    encoder = model.model.encoder
    with torch.inference_mode():
        check_finite(bool(torch.isfinite(encoder(input_features=mel).last_hidden_state).all()), "transformers encoder")
        return median_ms(lambda: clock(lambda: encoder(input_features=mel), done), args.warmup, args.repeats) / batch


def peer_decoder(peer: tuple, d: ModelDimensions, args: argparse.Namespace) -> tuple[Result, Result]:
    """(generate, hand-stepped loop) ms per token at batch 1, prefill excluded."""
    torch, model, device = peer
    from transformers import GenerationMixin
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    done = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    features = torch.randn(1, d.n_audio_ctx, d.n_audio_state, device=device, dtype=model.dtype)
    prefix, steps, decoder = torch.tensor([prompt_tokens(d)], device=device), args.steps, model.model.decoder
    cache_arg = (
        "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
    )  # renamed in 5.x

    def next_token(tokens, cache):  # the cache object is updated in place
        hidden = decoder(
            input_ids=tokens, encoder_hidden_states=features, use_cache=True, **{cache_arg: cache}
        ).last_hidden_state
        return model.proj_out(hidden[:, -1:]).argmax(-1)  # (1, 1)

    def hand_loop() -> float:
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        token = next_token(prefix, cache)
        token.item()
        start = time.perf_counter()
        for _ in range(steps):
            token = next_token(token, cache)
            token.item()  # read back (and sync), as a loop checking for EOT must
        elapsed = (time.perf_counter() - start) * 1e3
        if cache.get_seq_length() != prefix.shape[1] + steps:
            raise RuntimeError(
                f"transformers' cache holds {cache.get_seq_length()} tokens, expected {prefix.shape[1] + steps}"
            )
        return elapsed / steps

    def generate(n: int) -> None:
        out = GenerationMixin.generate(
            model,
            encoder_outputs=BaseModelOutput(last_hidden_state=features),
            decoder_input_ids=prefix,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            num_beams=1,
        )
        if out.shape[1] != prefix.shape[1] + n:
            raise RuntimeError(f"generate made {out.shape[1] - prefix.shape[1]} tokens, expected {n}")

    with torch.inference_mode():
        loop = median_ms(hand_loop, args.warmup_decoder, args.repeats_decoder)
        try:
            full, one = (
                median_ms(lambda n=n: clock(lambda: generate(n), done), args.warmup_decoder, args.repeats_decoder)
                for n in (steps, 1)
            )
            gen: Result = (full - one) / (steps - 1)
        except Exception as exc:
            gen = not_available(exc)
    return gen, loop


def measure_all(model: Whisper, path: str, peer: tuple | str, args: argparse.Namespace) -> list[tuple]:
    """Table rows (label, ours, peer, kind, target): the encoder at each batch, then the decoder."""
    d, rows = DIMS[args.dims], []
    for batch in (int(b) for b in args.batches.split(",")):
        eager, compiled = our_encoder(model, d, batch, args, path)
        try:
            peer_ms = peer if isinstance(peer, str) else peer_encoder(peer, d, batch, args)
        except Exception as exc:  # report, keep measuring the rest
            peer_ms = not_available(exc)
        target = TARGET_ENCODER_MS if batch == 1 else None
        rows.append((f"encoder b{batch} per window: MLXAudioEncoder eager / sdpa", eager, peer_ms, "encoder", target))
        rows.append((f"encoder b{batch} per window: mx.compile'd / sdpa", compiled, peer_ms, "encoder", target))
    mx.clear_cache()  # hand MLX's cached GPU memory back before the peer's decoder allocates
    product, product_static, step_loop, static_loop = our_decoder(model, d, args)
    try:
        peer_gen, peer_loop = (peer, peer) if isinstance(peer, str) else peer_decoder(peer, d, args)
    except Exception as exc:  # report, keep our numbers
        peer_gen = peer_loop = not_available(exc)
    rows.append(
        (
            "decoder b1 per token: product loop (sample_tokens + filters) / generate()",
            product,
            peer_gen,
            "decoder",
            TARGET_DECODER_MS,
        )
    )
    rows.append(
        (
            "decoder b1 per token: step loop, eval + read back / hand loop with cache",
            step_loop,
            peer_loop,
            "decoder",
            TARGET_DECODER_MS,
        )
    )
    rows.append(
        (
            "decoder b1 per token: product loop with gpu_step.StaticDecoderStep / generate()",
            product_static,
            peer_gen,
            "decoder",
            TARGET_DECODER_MS,
        )
    )
    rows.append(
        (
            "decoder b1 per token: static compiled step, argmax on device, read back / 32 / hand loop",
            static_loop,
            peer_loop,
            "decoder",
            TARGET_DECODER_MS,
        )
    )
    return rows


def cell(value: Result, work: float, unit: str) -> str:
    """'12.345 (187 TFLOP/s)': milliseconds and the rate they imply."""
    if isinstance(value, str):
        return value
    return f"{value:.3f} ({work / value / (1e9 if unit == 'TFLOP/s' else 1e6):.3g} {unit})"


def table(rows: list[tuple], work: dict[str, tuple[float, float, str]]) -> list[str]:
    """`work[kind]` = (FLOPs or bytes, H100 floor ms, rate unit)."""
    lines = ["| measure: ours / peer | ours ms | peer ms | ours / peer | H100 floor ms | our target ms |"]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for label, ours, peer, kind, target in rows:
        amount, floor, unit = work[kind]
        ratio = f"{ours / peer:.2f}" if isinstance(ours, float) and isinstance(peer, float) else "-"
        goal = f"<= {target:g}" if target else "-"
        lines.append(
            f"| {label} | {cell(ours, amount, unit)} | {cell(peer, amount, unit)} | {ratio} | {floor:.3f} | {goal} |"
        )
    return lines


def environment(peer: tuple | str) -> list[str]:
    """Device and version lines for the report."""
    info = mx.device_info() if hasattr(mx, "device_info") else {}
    devices = f"MLX {mx.default_device()} ({info.get('device_name', '?')})"
    if not isinstance(peer, str):
        torch, model, device = peer
        name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        devices += f"; torch {device} ({name}), attn_implementation={model.config._attn_implementation}"
    found = [f"{m} {getattr(sys.modules.get(m), '__version__', 'absent')}" for m in ("torch", "transformers")]
    versions = [f"python {platform.python_version()}", f"mlx {mx.__version__}", f"numpy {np.__version__}", *found]
    return [f"- device: {devices}", f"- versions: {', '.join(versions)}"]


def write_result(name: str, text: str) -> Path:
    folder = Path(__file__).resolve().parent / "results"
    folder.mkdir(exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    target = folder / (name if name.endswith(".md") else name + ".md")
    os.replace(temp, target)  # never a half-written result
    return target


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", choices=sorted(DIMS), default="large-v3-turbo")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    parser.add_argument("--batches", help="encoder batch sizes, comma-separated (default 1,8; smoke 1)")
    parser.add_argument("--steps", type=int, default=100, help="decoder tokens per timed run")
    parser.add_argument("--repeats", type=int, default=10, help="timed encoder runs (decoder: half)")
    parser.add_argument("--smoke", action="store_true", help="1 warm-up, 1 timed run, 4 steps: proves the script runs")
    parser.add_argument("--no-peer", action="store_true", help="skip PyTorch + transformers")
    parser.add_argument("--out", default="gpu_whisper", help="result name: bench/results/<out>.md")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.repeats = 4, 1
    args.batches = args.batches or ("1" if args.smoke else "1,8")
    args.warmup, args.warmup_decoder = (1, 1) if args.smoke else (3, 2)
    args.repeats_decoder = max(1, args.repeats // 2)
    if not 2 <= args.steps <= DIMS[args.dims].n_text_ctx - 8:
        parser.error(f"--steps must be between 2 and {DIMS[args.dims].n_text_ctx - 8}")
    return args


def main() -> int:
    args = parse_args()
    d, dtype = DIMS[args.dims], getattr(mx, args.dtype)
    model, path = build_ours(d, dtype)
    peer = "n/a: --no-peer" if args.no_peer else load_peer(d, args.dtype)
    flops, step_bytes = encoder_flops(d), decoder_bytes(d, dtype.size, len(prompt_tokens(d)) + args.steps // 2)
    work = {
        "encoder": (flops, flops / (PEAK_TFLOPS * 1e9), "TFLOP/s"),
        "decoder": (step_bytes, step_bytes / (PEAK_TBPS * 1e9), "GB/s"),
    }
    rows = measure_all(model, path, peer, args)
    header = [
        f"# Whisper {args.dims} ({args.dtype}, random weights): our MLX vs PyTorch + transformers",
        "",
        *environment(peer),
        f"- our encoder path: {path}; all weights {args.dtype} (checked); the product runs the encoder eagerly",
        f"- peer: {peer if isinstance(peer, str) else 'transformers WhisperForConditionalGeneration, random init'}",
        f"- timing: median of {args.repeats} (decoder {args.repeats_decoder}) after warm-up; "
        f"decoder {args.steps} tokens per run after a {len(prompt_tokens(d))}-token prefill",
        f"- floors at PERF.md's H100 rates: encoder {flops / 1e12:.2f} TFLOP/window at {PEAK_TFLOPS:g} TFLOP/s; "
        f"decoder {step_bytes / 1e6:.0f} MB/token at {PEAK_TBPS:g} TB/s",
        "",
    ]
    text = "\n".join(header + table(rows, work)) + "\n"
    print(text)
    print(f"written to {write_result(args.out, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
