"""How low the Whisper large-v3-turbo encoder can go at batch 1 on this card: kernel-time bounds, float16 and FP8.

Issue #13 asks for <= 4 ms per 30 s window at batch 1. One run on one card prints:
(1) each product of a layer at M = 1500 rows (and 1536, padded), float16 through cuBLAS (torch F.linear)
    and FP8 e4m3 through cuBLASLt (torch._scaled_mm, per-tensor scales, float16 out), each timed as a
    CUDA graph of --calls back-to-back calls on warm weights: kernel time with no launch gaps (optimistic:
    in the encoder each layer's weights come from memory, not L2);
(2) the per-tensor FP8 cast of a product's input (amax, scale, cast) that FP8 products add;
(3) attention (1, 20, 1500, 64) through each of torch's sdpa back ends;
(4) a device-to-device copy, for the card's practical memory rate;
(5) the product's encoder (MLX, gpu_encoder.DEFAULT) at batch 1, same card and run;
(6) bounds per window: 32 layers x (each product at its best measured time + the best attention) + the
    passes no product epilogue can absorb (two add + layer norm, the GELU) at the copy's rate;
    and the products as if they ran at the 4096^3 rate.
MLX 0.32.4 runs FP8 products only on sm_100 and later (mlx/backend/cuda/quantized), not on an H100:
the FP8 rows say what the goal would need, not what the product can run.
    source .gpu/b/env.sh && python3 bench/gpu_encoder_bound.py
CPU smoke test (MLX only, tiny shapes): .venv/bin/python bench/gpu_encoder_bound.py --tiny
"""

# ruff: noqa: B023  (every closure over a loop variable is timed and dropped within its own iteration)

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import gpu_common as gc
from mlx_audio_coreml.whisper import gpu_encoder as ge
from mlx_audio_coreml.whisper.model import WhisperEncoder

import mlx.core as mx  # isort: skip

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # the torch rows then say n/a
    torch = None  # type: ignore[assignment]

Cell = float | str
E4M3_MAX = 448.0


def cuda_torch() -> bool:
    return torch is not None and torch.cuda.is_available()


def attempt(measure: Callable[[], float]) -> Cell:
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001  (one failing row must not lose the table)
        return f"n/a: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:80]}"


def graph_ms(fn: Callable[[], object], calls: int, repeats: int) -> float:
    """Kernel ms per call: `calls` calls captured in one CUDA graph, replayed `repeats` times (median)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # cuBLAS picks its algorithm and workspace before the capture
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    samples = []
    for _ in range(repeats):
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(begin.elapsed_time(end) / calls)
    return statistics.median(samples)


def fp8(x: object) -> tuple[object, object]:
    """Per-tensor e4m3 cast: (values, scale) with values * scale ~ x."""
    scale = (x.abs().amax().float() / E4M3_MAX).clamp(min=1e-12)
    return (x / scale).to(torch.float8_e4m3fn), scale


def product_rows(args: argparse.Namespace, width: int) -> list[tuple[str, float, Cell, Cell, Cell]]:
    """(name, flop, fp16 ms, fp8 ms, fp8 input cast ms) per product and row count."""
    shapes = [("q/k/v fused", width, 3 * width), ("out projection", width, width), ("fc1", width, 4 * width),
              ("fc2", 4 * width, width)]  # fmt: skip
    rows = []
    for m in (1500, 1536):
        for name, k, n in shapes:
            x = torch.randn(m, k, device="cuda", dtype=torch.float16)
            w = torch.randn(n, k, device="cuda", dtype=torch.float16) * k**-0.5
            b = torch.zeros(n, device="cuda", dtype=torch.float16)
            xq, sx = fp8(x)
            wq, sw = fp8(w)  # (n, k) row-major: its .t() is the column-major (k, n) cuBLASLt wants

            def scaled() -> object:
                return torch._scaled_mm(xq, wq.t(), scale_a=sx, scale_b=sw, bias=b, out_dtype=torch.float16)

            half = attempt(lambda: graph_ms(lambda: F.linear(x, w, b), args.calls, args.repeats))
            eight = attempt(lambda: graph_ms(scaled, args.calls, args.repeats))
            cast = attempt(lambda: graph_ms(lambda: fp8(x), args.calls, args.repeats))
            rows.append((f"{name} ({m}x{k}) @ ({k}x{n})", 2.0 * m * k * n, half, eight, cast))
    return rows


def attention_rows(args: argparse.Namespace, heads: int, ctx: int, width: int) -> list[tuple[str, Cell]]:
    q, k, v = (torch.randn(1, heads, ctx, width // heads, device="cuda", dtype=torch.float16) for _ in range(3))
    rows = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):

        def run(backend: SDPBackend = backend) -> object:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)

        rows.append((f"torch sdpa {backend.name.lower()} (1, {heads}, {ctx}, {width // heads})",
                     attempt(lambda run=run: graph_ms(run, args.calls, args.repeats))))  # fmt: skip
    return rows


def copy_gb_s(args: argparse.Namespace) -> Cell:
    src = torch.empty(128 << 20, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    ms = attempt(lambda: graph_ms(lambda: dst.copy_(src), args.calls, args.repeats))
    return ms if isinstance(ms, str) else 2 * src.numel() / ms / 1e6


def shipped_ms(args: argparse.Namespace, dims: tuple[int, int, int, int, int]) -> tuple[float, float]:
    """The product's GPU encoder at batch 1: median ms per window over --repeats calls, and its max |diff|
    from the module's own path."""
    n_mels, ctx, width, heads, layers = dims
    mx.random.seed(0)
    encoder = WhisperEncoder(n_mels, ctx, width, heads, layers)
    encoder.set_dtype(mx.float16)
    encoder._positional_embedding = encoder._positional_embedding.astype(mx.float16)
    mel = mx.random.normal((1, 2 * ctx, n_mels)).astype(mx.float16)
    mx.eval(encoder.parameters(), mel)
    with ge.disabled():
        want = encoder(mel).astype(mx.float32)
    prepared = ge.for_encoder(encoder)
    assert prepared is not None
    diff = float(mx.max(mx.abs(prepared(mel).astype(mx.float32) - want)))
    samples = []
    for i in range(5 + args.repeats):
        mx.synchronize()
        start = time.perf_counter()
        mx.eval(prepared(mel))
        mx.synchronize()
        if i >= 5:
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), diff


def render(args: argparse.Namespace, dims: tuple[int, int, int, int, int]) -> str:
    n_mels, ctx, width, heads, layers = dims
    ours, diff = shipped_ms(args, dims)
    lines = [f"# Encoder bound at batch 1 ({layers} layers, D {width}, {ctx} positions), float16 and FP8", "",
             *gc.environment("no transformers model"), f"- load average before: {os.getloadavg()[0]:.2f}", "",
             f"Product's encoder (MLX, gpu_encoder.DEFAULT), batch 1: **{ours:.3f} ms** a window "
             f"(median of {args.repeats}; max |diff| from the module's path {diff:.3g})", ""]  # fmt: skip
    if not cuda_torch():
        return "\n".join([*lines, "torch with CUDA absent: no bound rows."])
    products = product_rows(args, width)
    lines += ["| product, kernel time per call | float16 us | TFLOP/s | FP8 us | TFLOP/s | FP8 input cast us |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, flop, half, eight, cast in products:
        lines.append(f"| {name} | {_us(half, flop)} | {_us(eight, flop)} | {_us(cast, 0.0)} |")
    attn = attention_rows(args, heads, ctx, width)
    lines += ["", "| attention, kernel time per call | us |", "| --- | --- |"]
    lines += [f"| {name} | {_us(ms, 0.0).split(' |')[0]} |" for name, ms in attn]
    bandwidth = copy_gb_s(args)
    lines += ["", f"Device copy: {bandwidth if isinstance(bandwidth, str) else f'{bandwidth:.0f} GB/s'}", ""]
    lines += bounds(products, attn, bandwidth, ctx, width, layers, ours)
    return "\n".join(lines)


def _us(ms: Cell, flop: float) -> str:
    if isinstance(ms, str):
        return f"{ms} | -" if flop else ms
    return f"{ms * 1e3:.1f} | {flop / ms / 1e9:.0f}" if flop else f"{ms * 1e3:.1f}"


def bounds(products: list, attn: list, bandwidth: Cell, ctx: int, width: int, layers: int, ours: float) -> list[str]:
    """Per-window sums: the best measured time of each product (either row count) + the best attention
    + the unavoidable elementwise passes (two add + layer norms: read x, y, write x, h; the GELU's read
    and write, unless fused into fc1) at the copy's rate."""
    best_attn = min((ms for _, ms in attn if isinstance(ms, float)), default=None)
    if best_attn is None or isinstance(bandwidth, str):
        return ["No bound: attention or the copy failed."]
    passes = (2 * 4 * ctx * width + 2 * ctx * 4 * width) * 2  # bytes a layer, float16
    elementwise = layers * passes / (bandwidth * 1e6)
    gelu_share = layers * (2 * ctx * 4 * width * 2) / (bandwidth * 1e6)
    lines = ["| bound per window (kernel time, no gaps) | ms |", "| --- | --- |"]
    for label, column in (("float16 (cuBLAS)", 2), ("FP8 e4m3 (cuBLASLt), casts not counted", 3)):
        per_layer = [min((r[column] for r in products if r[0].startswith(n) and isinstance(r[column], float)),
                         default=float("nan")) for n in ("q/k/v", "out", "fc1", "fc2")]  # fmt: skip
        gemm = layers * sum(per_layer)
        total = gemm + layers * best_attn + elementwise - gelu_share
        lines.append(f"| {label}: products {gemm:.2f} + attention {layers * best_attn:.2f} + add/LN passes "
                     f"{elementwise - gelu_share:.2f} (GELU fused into fc1) | **{total:.2f}** |")  # fmt: skip
    lines.append(f"| the GELU as its own pass adds | {gelu_share:.2f} |")
    lines.append(f"| the product's encoder, measured above | {ours:.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per CUDA graph")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tiny", action="store_true", help="small shapes, MLX only (a CPU smoke test)")
    args = parser.parse_args()
    dims = (16, 50, 64, 4, 2) if args.tiny else (128, 1500, 1280, 20, 32)
    text = render(args, dims)
    print(text)
    if not args.tiny:
        gc.write_result(f"gpu_encoder_bound_{gc.card_name().split()[1].lower()}", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
