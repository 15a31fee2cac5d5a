"""Where the Whisper encoder's time goes on a GPU: its products, attention, one layer, the whole, parts vs whole.

Whisper large-v3-turbo encoder shapes (32 layers, D 1280, 20 heads, 1500 positions), random
weights, float16, MLX against PyTorch (cuBLAS, flash sdpa) on the same card, in one table:
(a) each product the encoder runs (fused q/k/v, one projection, out, fc1, fc2, the convs as
    products), at batch 1 and 8, MLX as the product calls it (addmm with W.T) and with a
    pre-transposed weight, torch F.linear; a 4096^3 product for the card's rate;
(b) attention (B, 20, 1500, 64): mx.fast sdpa, explicit MLX, torch sdpa;
(c) one layer (product block, its attention and MLP halves, gpu_encoder's layer), the conv front
    end, layer norm and GELU alone, eager and compiled;
(d) the whole encoder: the product's call as shipped (MLXAudioEncoder.encode: gpu_encoder on CUDA),
    the module's own path (gpu_encoder.disabled()) eager and compiled, gpu_encoder.py's candidate
    layouts, and the same network in torch (eager and a CUDA graph);
(e) the sum of the parts against the whole, and the products alone summed at each library's rate;
(f) the whole at batch 1 in child processes under other MLX CUDA-graph settings (ops per graph);
(k) gpu_encoder_kernels' fused add + layer norm and GELU against MLX's ops.
"host dispatch only" rows: ms until mx.async_eval returns (the host's share of the time).
Medians of --repeats after warm-up; short ops are run --inner times per timed region, each region
ends in mx.eval + mx.synchronize (torch.cuda.synchronize). Each row fails alone ("n/a: ...").

GPU (H100, ~2-3 minutes):
    source .gpu/b/env.sh && PYTHONPATH=python:/tmp/site python3 bench/gpu_encoder_probe.py
CPU smoke test (seconds):
    .venv/bin/python bench/gpu_encoder_probe.py --tiny
"""

# ruff: noqa: B023  (every lambda over a loop variable is timed and dropped within its own iteration)

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import mlx_audio_coreml  # noqa: F401  (loads a fast BLAS before MLX on the CPU)
from gpu_encoder_timing import Probe, attempt, dispatch_ms, in_rounds, render
from mlx_audio_coreml.encoders import MLXAudioEncoder
from mlx_audio_coreml.whisper import gpu_encoder as ge
from mlx_audio_coreml.whisper import gpu_encoder_kernels as gk
from mlx_audio_coreml.whisper.model import WhisperEncoder

import mlx.core as mx  # isort: skip
import mlx.nn as nn  # isort: skip

try:
    import torch
    import torch.nn.functional as F

    from gpu_encoder_peer import torch_diff, torch_encoder, torch_graph, torch_tensor, within, within_call
except ImportError:  # the torch cells then say n/a
    torch = None  # type: ignore[assignment]

Opts = ge.GpuEncoderOptions
VARIANTS = {  # name -> GpuEncoderOptions; run 1 (20:00 UTC) measured the layouts, run 2 the early commits
    "fused/whole": Opts(compile="whole"),
    "fused/whole+commit1": Opts(compile="whole", commit_every=1),
    "fused/whole+commit2": Opts(compile="whole", commit_every=2),
    "fused/whole+commit4": Opts(compile="whole", commit_every=4),
    "fused/whole+commit8": Opts(compile="whole", commit_every=8),
    "fused/layer+commit2": Opts(compile="layer", commit_every=2),
    "fused/none+commit2": Opts(compile="none", commit_every=2),
    "fused/whole+commit2+add-LN kernel": Opts(compile="whole", commit_every=2, add_ln=True),
    "fused/whole+commit2+residual as C": Opts(compile="whole", commit_every=2, residual="gemm"),
    "fused/whole+commit2+GELU kernel": Opts(compile="whole", commit_every=2, gelu_kernel=True),
    "fused/whole+commit2+add-LN+GELU kernels": Opts(compile="whole", commit_every=2, add_ln=True, gelu_kernel=True),
    "im2col+W^T+residual C/whole+commit2": Opts(
        front="im2col", compile="whole", commit_every=2, pretranspose=True, residual="gemm"
    ),
    # run 1's other layouts, by name: --variants
    "fused/sdpa/im2col/whole": Opts(front="im2col"),
    "fused/explicit/conv/whole": Opts(attention="explicit"),
    "apart/sdpa/conv/whole": Opts(fuse_qkv=False),
    "fused/sdpa/conv/layer": Opts(compile="layer"),
    "fused/sdpa/conv/none": Opts(compile="none"),
    "fused/sdpa/conv/whole+W^T stored": Opts(pretranspose=True),
    "fused/sdpa/im2col/whole+both": Opts(front="im2col", pretranspose=True, residual="gemm"),
    "fused/sdpa/conv/layer+add-LN kernel": Opts(compile="layer", add_ln=True),
}
RUN2 = [name for name in VARIANTS if ("commit" in name or name == "fused/whole") and "commit8" not in name
        and "none" not in name and not name.startswith("im2col")]  # fmt: skip


def dims(args: argparse.Namespace) -> tuple[int, int, int, int, int]:
    """n_mels, positions, width, heads, layers."""
    return (16, 50, 64, 4, 2) if args.tiny else (128, 1500, 1280, 20, 32)


def build_encoder(args: argparse.Namespace, dtype: mx.Dtype) -> WhisperEncoder:
    n_mels, ctx, width, heads, layers = dims(args)
    mx.random.seed(0)
    encoder = WhisperEncoder(n_mels, ctx, width, heads, layers)
    encoder.set_dtype(dtype)
    encoder._positional_embedding = encoder._positional_embedding.astype(dtype)
    mx.eval(encoder.parameters())
    return encoder


def gemms(p: Probe, dtype: mx.Dtype) -> None:
    """(a): every product shape of the encoder, batch 1 and 8, plus 4096^3."""
    n_mels, ctx, w, _, _ = dims(p.args)
    shapes = [("qkv fused", w, 3 * w), ("q|k|v|out proj", w, w), ("fc1", w, 4 * w), ("fc2", 4 * w, w),
              ("conv2 im2col", 3 * w, w), ("conv1 im2col", 3 * n_mels, w)]  # fmt: skip
    big = 256 if p.args.tiny else 4096
    cases = [(f"{big}^3 reference", big, big, big, "")]
    for batch in p.args.batches:
        for name, k, n in shapes:
            m = batch * ctx * (2 if name.startswith("conv1") else 1)
            cases.append((f"{name} b{batch}: ({m}x{k}) @ ({k}x{n})", m, k, n, f"{name}:b{batch}"))
    for label, m, k, n, key in cases:
        x, wt = mx.random.normal((m, k)).astype(dtype), (mx.random.normal((n, k)) * k**-0.5).astype(dtype)
        b, w_in = mx.zeros((n,), dtype), mx.contiguous(wt.T)
        mx.eval(x, wt, b, w_in)
        flop = 2.0 * m * k * n
        tx, tw, tb = (torch_tensor(a) for a in (x, wt, b)) if torch is not None else (None, None, None)
        p.row("a gemm", f"{label} addmm(b, x, W.T)", p.mlx(lambda: mx.addmm(b, x, wt.T)),
              p.torch(lambda: F.linear(tx, tw, tb)), flop, key)  # fmt: skip
        p.row("a gemm", f"{label} x @ W_in (contiguous, no bias)", p.mlx(lambda: x @ w_in), None, flop, key + "+t")


def attention(p: Probe, dtype: mx.Dtype) -> None:
    """(b): fast sdpa vs explicit vs torch's sdpa at the encoder's shape."""
    _, ctx, w, heads, _ = dims(p.args)
    for batch in p.args.batches:
        q, k, v = (mx.random.normal((batch, heads, ctx, w // heads)).astype(dtype) for _ in range(3))
        mx.eval(q, k, v)
        flop = 4.0 * batch * heads * ctx * ctx * (w // heads)
        tq, tk, tv = (torch_tensor(a) for a in (q, k, v)) if torch is not None else (None, None, None)
        shape = f"({batch}, {heads}, {ctx}, {w // heads})"
        p.row("b attn", f"mx.fast sdpa {shape} / torch sdpa", p.mlx(lambda: ge.attend(q, k, v, "sdpa")),
              p.torch(lambda: F.scaled_dot_product_attention(tq, tk, tv)), flop, f"sdpa:b{batch}")  # fmt: skip
        p.row("b attn", f"explicit QK^T, softmax, AV {shape}", p.mlx(lambda: ge.attend(q, k, v, "explicit")),
              None, flop, f"explicit:b{batch}")  # fmt: skip


def kernels(p: Probe, dtype: mx.Dtype) -> None:
    """(k): gpu_encoder_kernels' fused add + layer norm and GELU against MLX's ops (compiled), with the
    largest difference from MLX's result."""
    _, ctx, w, _, _ = dims(p.args)
    for batch in p.args.batches:
        x, y, hidden = (
            mx.random.normal(s).astype(dtype) for s in ((batch, ctx, w), (batch, ctx, w), (batch, ctx, 4 * w))
        )
        b, g, beta = (mx.random.normal((w,)).astype(dtype) for _ in range(3))
        mx.eval(x, y, hidden, b, g, beta)
        plain = mx.compile(lambda: (x + (y + b), mx.fast.layer_norm(x + (y + b), g, beta, 1e-5)))
        fused = lambda: gk.add_layer_norm(x, y, b, g, beta)  # noqa: E731
        err = attempt(lambda: max(_diff(a, c) for a, c in zip(fused(), plain(), strict=True)))
        p.row(
            "k kernels",
            f"add + bias + layer norm b{batch}: MLX compiled / ours (max |diff| {err})",
            p.mlx(plain),
            None,
            0.0,
        )
        p.row("k kernels", f"  ours: gpu_encoder_kernels.add_layer_norm b{batch}", p.mlx(fused), None, 0.0)
        err = attempt(lambda: _diff(gk.gelu(hidden), nn.gelu(hidden)))
        p.row(
            "k kernels",
            f"GELU (B, T, 4D) b{batch}: nn.gelu (max |diff| to ours {err})",
            p.mlx(lambda: nn.gelu(hidden)),
            None,
            0.0,
        )
        p.row("k kernels", f"  ours: gpu_encoder_kernels.gelu b{batch}", p.mlx(lambda: gk.gelu(hidden)), None, 0.0)


def _diff(a: mx.array, b: mx.array) -> float:
    return float(mx.max(mx.abs(a.astype(mx.float32) - b.astype(mx.float32))))


def layer_flop(args: argparse.Namespace, batch: int) -> float:
    _, t, w, _, _ = dims(args)
    return batch * (24.0 * t * w * w + 4.0 * t * t * w)


def front_flop(args: argparse.Namespace, batch: int) -> float:
    n_mels, t, w, _, _ = dims(args)
    return batch * (2.0 * (2 * t) * 3 * n_mels * w + 2.0 * t * 3 * w * w)


def parts(p: Probe, encoder: WhisperEncoder, dtype: mx.Dtype) -> None:
    """(c): one layer, its halves, the front end, layer norm and GELU; eager and compiled."""
    n_mels, ctx, w, heads, _ = dims(p.args)
    block = encoder.blocks[0]
    fused = ge.layer_weights(block, True).flat()
    im2col = ge.GpuEncoder(encoder, ge.GpuEncoderOptions(front="im2col", compile="none")).im2col
    for batch in p.args.batches:
        x = mx.random.normal((batch, ctx, w)).astype(dtype)
        mel = mx.random.normal((batch, 2 * ctx, n_mels)).astype(dtype)
        hidden = mx.random.normal((batch, ctx, 4 * w)).astype(dtype)
        other = mx.random.normal((batch, ctx, w)).astype(dtype)
        mx.eval(x, mel, hidden, other)
        half = layer_flop(p.args, batch) / 2
        fns: list[tuple[str, Callable[[], mx.array], float]] = [
            ("product block.encode", lambda: block.encode(x), layer_flop(p.args, batch)),
            ("product attention half", lambda: x + block.attn.encode_attend(block.attn_ln(x), False), half),
            ("product MLP half", lambda: x + block._mlp(x), half),
            ("gpu_encoder layer (fused qkv, sdpa)", lambda: ge.encoder_layer(x, fused, heads, ge.DEFAULT),
             layer_flop(p.args, batch)),
            ("front end conv1d x2 + gelu + pos", lambda: ge.front_end(mel, encoder, None), front_flop(p.args, batch)),
            ("front end as im2col products", lambda: ge.front_end(mel, encoder, im2col), front_flop(p.args, batch)),
            ("layer norm (B, T, D)", lambda: block.attn_ln(x), 0.0),
            ("gelu (B, T, 4D)", lambda: nn.gelu(hidden), 0.0),
            ("residual add (B, T, D)", lambda: x + other, 0.0),
        ]  # fmt: skip
        for name, fn, flop in fns:
            key = f"{name}:b{batch}"
            p.row("c parts", f"{name} b{batch} eager", p.mlx(fn), None, flop, key + ":eager")
            compiled = mx.compile(fn)
            p.row("c parts", f"{name} b{batch} compiled", p.mlx(compiled), None, flop, key + ":compiled")


def whole(p: Probe, encoder: WhisperEncoder, dtype: mx.Dtype) -> None:
    """(d): the product's encoder, the candidate layouts, torch; per 30 s window."""
    n_mels, ctx, _, heads, _ = dims(p.args)
    product = MLXAudioEncoder(encoder, n_mels, 2 * ctx)
    compiled_product = mx.compile(product.encode)
    run_torch = torch_encoder(encoder, heads) if torch is not None and not p.args.no_torch else None
    candidates = {name: ge.GpuEncoder(encoder, VARIANTS[name]) for name in p.args.variants}
    for batch in p.args.batches:
        mel_cf = mx.random.normal((batch, n_mels, 2 * ctx)).astype(dtype)  # the seed's (B, mels, frames)
        mel = mx.contiguous(mel_cf.transpose(0, 2, 1))
        mx.eval(mel_cf, mel)
        want = off(lambda: encoder(mel)).astype(mx.float32)  # the module's own path
        flop = front_flop(p.args, batch) + len(encoder.blocks) * layer_flop(p.args, batch)
        per = 1.0 / batch

        def scaled(fn: Callable[[], float] | None) -> Callable[[], float] | None:
            return None if fn is None else lambda: fn() * per

        tmel = torch_tensor(mel) if run_torch is not None else None
        infer = torch.inference_mode if torch is not None else None
        peer = p.torch(lambda: run_torch(tmel), inner=1) if run_torch is not None else None
        peer_err = attempt(lambda: torch_diff(run_torch, tmel, want)) if run_torch is not None else "-"
        shipped = attempt(lambda: float(mx.max(mx.abs(product.encode(mel_cf).astype(mx.float32) - want))))
        p.row("d whole", f"product as shipped: MLXAudioEncoder.encode b{batch} (max |diff| {shipped})",
              scaled(p.mlx(lambda: product.encode(mel_cf), inner=1)), None, flop * per, f"shipped:b{batch}")  # fmt: skip
        p.row("d whole", f"  host dispatch only of the above b{batch}",
              scaled(lambda: dispatch_ms(lambda: product.encode(mel_cf), p.args)), None, 0.0)  # fmt: skip
        p.row("d whole", f"module path eager b{batch} / torch eager (torch max |diff| {peer_err})", scaled(p.mlx(
            lambda: off(lambda: product.encode(mel_cf)), inner=1)), scaled(within(infer, peer)), flop * per, f"eager:b{batch}")  # fmt: skip
        graph = (
            attempt(lambda: within_call(infer, lambda: torch_graph(run_torch, tmel))) if run_torch and _cuda() else "-"
        )
        peer_graph = p.torch(graph, inner=1) if callable(graph) else None
        if isinstance(graph, str) and graph.startswith("n/a"):  # show why the capture failed
            peer_graph = lambda: graph  # type: ignore[assignment,return-value]  # noqa: E731
        p.row("d whole", f"module path mx.compile'd b{batch} / torch CUDA graph", scaled(p.mlx(
            lambda: off(lambda: compiled_product(mel_cf)), inner=1)), scaled(peer_graph), flop * per, f"compiled:b{batch}")  # fmt: skip
        p.row("d whole", f"  host dispatch only of the above (async_eval returns) b{batch}",
              scaled(lambda: dispatch_ms(lambda: off(lambda: compiled_product(mel_cf)), p.args)), None, 0.0)  # fmt: skip
        fns = {f"gpu_encoder {name}": (lambda c=c: c(mel)) for name, c in candidates.items()}
        if p.args.rounds > 1:  # the before/after pair in the same interleaved rounds
            fns["[shipped] MLXAudioEncoder.encode"] = lambda: product.encode(mel_cf)
            fns["[before] module path, mx.compile'd"] = lambda: off(lambda: compiled_product(mel_cf))
        rounds = in_rounds(p, fns)
        for name, fn in fns.items():
            err = attempt(lambda: float(mx.max(mx.abs(fn().astype(mx.float32) - want))))
            times = rounds[name]
            spread = f"; rounds {'/'.join(f'{t / batch:.3f}' for t in times)}" if len(times) > 1 else ""
            what = f"{name} b{batch} (max |diff| {err if isinstance(err, str) else f'{err:.3g}'}{spread})"
            cell = statistics.median(times) if times else None
            p.row("d whole", what, scaled(None if cell is None else lambda: cell), None, flop * per, f"{name}:b{batch}")
            if name.startswith("gpu_encoder"):
                p.row("d whole", f"  host dispatch only of the above b{batch}",
                      scaled(lambda: dispatch_ms(fn, p.args)), None, 0.0)  # fmt: skip


def off(fn: Callable[[], mx.array]) -> mx.array:
    """`fn()` on the module's own path (gpu_encoder's hook off), as the product ran before it."""
    with ge.disabled():
        return fn()


ENV_SWEEP = [  # MLX's CUDA graph batching, read once per process (mlx/backend/cuda/device.cpp; H100 default 100 ops, 1000 MB)
    {},  # the defaults, in a child like the others (a control)
    {"MLX_MAX_OPS_PER_BUFFER": "20"},
    {"MLX_MAX_OPS_PER_BUFFER": "10"},
    {"MLX_USE_CUDA_GRAPHS": "0"},
]


def env_sweep(p: Probe) -> None:
    """(f): the whole encoder at batch 1 in child processes under each MLX CUDA graph setting."""
    for setting in ENV_SWEEP:
        if p.over_budget():
            p.raw.append("| f env | skipped: past --budget-s | - | - | - | - |")
            break
        label = " ".join(f"{k}={v}" for k, v in setting.items()) or "MLX defaults"
        command = [sys.executable, __file__, "--sections", "d", "--batches", "1", "--no-torch", "--repeats", "10",
                   "--variants", p.args.sweep_variant] + (["--tiny"] if p.args.tiny else [])  # fmt: skip
        try:
            done = subprocess.run(command, env={**os.environ, **setting}, capture_output=True, text=True, timeout=60)
            lines = [line for line in done.stdout.splitlines() if line.startswith("| d whole")]
            if not lines:
                lines = [
                    f"| d whole | failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:100]} | - | - | - | - |"
                ]
        except Exception as exc:  # noqa: BLE001  (one failing setting must not lose the table)
            lines = [f"| d whole | failed: {type(exc).__name__}: {exc} | - | - | - | - |"[:160]]
        p.raw += [line.replace("| d whole |", f"| f env | {label}:", 1) for line in lines]


def _cuda() -> bool:
    return torch is not None and torch.cuda.is_available()


def sums(p: Probe, n_layers: int) -> None:
    """(e): parts summed against the whole, and the products alone at each library's measured rate."""
    s = p.seen
    for batch in p.args.batches:
        for side in ("mlx", "torch"):

            def best(name: str, side: str = side, batch: int = batch) -> float:  # the faster of MLX's two forms
                return min(s[k] for k in (f"{side}:{name}:b{batch}", f"{side}:{name}:b{batch}+t") if k in s)

            try:
                gemm = n_layers * sum(best(k) for k in ("qkv fused", "q|k|v|out proj", "fc1", "fc2"))
                gemm += best("conv2 im2col") + best("conv1 im2col")
                attn = n_layers * s[f"{side}:sdpa:b{batch}"]
            except (KeyError, ValueError) as missing:
                p.rows.append(("e sums", f"{side} b{batch} products", f"n/a: missing {missing}", "-", 0.0))
                continue
            p.rows.append(
                (
                    "e sums",
                    f"{side} b{batch}: all products (fused qkv) summed at the faster form, per window",
                    gemm / batch,
                    "-",
                    0.0,
                )
            )
            p.rows.append(
                (
                    "e sums",
                    f"{side} b{batch}: products + {n_layers} x sdpa, per window",
                    (gemm + attn) / batch,
                    "-",
                    0.0,
                )
            )
        try:
            eager = {
                k: s[f"mlx:{k}:b{batch}:eager"]
                for k in ("layer norm (B, T, D)", "gelu (B, T, 4D)", "residual add (B, T, D)")
            }
            rest = n_layers * (
                2 * eager["layer norm (B, T, D)"] + eager["gelu (B, T, 4D)"] + 2 * eager["residual add (B, T, D)"]
            )
            p.rows.append(
                ("e sums", f"mlx b{batch}: {n_layers} x (2 LN + GELU + 2 adds), per window", rest / batch, "-", 0.0)
            )
        except KeyError as missing:
            p.rows.append(("e sums", f"mlx b{batch} elementwise", f"n/a: missing {missing}", "-", 0.0))
        for mode in ("eager", "compiled"):
            try:
                part = n_layers * s[f"mlx:product block.encode:b{batch}:{mode}"]
                part += s[f"mlx:front end conv1d x2 + gelu + pos:b{batch}:{mode}"]
                got = s[f"mlx:{mode}:b{batch}"] * batch
            except KeyError as missing:
                p.rows.append(("e sums", f"{mode} b{batch} parts", f"n/a: missing {missing}", "-", 0.0))
                continue
            p.rows.append(
                ("e sums", f"{mode} b{batch}: front + {n_layers} x layer (product), per window", part / batch, "-", 0.0)
            )
            p.rows.append(("e sums", f"{mode} b{batch}: whole / sum of parts", f"{got / part:.3f}", "-", 0.0))


def header(args: argparse.Namespace) -> str:
    info = mx.device_info() if hasattr(mx, "device_info") else {}
    card = torch.cuda.get_device_name(0) if _cuda() else "no CUDA in torch"
    versions = (
        f"mlx {mx.__version__}, torch {getattr(torch, '__version__', 'absent')}, python {platform.python_version()}"
    )
    return (f"# encoder probe: MLX {mx.default_device()} ({info.get('device_name', '?')}); torch: {card}\n"
            f"- {versions}; dims (mels, T, D, heads, layers) {dims(args)}; {args.dtype}; batches {args.batches}; "
            f"median of {args.repeats} after {args.warmup} warm-up, {args.inner} calls per region for short ops")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny dims for a CPU smoke test")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, help="timed regions per cell (default 20; --tiny 3)")
    parser.add_argument("--warmup", type=int, help="untimed regions first (default 3; --tiny 1)")
    parser.add_argument("--inner", type=int, help="calls per timed region for single ops (default 10; --tiny 2)")
    parser.add_argument("--budget-s", type=float, default=170.0, help="later rows are skipped past this many seconds")
    parser.add_argument("--no-torch", action="store_true", help="MLX only (e.g. under nsys)")
    parser.add_argument("--sections", default="abdfce", help="which of a-f and k to run, in this order")
    parser.add_argument("--sweep-variant", default="fused/whole", help="gpu_encoder layout for (f)")
    parser.add_argument("--variants", default=",".join(RUN2), help="gpu_encoder layouts for (d), by name")
    parser.add_argument("--rounds", type=int, default=1, help="(d): candidates timed in this many interleaved rounds")
    args = parser.parse_args()
    for name, full, tiny in (("repeats", 20, 3), ("warmup", 3, 1), ("inner", 10, 2)):
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else full)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.variants = [v for v in args.variants.split(",") if v]
    return args


def main() -> int:
    args = parse_args()
    dtype = getattr(mx, args.dtype)
    probe = Probe(args)
    encoder = build_encoder(args, dtype)
    steps = {"a": lambda: gemms(probe, dtype), "b": lambda: attention(probe, dtype),
             "c": lambda: parts(probe, encoder, dtype), "d": lambda: whole(probe, encoder, dtype),
             "e": lambda: sums(probe, len(encoder.blocks)), "f": lambda: env_sweep(probe), "k": lambda: kernels(probe, dtype)}  # fmt: skip
    start = time.perf_counter()
    for name in args.sections:
        try:
            steps[name]()
        except Exception as exc:  # noqa: BLE001  (report the section, keep the rest)
            probe.rows.append((name, f"section failed: {type(exc).__name__}: {exc}"[:150], "-", "-", 0.0))
    print(header(args))
    print(render(probe))
    print(f"probe wall time {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
