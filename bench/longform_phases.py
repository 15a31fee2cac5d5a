"""Where long-form transcription's wall time goes, ours against faster-whisper's, phase by phase.

Both engines transcribe bench/longform_cpu.py's real long audio (tiny.en, int8 or float32, greedy or
beam 5, or each engine's defaults)
in one process, in turns, after a warm-up. Timers wrap each engine's phases without changing them:
- ours: the encoder (`WindowDecoding.features` -> encoder.encode), the prompt's prefill
  (`DecodingTask._prefill`), the decoder steps (`host_decoder.decode_step`), the rest;
- faster-whisper: the encoder (`WhisperModel.encode`), CTranslate2's `generate` (prefill and
  every step together, in C++), the rest.
Prints per engine and phase the median wall seconds, the count of calls and the ms per call, with
the CPU model and the load average before and after: which phase to work on, on this CPU.
`--parts` also times the pieces inside our phases (rows "step: ...", "prefill: ..." and "beam: ...";
they are inside "step", "prefill" and "rest", not added to them): layer norms, the logits product,
the other products, cross-attention (its softmax included), the other softmaxes, GELU; the prefill's
audio keys/values per head and its attention per head; beam search's filters, top-k and cache reorders.
Only the phase's own thread and the outermost piece count (a product split over the workers is one
call). Each wrapper costs ~1 us a call (a step makes ~50).

`--ab-attention` adds ours with cross-attention on numpy instead of our C kernel, `--ab-split` ours
with cross-attention's heads split between the host workers, `--ab-block` ours with each decoder
block's kernels called one by one from Python instead of in one C call, `--ab-team` ours without
the step's C team (cpu/team.py), `--ab-bf16` ours with an int8 encoder's attention products in
float32 instead of bfloat16 (cpu/bf16.py) (same session, in turns), `--ab-pieces` ours with the decoder's block
products whole on the caller instead of in column pieces on the step's team (the same session, its
host weights prepared both ways, host_decoder._SPLIT_BLOCK_BYTES), `--ab-half` ours with an int8 decoder's
audio keys/values kept float32 instead of float16 (cpu/half_audio.py), `--ab-mel` ours with the log-mel read in
two passes for every clip (whisper/mel_windows.CACHED_FRAMES 0); `--no-peer` leaves faster-whisper out.

    python3 bench/longform_phases.py --minutes 3 --rounds 2 --setting greedy-int8 [--parts] [--ab-attention]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

Timings = dict[str, list[float]]
# `defaults`: each engine as a user calls it (ours beam 5 float32 on the CPU, faster-whisper beam 5 with its
# "default" compute type, float32 on a CPU)
PHASE_SETTINGS = ["greedy-int8", "beam5-int8", "greedy-float32", "beam5-float32", "defaults"]


def _timed(timings: Timings, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[phase].append(time.perf_counter() - start)

    return wrapper


class _TimedGenerate:
    """CTranslate2's model with `generate` and `encode` timed; everything else passed through."""

    def __init__(self, model: Any, timings: Timings) -> None:
        self._model, self._timings = model, timings

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._model, name)
        return _timed(self._timings, name, found) if name in ("generate", "encode") else found


def _ours(setting: str, timings: Timings) -> Callable[[Any], str]:
    """longform_cpu's `ours` with its phases timed (module functions wrapped for this process)."""
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from longform_cpu import ours
    from mlx_audio_coreml.whisper import decoding, host_decoder, transcribe

    transcribe.WindowDecoding.features = _timed(timings, "encode", transcribe.WindowDecoding.features)  # type: ignore[method-assign]
    decoding.DecodingTask._prefill = _timed(timings, "prefill", decoding.DecodingTask._prefill)  # type: ignore[method-assign]
    host_decoder.decode_step = _timed(timings, "step", host_decoder.decode_step)  # type: ignore[assignment]
    return ours("tiny.en", setting, 0)  # its thread count is unused (the session has its own)


def _time_parts(timings: Timings) -> None:
    """Wrap the leaves of our decoder step, our prefill and beam search's host work (this process
    only). Leaves they share (layer norms, products) are named for the phase they ran in."""
    from mlx_audio_coreml.cpu import host_math, linear, native_kernels
    from mlx_audio_coreml.whisper import beam, host_decoder, host_prefill, sampling

    phase: list[Any] = [None, None, 0]  # "step" or "prefill" while one runs, its thread, leaves open

    def leaf(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # the phase's own thread, outermost leaf only: a product split over the workers calls
            # itself for each part, on the caller and on the helpers
            if phase[0] is None or phase[1] != threading.get_ident() or phase[2]:
                return fn(*args, **kwargs)
            phase[2] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:  # the logits layer is the product with a vocabulary's outputs
                phase[2] -= 1
                label = (
                    name
                    if name != "products"
                    else "logits product"
                    if args[0].out_features > 10_000
                    else "other products"
                )
                timings[f"{phase[0]}: {label}"].append(time.perf_counter() - start)

        return wrapper

    def marked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            phase[:] = [name, threading.get_ident(), 0]
            try:
                return fn(*args, **kwargs)
            finally:
                phase[0] = None

        return wrapper

    host_decoder.decode_step = marked("step", host_decoder.decode_step)
    host_prefill.prefill = marked("prefill", host_prefill.prefill)
    host_prefill.prompt_cache = marked("prefill", host_prefill.prompt_cache)  # the previous text's call
    linear.HostLinear.__call__ = leaf("products", linear.HostLinear.__call__)  # type: ignore[method-assign]
    host_math.layer_norm = leaf("layer norms", host_math.layer_norm)
    host_math.gelu_np_ = leaf("gelu", host_math.gelu_np_)
    host_math.softmax_last_ = leaf("softmax (outside cross-attention)", host_math.softmax_last_)
    host_decoder._attend = leaf("cross-attention (no products)", host_decoder._attend)
    native_kernels.attend_rows = leaf("cross-attention (no products)", native_kernels.attend_rows)
    host_prefill._every_blocks_audio_heads = leaf("audio keys/values per head", host_prefill._every_blocks_audio_heads)
    host_prefill._attend_heads = leaf("attention per head (products, softmax)", host_prefill._attend_heads)
    host_prefill._logits = leaf("logits (last row; earlier lazy)", host_prefill._logits)
    beam.apply_filters_np = _timed(timings, "beam: filters", beam.apply_filters_np)
    beam.BeamSearch._top_candidates = _timed(timings, "beam: top-k + log-probs", beam.BeamSearch._top_candidates)  # type: ignore[method-assign]
    sampling.DecoderStep.reorder = _timed(timings, "beam: cache reorder", sampling.DecoderStep.reorder)  # type: ignore[method-assign]


def _patched(run: Callable[[Any], str], module: Any, name: str, value: Any) -> Callable[[Any], str]:
    """`run` with `module.name` set to `value` for the call (the same session, another route)."""

    def patched(audio: Any) -> str:
        kept = getattr(module, name)
        setattr(module, name, value)
        try:
            return run(audio)
        finally:
            setattr(module, name, kept)

    return patched


def _variants(args: argparse.Namespace, ours: Callable[[Any], str]) -> dict[str, Callable[[Any], str]]:
    """The A/B variants of ours asked for: the same session with one switch patched each."""
    from mlx_audio_coreml.cpu import bf16, team
    from mlx_audio_coreml.whisper import host_block, host_decoder, host_prefill, mel_windows

    switches = {
        # cross-attention on numpy instead of our C kernel
        "ours, numpy attention": (args.ab_attention, host_decoder, "_native_attention", lambda k_t, v: False),
        # cross-attention's heads split between the host workers (MLX_AUDIO_COREML_SPLIT_CROSS=1)
        "ours, heads split": (args.ab_split, host_decoder, "_SPLIT_CROSS", True),
        # each block's kernels called one by one from Python
        "ours, block in Python": (args.ab_block, host_block, "applies", lambda w: False),
        # no step team (as MLX_AUDIO_COREML_STEP_TEAM=0)
        "ours, no team": (args.ab_team, team, "_wanted", lambda: False),
        # an int8 encoder's attention products in float32 (as MLX_AUDIO_COREML_BF16_ATTENTION=0)
        "ours, float32 attention": (args.ab_bf16, bf16, "available", lambda: False),
        # an int8 decoder's audio keys and values kept float32 for the steps (not float16)
        "ours, float32 audio keys/values": (args.ab_half, host_prefill, "_HALF_AUDIO_INT8", False),
        # the log-mel computed again for each window (no clip keeps its measured blocks)
        "ours, mel in two passes": (args.ab_mel, mel_windows, "CACHED_FRAMES", 0),
    }
    variants = {name: _patched(ours, module, attr, value) for name, (on, module, attr, value) in switches.items() if on}
    if args.ab_pieces:
        variants["ours, block products whole"] = _with_whole_block_products(ours)
    return variants


def _with_whole_block_products(ours: Callable[[Any], str]) -> Callable[[Any], str]:
    """`ours` (the same session) with its decoder's host weights prepared a second time, each block
    product whole (host_decoder._SPLIT_BLOCK_BYTES out of reach), swapped in for the call."""
    from mlx_audio_coreml.whisper import host_decoder

    decoder = ours.session._transcriber.model.decoder  # type: ignore[attr-defined]
    cut = decoder.host_weights
    kept, host_decoder._SPLIT_BLOCK_BYTES = host_decoder._SPLIT_BLOCK_BYTES, 2**62
    try:
        decoder.host_weights = None
        host_decoder.prepared_weights(decoder, int8=decoder.host_int8)
        whole = decoder.host_weights
    finally:
        host_decoder._SPLIT_BLOCK_BYTES = kept
        decoder.host_weights = cut

    def run(audio: Any) -> str:
        decoder.host_weights = whole
        try:
            return ours(audio)
        finally:
            decoder.host_weights = cut

    return run


def _faster_whisper(setting: str, threads: int, timings: Timings) -> Callable[[Any], str]:
    from faster_whisper import WhisperModel

    from longform_cpu import peer_compute_type
    from mlx_audio_coreml.whisper.model_names import local_store

    compute = peer_compute_type(setting)
    fw = WhisperModel(str(local_store() / "tiny.en"), device="cpu", compute_type=compute, cpu_threads=threads)
    fw.model = _TimedGenerate(fw.model, timings)
    kwargs: dict[str, Any] = {"temperature": 0.0, "language": "en"}
    kwargs = {} if setting == "defaults" else {"beam_size": 5 if setting.startswith("beam5") else 1, **kwargs}

    def run(audio: Any) -> str:
        segments, _info = fw.transcribe(audio, **kwargs)  # its defaults: previous text on, no VAD
        return " ".join(s.text.strip() for s in segments)

    return run


def _table(name: str, rounds: list[tuple[float, Timings]]) -> list[str]:
    walls = [wall for wall, _ in rounds]
    lines = [f"| {name} | total | {statistics.median(walls):.2f} | 1 | - |"]
    phases = sorted({p for _, t in rounds for p in t}, key=lambda p: -sum(rounds[0][1].get(p, [])))
    accounted = []
    for phase in phases:  # "step: x", "prefill: x" and "beam: x" are inside the phases, not beside them
        sums = [sum(t.get(phase, [])) for _, t in rounds]
        count = len(rounds[-1][1].get(phase, []))
        per_call = 1000 * sums[-1] / count if count else 0.0
        lines.append(f"| {name} | {phase} | {statistics.median(sums):.2f} | {count} | {per_call:.2f} |")
        if ": " not in phase:
            accounted.append(sums)
    rest = [wall - sum(s[i] for s in accounted) for i, wall in enumerate(walls)]  # the phases are disjoint
    lines.append(f"| {name} | rest (Python around the phases) | {statistics.median(rest):.2f} | - | - |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--setting", default="greedy-int8", choices=PHASE_SETTINGS)
    parser.add_argument("--parts", action="store_true", help="also time the pieces inside our phases")
    parser.add_argument(
        "--ab-split", action="store_true", help="also run ours with cross-attention's heads split over the workers"
    )
    parser.add_argument(
        "--ab-attention", action="store_true", help="also run ours with cross-attention in numpy, not our C kernel"
    )
    parser.add_argument(
        "--ab-block", action="store_true", help="also run ours with each block's kernels called from Python"
    )
    parser.add_argument("--ab-team", action="store_true", help="also run ours without the step's C team")
    parser.add_argument("--ab-bf16", action="store_true", help="also run ours with float32 encoder attention")
    parser.add_argument("--ab-half", action="store_true", help="also run ours with float32 audio keys/values")
    parser.add_argument("--ab-mel", action="store_true", help="also run ours with the log-mel read in two passes")
    parser.add_argument(
        "--ab-pieces", action="store_true", help="also run ours with each block product whole (not team pieces)"
    )
    parser.add_argument("--no-peer", action="store_true", help="leave faster-whisper out (A/B of ours only)")
    args = parser.parse_args()
    from longform_cpu import long_speech, word_error_rate
    from machine_info import cpu_flags, cpu_model

    print(f"CPU: {cpu_model()} ({cpu_flags()}); threads {args.threads}; load before {os.getloadavg()[:3]}")
    audio, reference, how = long_speech(args.minutes * 60)
    print(f"audio: {how}; setting {args.setting}")
    timings: dict[str, Timings] = {"ours": defaultdict(list), "faster-whisper": defaultdict(list)}
    engines = {
        "ours": _ours(args.setting, timings["ours"]),  # --parts: wrapped below, before any call
        "faster-whisper": _faster_whisper(args.setting, args.threads, timings["faster-whisper"]),
    }
    for name, variant in _variants(args, engines["ours"]).items():  # timed into ours' dict
        timings[name] = timings["ours"]
        engines[name] = variant
    if args.no_peer:
        del engines["faster-whisper"]
    if args.parts:
        _time_parts(timings["ours"])
    for run in engines.values():
        run(audio[: 16000 * 11])  # warm-up
    results: dict[str, list[tuple[float, Timings]]] = {name: [] for name in engines}
    texts: dict[str, str] = {}
    for index in range(args.rounds):
        for name in list(engines) if index % 2 == 0 else list(reversed(engines)):
            timings[name].clear()
            start = time.perf_counter()
            run = engines[name]
            texts[name] = run(audio)
            results[name].append((time.perf_counter() - start, {k: list(v) for k, v in timings[name].items()}))
            print(f"round {index} {name}: {results[name][-1][0]:.2f} s", flush=True)
    print("\n| engine | phase | median wall s | calls (last round) | ms per call |")
    print("| --- | --- | --- | --- | --- |")
    for name, rounds in results.items():
        print("\n".join(_table(name, rounds)))
    errors = {name: f"{100 * word_error_rate(reference, text):.2f}%" for name, text in texts.items()}
    print(f"WER (last round): {errors}; load after: {os.getloadavg()[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
