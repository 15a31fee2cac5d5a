"""The portable runtime against the MLX encoder, same weights and same input: what does running
through a .mlpackage cost?

    .venv/bin/python bench/portable_vs_mlx.py [--model tiny.en] [--precision float32 float16]
                                              [--device cpu|gpu] [--repeats 5]

The encoder of `--model` (a folder or a name in the local store) is converted with our converter
(convert/, no validation) and loaded by PortableRuntime; with `--synthetic`, or when the weights
are missing, a random encoder of tiny.en's shape stands in. Input: the log-mel of samples/jfk.wav
padded to 30 s. Timed (median of `--repeats` after one warm-up, evaluation forced inside):
- mlx: the MLX AudioEncoder as the product runs it (on CPU float32 with its numpy host-math path);
- mlx plain: the same module with the host-math path off (the same MLX ops the package runs);
- portable: PortableModel.predict_mlx (the program on MLX, output left an MLX array);
- portable predict: PortableModel.predict (numpy in, numpy out: the LoadedModel interface).
Prints a table of medians, the ratio to mlx plain, and the relative error of the package.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (fast BLAS before MLX)
import mlx.core as mx
import numpy as np

from mlx_audio_coreml.coreml.portable import PortableRuntime
from mlx_audio_coreml.coreml.runtime import ComputeUnits

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: compiles, fills caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def load_encoder(model: str, dtype: mx.Dtype, synthetic: bool):
    """(encoder module, n_head, n_mels, source name) for real weights, or a random tiny.en-sized one."""
    from mlx_audio_coreml.whisper.model import AudioEncoder

    if not synthetic:
        from mlx_audio_coreml.whisper.loading import load_whisper
        from mlx_audio_coreml.whisper.models import local_store

        path = Path(model) if Path(model).is_dir() else local_store() / model
        if path.is_dir():
            bundle = load_whisper(path, dtype=dtype)
            return bundle.model.encoder, bundle.dims.n_audio_head, bundle.dims.n_mels, str(model)
        print(f"no weights at {path}: using a random encoder of tiny.en's shape", file=sys.stderr)
    encoder = AudioEncoder(n_mels=80, n_ctx=1500, n_state=384, n_head=6, n_layer=4)
    encoder.set_dtype(dtype)
    mx.eval(encoder.parameters())
    return encoder, 6, 80, "synthetic tiny.en-shaped encoder"


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


def bench_precision(args, precision: str) -> list[tuple[str, float, float | None]]:
    from mlx_audio_coreml.whisper import host_math

    dtype = mx.float16 if precision == "float16" else mx.float32
    encoder, n_head, n_mels, source = load_encoder(args.model, mx.float32, args.synthetic)
    mel = real_mel(n_mels)
    with tempfile.TemporaryDirectory() as scratch:
        package = convert(encoder, n_head, precision, Path(scratch))
        encoder.set_dtype(dtype)
        units = ComputeUnits.CPU_ONLY if args.device == "cpu" else ComputeUnits.ALL
        model = PortableRuntime().load(package, units)
    spec = model.description.inputs[0]
    feed_np = mel.astype(spec.dtype).reshape(spec.shape)
    feed = mx.array(feed_np)
    mel_cl = mx.array(mel.transpose(0, 2, 1)).astype(dtype)  # (1, 3000, n_mels), as the MLX module takes it

    def run_mlx() -> mx.array:
        out = encoder(mel_cl)
        mx.eval(out)
        return out

    def run_mlx_plain() -> mx.array:
        with host_math.disabled():
            return run_mlx()

    def run_portable() -> mx.array:
        out = next(iter(model.predict_mlx({spec.name: feed}).values()))
        mx.eval(out)
        return out

    def run_predict() -> np.ndarray:
        return next(iter(model.predict({spec.name: feed_np}).outputs.values()))

    reference = np.array(run_mlx_plain().astype(mx.float32))
    got = np.array(run_portable().astype(mx.float32)).reshape(reference.shape)
    error = float(np.abs(got - reference).max() / np.abs(reference).max())
    print(f"[{precision}] {source}: {model.program.opset}, {len(model.program.block.nodes)} ops to run, "
          f"compiled={model.compiled}, max relative error vs MLX {error:.2e}", file=sys.stderr)
    rows = [("mlx", median_ms(run_mlx, args.repeats)), ("mlx plain", median_ms(run_mlx_plain, args.repeats)),
            ("portable", median_ms(run_portable, args.repeats)), ("portable predict", median_ms(run_predict, args.repeats))]
    plain = rows[1][1]
    return [(f"{precision} {name}", ms, ms / plain) for name, ms in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--precision", nargs="+", default=["float32", "float16"], choices=["float32", "float16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--synthetic", action="store_true", help="random weights of tiny.en's shape")
    args = parser.parse_args()
    mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    rows = []
    for precision in args.precision:
        rows.extend(bench_precision(args, precision))
    print(f"| {args.model} on {mx.default_device()} | median ms | vs mlx plain |")
    print("|---|---|---|")
    for name, ms, ratio in rows:
        print(f"| {name} | {ms:.1f} | {ratio:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
