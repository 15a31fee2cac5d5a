"""Batched long-form transcription on this CPU: ours batched vs faster-whisper's
`BatchedInferencePipeline` at the same batch size, and vs our sequential (seek-loop) transcription.

The audio and its reference text are longform_cpu.py's (10+ minutes of real clips, concatenated
with 0.5 s of silence after each), so every engine gets a word error rate. All engines load the
same weights (the local tiny.en CTranslate2 folder; faster-whisper in float32, as ours on the
CPU), warm up on jfk.wav, then take turns on the long audio, the order alternating per round:
- ours-batched: `session.transcribe(audio, batch_size=N)` (VAD chunks of <= 30 s, N at a time);
- fw-batched: `BatchedInferencePipeline(model).transcribe(audio, batch_size=N)`;
- ours-sequential: `session.transcribe(audio)` (30 s windows in turn, previous-text prompts).
Every engine decodes at temperature 0 with the same beam size, without timestamps in the batched
runs (faster-whisper's batched default), English. Prints (and writes to bench/results/batched_cpu.md)
the CPU model, load average before and after, and medians, real-time factors, WERs and ratios.

    .venv/bin/python bench/batched_cpu.py --minutes 10 --batch-size 8 --beam-size 1 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from longform_cpu import _in_turns, long_speech, word_error_rate  # noqa: E402
from machine_info import cpu_flags, cpu_model  # noqa: E402


def ours(model: str, batch_size: int | None, beam_size: int) -> Callable[[object], str]:
    from mlx_audio_coreml.whisper.model_names import local_store
    from mlx_audio_coreml.whisper.session import WhisperSession

    session = WhisperSession.from_pretrained(str(local_store() / model))
    kwargs = {"beam_size": beam_size, "temperature": 0.0, "language": "en"}
    if batch_size is not None:
        kwargs.update(batch_size=batch_size, without_timestamps=True)

    def run(audio: object) -> str:
        segments, _info = session.transcribe(audio, **kwargs)
        return " ".join(s.text.strip() for s in segments)

    return run


def faster_whisper_batched(model: str, batch_size: int, beam_size: int, threads: int) -> Callable[[object], str]:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from mlx_audio_coreml.whisper.model_names import local_store

    pipeline = BatchedInferencePipeline(
        WhisperModel(str(local_store() / model), device="cpu", compute_type="float32", cpu_threads=threads)
    )

    def run(audio: object) -> str:
        segments, _info = pipeline.transcribe(
            audio, batch_size=batch_size, beam_size=beam_size, temperature=0.0, language="en"
        )
        return " ".join(s.text.strip() for s in segments)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-sequential", action="store_true", help="skip our sequential run (the slowest)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batched_cpu.md")
    args = parser.parse_args()

    from speech_data import JFK

    audio, reference, how = long_speech(args.minutes * 60)
    load_before = os.getloadavg()
    runs = {
        "ours-batched": ours(args.model, args.batch_size, args.beam_size),
        "fw-batched": faster_whisper_batched(args.model, args.batch_size, args.beam_size, threads=os.cpu_count() or 2),
    }
    if not args.no_sequential:
        runs["ours-sequential"] = ours(args.model, None, args.beam_size)
    results = _in_turns(runs, audio, str(JFK), args.repeats)
    load_after = os.getloadavg()
    duration = len(audio) / 16000
    lines = [
        f"# Batched transcription on the CPU ({args.model}, batch {args.batch_size}, beam {args.beam_size})",
        "",
        f"- CPU: {cpu_model()} ({os.cpu_count()} cores; {cpu_flags()})",
        f"- load average before: {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}; "
        f"after: {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}",
        f"- audio: {how}",
        f"- command: `.venv/bin/python bench/batched_cpu.py --minutes {args.minutes:g} --batch-size {args.batch_size} "
        f"--beam-size {args.beam_size} --repeats {args.repeats}{' --no-sequential' if args.no_sequential else ''}`",
        "",
        "| engine | median s | CPU s | real-time factor | WER | vs fw-batched (wall) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    fw_wall = statistics.median(results["fw-batched"][0])
    for name, (walls, cpus, text) in results.items():
        wall = statistics.median(walls)
        wer = word_error_rate(reference, text)
        lines.append(
            f"| {name} | {wall:.1f} | {statistics.median(cpus):.1f} | {wall / duration:.3f} | {100 * wer:.2f}% | {fw_wall / wall:.2f}x |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    _keep(args.out, lines[0], "\n".join(lines[2:]) + "\n")
    return 0


def _keep(out: Path, title: str, section: str) -> None:
    """Put this run's section first under the file's title, the earlier runs kept below it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    earlier = out.read_text() if out.exists() else ""
    if earlier.startswith(title):
        earlier = earlier[len(title) :].lstrip("\n")
    stamp = time.strftime("%Y-%m-%d, %H:%M UTC", time.gmtime())
    out.write_text(f"{title}\n\n## {stamp}\n\n{section}\n{earlier}")


if __name__ == "__main__":
    raise SystemExit(main())
