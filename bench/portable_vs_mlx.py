"""The portable runtime against the MLX encoder, same weights and same input: what does running
through a .mlpackage cost?

    .venv/bin/python bench/portable_vs_mlx.py [--model tiny.en] [--synthetic] [--precision float32 float16]
                                              [--device cpu|gpu] [--rounds 7] [--out bench/results/NAME.md]

The encoder of `--model` (a folder or a name in the local store) is converted with our converter
(convert/, default layout, no validation) and loaded by PortableRuntime; with `--synthetic`, or
when the weights are missing, a random encoder of tiny.en's shape stands in. Input: the log-mel of
samples/jfk.wav padded to 30 s. Variants, each with its evaluation forced inside the timing:
- mlx: the MLX WhisperEncoder as the product runs it (on CPU float32 with its numpy host-math path);
- mlx plain: the same module with the host-math path off (plain MLX ops: the baseline);
- portable: PortableModel.predict_mlx (the program on MLX with the load-time rewrites; on the CPU
  its softmax, GELU and attention use the same numpy host math as the MLX encoder);
- portable no host math: the same with host math off (plain MLX ops, as on a GPU);
- portable unoptimized: the same without the rewrites (the program as written, op by op);
- portable predict: PortableModel.predict (numpy in, numpy out: the LoadedModel interface).
After one warm-up each, `--rounds` rounds run every variant once, in turn (so a noisy shared
machine slows all of them alike); the table gives the median per variant and its ratio to mlx plain.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlx.core as mx
import numpy as np

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.runtime import ComputeUnits

ROOT = Path(__file__).resolve().parents[1]
Variant = Callable[[], object]


def interleaved_medians(variants: dict[str, Variant], rounds: int) -> dict[str, float]:
    """Median milliseconds per variant over `rounds` rounds that each run every variant once."""
    for run in variants.values():
        run()  # warm-up: compiles, fills caches
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def load_encoder(model: str, synthetic: bool):
    """(float32 encoder module, n_head, n_mels, source name): real weights, or a random tiny.en-sized one."""
    from mlx_audio_coreml.whisper.model import WhisperEncoder

    if not synthetic:
        from mlx_audio_coreml.whisper.loading import load_whisper
        from mlx_audio_coreml.whisper.model_names import local_store

        path = Path(model) if Path(model).is_dir() else local_store() / model
        if path.is_dir():
            bundle = load_whisper(path, dtype=mx.float32)
            return bundle.model.encoder, bundle.dims.n_audio_head, bundle.dims.n_mels, str(model)
        print(f"no weights at {path}: using a random encoder of tiny.en's shape", file=sys.stderr)
    encoder = WhisperEncoder(n_mels=80, n_ctx=1500, n_state=384, n_head=6, n_layer=4)
    mx.eval(encoder.parameters())
    return encoder, 6, 80, "synthetic tiny.en-shaped encoder"


def as_dtype(encoder, dtype: mx.Dtype) -> None:
    """Cast every weight and the position table (a buffer set_dtype leaves alone: left in float32,
    it would promote the whole float16 encoder to float32 after the first add)."""
    encoder.set_dtype(dtype)
    encoder.set_positional_embedding(encoder._positional_embedding)  # cast to the weights' dtype


def convert(encoder, n_head: int, precision: str, out_dir: Path) -> Path:
    from mlx_audio_coreml.convert.whisper import ConvertOptions, SourceInfo, convert_encoder

    source = SourceInfo("bench", "local", "0" * 64, "mlx")
    options = ConvertOptions(precision=precision, validate=False)
    return convert_encoder(encoder, n_head, source, out_dir, options).package


def real_mel(n_mels: int) -> np.ndarray:
    from mlx_audio_coreml.convert.validate import validation_mel

    try:
        return validation_mel(n_mels, ROOT / "samples" / "jfk.wav")  # (1, n_mels, 3000) float32
    except ImportError as exc:  # no audio reader installed (e.g. a bare GPU machine)
        print(f"cannot read jfk.wav ({exc}): using the converter's built-in test signal", file=sys.stderr)
        return validation_mel(n_mels)


def _portable_variants(package: Path, units: ComputeUnits, mel: np.ndarray):
    """(optimized model, variants running it with and without the rewrites, the numpy feed)."""
    model = PortableRuntime().load(package, units)
    plain_model = PortableRuntime(optimize=False).load(package, units)
    spec = model.description.inputs[0]
    feed_np = mel.astype(spec.dtype).reshape(spec.shape)
    feed = mx.array(feed_np)

    def lazy(m) -> Variant:
        return lambda: mx.eval(next(iter(m.predict_mlx({spec.name: feed}).values())))

    def without_host_math() -> None:
        from mlx_audio_coreml.cpu import host_math

        with host_math.disabled():
            lazy(model)()

    variants = {
        "portable": lazy(model),
        "portable no host math": without_host_math,
        "portable unoptimized": lazy(plain_model),
        "portable predict": lambda: model.predict({spec.name: feed_np}),
    }
    return model, variants, (spec.name, feed)


def bench_precision(args, precision: str) -> list[tuple[str, float, float]]:
    from mlx_audio_coreml.cpu import host_math

    dtype = mx.float16 if precision == "float16" else mx.float32
    encoder, n_head, n_mels, source = load_encoder(args.model, args.synthetic)
    mel = real_mel(n_mels)
    units = ComputeUnits.CPU_ONLY if args.device == "cpu" else ComputeUnits.ALL
    with tempfile.TemporaryDirectory() as scratch:
        package = convert(encoder, n_head, precision, Path(scratch))
        model, portable, (name, feed) = _portable_variants(package, units, mel)
    as_dtype(encoder, dtype)
    mel_cl = mx.array(mel.transpose(0, 2, 1)).astype(dtype)  # (1, 3000, n_mels), as the MLX module takes it

    def run_mlx() -> mx.array:
        out = encoder(mel_cl)
        mx.eval(out)
        return out

    def run_mlx_plain() -> mx.array:
        with host_math.disabled():
            return run_mlx()

    mlx_out = run_mlx_plain()
    reference = np.array(mlx_out.astype(mx.float32))
    got = np.array(next(iter(model.predict_mlx({name: feed}).values())).astype(mx.float32)).reshape(reference.shape)
    error = float(np.abs(got - reference).max() / np.abs(reference).max())
    print(
        f"[{precision}] {source}: {model.program.opset}, {len(model.program.block.nodes)} ops to run, "
        f"rewrites {model.program.rewrites}, compiled={model.compiled}, MLX output {mlx_out.dtype}, "
        f"max relative error vs MLX {error:.2e}",
        file=sys.stderr,
    )
    medians = interleaved_medians({"mlx": run_mlx, "mlx plain": run_mlx_plain, **portable}, args.rounds)
    plain = medians["mlx plain"]
    return [(f"{precision} {variant}", ms, ms / plain) for variant, ms in medians.items()]


def table(args, rows: list[tuple[str, float, float]]) -> str:
    lines = [
        f"Command: `python bench/portable_vs_mlx.py {' '.join(sys.argv[1:])}`",
        f"Machine: {platform.machine()} ({os.cpu_count()} CPU cores), {mx.default_device()}, MLX {mx.__version__}, "
        f"medians of {args.rounds} interleaved rounds after one warm-up",
        "",
        f"| {args.model if not args.synthetic else 'synthetic tiny.en'} on {mx.default_device()} | median ms | vs mlx plain |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {ms:.1f} | {ratio:.3f} |" for name, ms, ratio in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--precision", nargs="+", default=["float32", "float16"], choices=["float32", "float16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--rounds", "--repeats", type=int, default=7, dest="rounds")
    parser.add_argument("--synthetic", action="store_true", help="random weights of tiny.en's shape")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args()
    mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    rows = []
    for precision in args.precision:
        rows.extend(bench_precision(args, precision))
    text = table(args, rows)
    sys.stdout.write(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(text)
        partial.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
