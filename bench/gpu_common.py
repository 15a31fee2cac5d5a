"""Shared pieces of the GPU Whisper benchmarks (gpu_whisper.py, gpu_batched.py, gpu_profile_decoder.py).

Model shapes and random models, the product's prompt and logit filters, timing helpers, the peer
(PyTorch + transformers with random weights), the environment lines with the card's name, graph
node counts of a compiled token, and result files written whole (and rewritten as rows come in,
so a run cut short still leaves a partial table).
"""

from __future__ import annotations

import collections
import io
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (loads a fast BLAS before MLX on the CPU)
from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.whisper.logit_filters import ApplyTimestampRules, SuppressBlank, SuppressTokens
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip
from mlx.utils import tree_flatten  # isort: skip

DIMS = {  # n_mels, audio ctx/state/heads/layers, n_vocab, text ctx/state/heads/layers
    "tiny.en": ModelDimensions(80, 1500, 384, 6, 4, 51864, 448, 384, 6, 4),
    "base": ModelDimensions(80, 1500, 512, 8, 6, 51865, 448, 512, 8, 6),
    "large-v3-turbo": ModelDimensions(128, 1500, 1280, 20, 32, 51866, 448, 1280, 20, 4),
}
N_FRAMES = 3000  # mel frames per 30 s window
Result = float | str  # milliseconds, or "n/a: <reason>"
# nodes that only describe a view of memory: no kernel on the device, only host bookkeeping
VIEW_NODES = {"Reshape", "Squeeze", "ExpandDims", "Broadcast", "Transpose", "Slice", "Split", "AsStrided", "Flatten"}


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


def eot_token(d: ModelDimensions) -> int:
    return 50256 + int(d.n_vocab >= 51865)


def product_filters(d: ModelDimensions, sample_begin: int) -> list:
    """A default transcription's logit filters (ids from Whisper's vocabulary layout)."""
    eot, ts_begin = eot_token(d), d.n_vocab - 1501
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


def graph_nodes(outputs: list[mx.array]) -> tuple[int, int]:
    """(all nodes, nodes that are not views) of the graph behind `outputs` up to evaluated arrays:
    what MLX walks and dispatches when they are evaluated. Call on a compiled function's fresh
    outputs with its inputs evaluated: one token's primitives."""
    text = io.StringIO()
    mx.export_to_dot(text, *outputs)
    labels = collections.Counter(re.findall(r'label ="([^"]+)"', text.getvalue()))
    total = sum(labels.values())
    return total, total - sum(n for name, n in labels.items() if name in VIEW_NODES)


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
        vocab_size=d.n_vocab, num_mel_bins=d.n_mels, d_model=w, max_source_positions=d.n_audio_ctx,
        encoder_layers=d.n_audio_layer, encoder_attention_heads=d.n_audio_head, encoder_ffn_dim=4 * w,
        decoder_layers=d.n_text_layer, decoder_attention_heads=d.n_text_head, decoder_ffn_dim=4 * w,
        max_target_positions=d.n_text_ctx,
    )  # fmt: skip
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        with torch.device(device):
            model = WhisperForConditionalGeneration._from_config(
                config, attn_implementation="sdpa", dtype=getattr(torch, dtype_name)
            )
    except Exception as exc:
        return not_available(exc)
    return torch, model.eval(), device


def card_name() -> str:
    """The accelerator MLX runs on, by name (or the CPU's model)."""
    try:
        info = mx.device_info() if hasattr(mx, "device_info") else {}
        name = info.get("device_name")
    except Exception:  # an old MLX or no device query: say so, do not fail the run
        name = None
    if name:
        return str(name)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(peer: tuple | str) -> list[str]:
    """Device and version lines for the report."""
    devices = f"MLX {mx.default_device()} ({card_name()})"
    if not isinstance(peer, str):
        torch, model, device = peer
        name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        devices += f"; torch {device} ({name}), attn_implementation={model.config._attn_implementation}"
    found = [f"{m} {getattr(sys.modules.get(m), '__version__', 'absent')}" for m in ("torch", "transformers")]
    versions = [f"python {platform.python_version()}", f"mlx {mx.__version__}", f"numpy {np.__version__}", *found]
    return [f"- card: {card_name()}", f"- device: {devices}", f"- versions: {', '.join(versions)}"]


def write_result(name: str, text: str) -> Path:
    """bench/results/<name>.md, replaced whole (never a half-written file)."""
    folder = Path(__file__).resolve().parent / "results"
    folder.mkdir(exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    target = folder / (name if name.endswith(".md") else name + ".md")
    os.replace(temp, target)
    return target
