"""Our MLX Whisper against PyTorch + transformers on one GPU: decoder ms per token, encoder ms per window.

Random weights at real shapes (default large-v3-turbo, float16), nothing downloaded. Decoder,
batch 1, per token after the prefill: the product's greedy loop now (`gpu_loop`, device-resident),
the previous loops and a bare compiled step, with graph nodes per token
(gpu_whisper_decoder.py), vs transformers' `generate` and its decoder stepped by hand. Encoder:
the product's call, eager and compiled, vs transformers' encoder, per window at each batch
(gpu_whisper_encoder.py). Also PERF.md's floors and the rate each time implies. Medians after
warm-up; each timed region ends in a read-back or mx.synchronize / torch.cuda.synchronize.
Each row is printed and the result file rewritten as soon as it is measured, and a failing row
becomes an "n/a: <reason>" cell, so a run cut short still leaves a table.
Needs mlx (CUDA build on a GPU), numpy, the repo's python/ on PYTHONPATH; torch + transformers 5.x
are optional. Writes bench/results/<--out>.md.

GPU (H100, about 3 minutes):
    source /root/w/env.sh && PYTHONPATH=python:/tmp/site python3 bench/gpu_whisper.py --out gpu_h100_s4
CPU smoke test:
    .venv/bin/python bench/gpu_whisper.py --dims tiny.en --dtype float32 --smoke --out /tmp/smoke_gpu_whisper
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import DIMS, Result, build_ours, environment, load_peer, not_available, prompt_tokens, write_result  # noqa: E402
from gpu_whisper_decoder import DecoderBench, Row, peer_decoder  # noqa: E402
from gpu_whisper_encoder import encoder_flops, our_encoder, peer_encoder  # noqa: E402
from mlx_audio_coreml.whisper.model import ModelDimensions  # noqa: E402

import mlx.core as mx  # noqa: E402  # isort: skip

PEAK_TFLOPS, PEAK_TBPS = 800.0, 3.0  # H100 fp16 matrix rate and memory bandwidth, as PERF.md assumes
TARGET_ENCODER_MS, TARGET_DECODER_MS = 4.0, 0.8  # PERF.md: our targets at batch 1
HEADER = (
    "| measure: ours / peer | ours ms | peer ms | ours / peer | H100 floor ms | our target ms | graph nodes / token |"
)


def decoder_bytes(d: ModelDimensions, itemsize: int, cached_tokens: int) -> float:
    """Read per step: self attn 4 w^2, cross q/out 2 w^2, MLP 8 w^2 per layer, the embedding (it is
    also the output projection), and the cross and self K/V caches."""
    w = d.n_text_state
    weights = d.n_vocab * w + d.n_text_layer * 14 * w * w
    return float(itemsize * (weights + d.n_text_layer * 2 * w * (d.n_audio_ctx + cached_tokens)))


def cell(value: Result, work: float, unit: str) -> str:
    """'12.345 (187 TFLOP/s)': milliseconds and the rate they imply."""
    if isinstance(value, str):
        return value
    return f"{value:.3f} ({work / value / (1e9 if unit == 'TFLOP/s' else 1e6):.3g} {unit})"


class Report:
    """The table so far; every `add` prints the row and rewrites the result file."""

    def __init__(self, args: argparse.Namespace, header: list[str], work: dict[str, tuple[float, float, str]]) -> None:
        self.args, self.header, self.work = args, header, work
        self.rows: list[list] = []  # [label, ours, peer, kind, target, nodes]
        print("\n".join([*header, HEADER, "| --- | --- | --- | --- | --- | --- | --- |"]), flush=True)

    def add(self, label: str, ours: Result, peer: Result, kind: str, target: float | None, nodes: str = "-") -> None:
        self.rows.append([label, ours, peer, kind, target, nodes])
        print(self.line(self.rows[-1]), flush=True)
        self.save(done=False)

    def line(self, row: list) -> str:
        label, ours, peer, kind, target, nodes = row
        amount, floor, unit = self.work[kind]
        ratio = f"{ours / peer:.2f}" if isinstance(ours, float) and isinstance(peer, float) else "-"
        goal = f"<= {target:g}" if target else "-"
        return f"| {label} | {cell(ours, amount, unit)} | {cell(peer, amount, unit)} | {ratio} | {floor:.3f} | {goal} | {nodes} |"

    def save(self, done: bool) -> Path:
        lines = [*self.header, HEADER, "| --- | --- | --- | --- | --- | --- | --- |", *map(self.line, self.rows)]
        if not done:
            lines += ["", "(partial: the run had not finished when this was written)"]
        return write_result(self.args.out, "\n".join(lines) + "\n")


def decoder_rows(model, d: ModelDimensions, peer: tuple | str, report: Report, args: argparse.Namespace) -> None:
    """Ours first (rows appear as measured, peer "pending"), then the peer's cells filled in."""
    ours: list[Row] = []

    def emit(row: Row) -> None:
        ours.append(row)
        target = TARGET_DECODER_MS if row[0].startswith(("product", "device", "previous", "bare")) else None
        report.add(row[0], row[1], "pending", "decoder", target, row[3])

    for batch in (1, args.decoder_batch):
        try:
            DecoderBench(model, d, args, batch).rows(emit)
        except Exception as exc:  # the bench itself failed to build: say so
            report.add(f"decoder b{batch}: our loops", not_available(exc), "-", "decoder", TARGET_DECODER_MS)
        mx.clear_cache()
    mx.clear_cache()  # hand MLX's cached GPU memory back before the peer allocates
    try:
        found = {"generate": peer, "hand": peer} if isinstance(peer, str) else peer_decoder(peer, d, args)
    except Exception as exc:
        found = {"generate": not_available(exc), "hand": not_available(exc)}
    start = len(report.rows) - len(ours)
    print("decoder rows with the peer's cells:", flush=True)
    for i, row in enumerate(ours):
        report.rows[start + i][2] = found.get(row[2], "-")
        print(report.line(report.rows[start + i]), flush=True)
    report.save(done=False)


def encoder_rows(model, d: ModelDimensions, peer: tuple | str, path: str, report: Report, args) -> None:
    for batch in (int(b) for b in args.batches.split(",")):
        try:
            eager, compiled = our_encoder(model, d, batch, args, path)
        except Exception as exc:
            eager = compiled = not_available(exc)
        try:
            peer_ms = peer if isinstance(peer, str) else peer_encoder(peer, d, batch, args)
        except Exception as exc:  # report, keep measuring the rest
            peer_ms = not_available(exc)
        target = TARGET_ENCODER_MS if batch == 1 else None
        report.add(f"encoder b{batch} per window: MLXAudioEncoder eager / sdpa", eager, peer_ms, "encoder", target)
        report.add(f"encoder b{batch} per window: mx.compile'd / sdpa", compiled, peer_ms, "encoder", target)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dims", choices=sorted(DIMS), default="large-v3-turbo")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    parser.add_argument("--batches", help="encoder batch sizes, comma-separated (default 1,8; smoke 1)")
    parser.add_argument("--steps", type=int, default=100, help="decoder tokens per timed run")
    parser.add_argument("--repeats", type=int, default=10, help="timed encoder runs (decoder: half)")
    parser.add_argument("--smoke", action="store_true", help="1 warm-up, 1 timed run, 4 steps: proves the script runs")
    parser.add_argument("--no-peer", action="store_true", help="skip PyTorch + transformers")
    parser.add_argument("--no-encoder", action="store_true", help="decoder rows only")
    parser.add_argument("--decoder-batch", type=int, default=24, help="also the product loops at this batch")
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
    header = [
        f"# Whisper {args.dims} ({args.dtype}, random weights): our MLX vs PyTorch + transformers",
        "",
        *environment(peer),
        f"- our encoder path: {path}; all weights {args.dtype} (checked); the product runs the encoder eagerly",
        f"- peer: {peer if isinstance(peer, str) else 'transformers WhisperForConditionalGeneration, random init'}",
        f"- timing: median of {args.repeats} (decoder {args.repeats_decoder}) after warm-up; "
        f"decoder batch 1, {args.steps} tokens per run after a {len(prompt_tokens(d))}-token prefill",
        f"- floors at PERF.md's H100 rates: encoder {flops / 1e12:.2f} TFLOP/window at {PEAK_TFLOPS:g} TFLOP/s; "
        f"decoder {step_bytes / 1e6:.0f} MB/token at {PEAK_TBPS:g} TB/s",
        "- graph nodes / token: primitives MLX dispatches for one token (views: no kernel)",
        "",
    ]
    report = Report(args, header, work)
    decoder_rows(model, d, peer, report, args)
    if not args.no_encoder:
        mx.clear_cache()
        encoder_rows(model, d, peer, path, report, args)
    print(f"written to {report.save(done=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
