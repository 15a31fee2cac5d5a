"""Long-form transcription speed and accuracy on this CPU: mlx-audio-coreml vs faster-whisper.

The audio: 10+ minutes of real speech made by concatenating the real clips we have (samples/jfk.wav
and the LibriVox clips of Debian's pocketsphinx-testdata), 0.5 s of silence after each, in that
order, repeated until long enough. Its reference text is the clips' texts in the same order, so
each engine gets a word error rate. Both engines load the same weights once (a session / a
WhisperModel), warm up on jfk.wav, then take turns on the long audio, the order alternating each
round, for each setting:
- greedy int8: beam 1, temperature 0 only, previous-text conditioning on (both defaults);
- beam 5 int8 / beam 5 float32: beam 5 (faster-whisper's default), temperature 0 only;
- defaults: each engine exactly as a user calls it, `transcribe(audio)` after loading the model
  with its defaults (ours: ModelLoadingOptions() on the CPU; faster-whisper: compute_type="default").
Prints (and writes to bench/results/longform_cpu.md) the CPU model, versions, load average before
and after, and a table of medians, real-time factors, WERs and ratios: of wall time, and of CPU time
(all threads of the process), which a crowded machine distorts less than wall time.

    .venv/bin/python bench/longform_cpu.py --minutes 10 --repeats 1 --settings greedy-int8 beam5-int8 beam5-float32 defaults
    .venv/bin/python bench/longform_cpu.py --minutes 1.3 --repeats 2 --settings greedy-int8  # the 116 s excerpt (3 passes), to iterate
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from machine_info import cpu_flags, cpu_model, version

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("greedy-int8", "beam5-int8", "greedy-float32", "beam5-float32", "defaults")
_GAP = 0.5  # seconds of silence after each clip


def long_speech(min_seconds: float) -> tuple[np.ndarray, str, str]:
    """(16 kHz float32 audio, reference text, how it was built) of at least `min_seconds`."""
    import soundfile

    from speech_data import JFK, JFK_TEXT, librivox_clips

    clips = [(JFK, JFK_TEXT), *librivox_clips()]
    parts, texts, total, passes = [], [], 0.0, 0
    gap = np.zeros(int(16000 * _GAP), np.float32)
    while total < min_seconds:
        passes += 1
        for path, text in clips:
            audio, rate = soundfile.read(path, dtype="float32")
            if rate != 16000 or audio.ndim != 1:
                raise ValueError(f"{path}: expected 16 kHz mono, got {rate} Hz, shape {audio.shape}")
            parts += [audio, gap]
            texts.append(text)
            total += (len(audio) + len(gap)) / 16000
    how = (f"{len(clips)} real clips (jfk.wav + {len(clips) - 1} LibriVox clips of pocketsphinx-testdata), "
           f"{_GAP} s of silence after each, {passes} passes: {total / 60:.1f} min")  # fmt: skip
    return np.concatenate(parts), " ".join(texts), how


def _words(text: str) -> list[str]:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"[^\w\s']", " ", text).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, case and punctuation aside."""
    ref, hyp = _words(reference), _words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, other in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
        previous = current
    return previous[-1] / max(len(ref), 1)


def ours(model: str, setting: str, _threads: int) -> Callable[[object], str]:
    import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
    from mlx_audio_coreml.options import ModelLoadingOptions, WhisperQuantization
    from mlx_audio_coreml.whisper.session import WhisperSession

    if setting == "defaults":
        session, kwargs = WhisperSession.from_pretrained(model), {}
    else:
        quant = WhisperQuantization.INT8 if setting.endswith("int8") else WhisperQuantization.FLOAT32
        options = dataclasses.replace(ModelLoadingOptions.mlx_only(), quantization=quant)
        session = WhisperSession.from_pretrained(model, options)
        kwargs = {"beam_size": 5 if setting.startswith("beam5") else 1, "temperature": 0.0, "language": "en"}

    def run(audio: object) -> str:
        segments, _info = session.transcribe(audio, **kwargs)
        return " ".join(s.text.strip() for s in segments)

    run.session = session  # type: ignore[attr-defined]  # longform_phases' A/B switches reach its model
    return run


def peer_compute_type(setting: str) -> str:
    """faster-whisper's compute type for one of our settings ("default", its own, for `defaults`)."""
    return setting.rsplit("-", 1)[1] if setting.endswith(("-int8", "-float32")) else "default"


def faster_whisper(model: str, setting: str, threads: int) -> Callable[[object], str]:
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.whisper.model_names import local_store

    fw = WhisperModel(
        str(local_store() / model), device="cpu", compute_type=peer_compute_type(setting), cpu_threads=threads
    )
    kwargs = (
        {}
        if setting == "defaults"
        else {"beam_size": 5 if setting.startswith("beam5") else 1, "temperature": 0.0, "language": "en"}
    )

    def run(audio: object) -> str:
        segments, _info = fw.transcribe(audio, **kwargs)
        return " ".join(s.text.strip() for s in segments)

    return run


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (both engines run in it, one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _in_turns(
    runs: dict[str, Callable[[object], str]], audio: np.ndarray, warm: str, repeats: int
) -> dict[str, tuple[list[float], list[float], str]]:
    """name -> (wall seconds per round, CPU seconds per round, text); one warm-up each on `warm`,
    order alternating per round."""
    for fn in runs.values():
        fn(warm)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    texts: dict[str, str] = {}
    for round_index in range(repeats):
        names = list(runs) if round_index % 2 == 0 else list(reversed(runs))
        for name in names:
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            texts[name] = runs[name](audio)
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(_cpu_seconds() - start_cpu)
    return {name: (seconds[name], cpu[name], texts[name]) for name in runs}


def _blas_note() -> str:
    from mlx_audio_coreml.cpu import blas

    return blas.blas_note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument(
        "--out",
        default=None,
        help="also write the report here (bench/results/longform_cpu.md keeps dated sections by hand)",
    )
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path[:0] = [str(ROOT / "python"), str(ROOT / "tests")]
    # first: it preloads OpenBLAS for MLX, which an earlier `import mlx.core` prevents (MLX then uses
    # its bundled BLAS: on the 116 s excerpt 12.5 s CPU instead of 7.6 s; its rounding also moved greedy-int8's
    # seeks, and that run without fallback hallucinated: WER 29% instead of 6.5%)
    import mlx_audio_coreml  # noqa: F401, I001
    import mlx.core as mx

    audio, reference, how = long_speech(args.minutes * 60)
    duration = len(audio) / 16000
    header = [
        f"CPU: {cpu_model()} ({cpu_flags()}), {os.cpu_count()} cores, threads={args.threads}",
        f"versions: mlx {mx.__version__}, ctranslate2 {version('ctranslate2')}, faster-whisper {version('faster_whisper')}",
        f"BLAS for MLX: {_blas_note()}",
        f"model: {args.model}; audio: {how}",
        f"load average (1 min) before: {os.getloadavg()[0]:.2f}",
    ]
    print("\n".join(header), flush=True)
    rows = []
    for setting in args.settings:
        runs: dict[str, Callable[[object], str]] = {}
        for name, factory in (("mlx-audio-coreml", ours), ("faster-whisper", faster_whisper)):
            try:  # a missing engine becomes a row saying so; the other still runs
                runs[name] = factory(args.model, setting, args.threads)
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}".replace("|", "/").splitlines()[0][:160]
                rows.append(f"| {setting} | {name} | not run: {why} |  |  |  |  |  |  |")
                print(rows[-1], flush=True)
        timed = _in_turns(runs, audio, str(ROOT / "samples" / "jfk.wav"), args.repeats)
        both = len(timed) == 2
        ratios = [f / o for o, f in zip(timed["mlx-audio-coreml"][0], timed["faster-whisper"][0])] if both else []
        cpu_ratios = [f / o for o, f in zip(timed["mlx-audio-coreml"][1], timed["faster-whisper"][1])] if both else []
        for name, (seconds, cpu, text) in timed.items():
            wer = word_error_rate(reference, text)
            ours_row = name == "mlx-audio-coreml" and both
            ratio = f"{statistics.median(ratios):.2f}x" if ours_row else ""
            cpu_ratio = f"{statistics.median(cpu_ratios):.2f}x" if ours_row else ""
            rows.append(f"| {setting} | {name} | {statistics.median(seconds):.1f} | {' '.join(f'{s:.1f}' for s in seconds)} | "
                        f"{statistics.median(seconds) / duration:.3f} | {statistics.median(cpu):.1f} | {100 * wer:.1f}% | {ratio} | {cpu_ratio} |")  # fmt: skip
            print(rows[-1], f"(load {os.getloadavg()[0]:.1f})", flush=True)
        if args.out:  # after each setting: a long run stopped early keeps what it measured
            _write(Path(args.out), header, rows)
    print(_report(header, rows))
    if args.out:
        _write(Path(args.out), header, rows)
    return 0


def _report(header: list[str], rows: list[str]) -> str:
    lines = header + [
        f"load average (1 min) after: {os.getloadavg()[0]:.2f}",
        "",
        "| setting | engine | median wall s | each round wall s | RTF | median CPU s | WER | wall speed vs faster-whisper | CPU-time speed vs faster-whisper |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    return "\n".join(lines)


def _write(out: Path, header: list[str], rows: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_report(header, rows) + "\n")


if __name__ == "__main__":
    sys.exit(main())
