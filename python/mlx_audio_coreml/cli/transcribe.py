"""`mlx-audio-coreml transcribe FILE...`: speech to text, printed and written as txt/srt/vtt/json/tsv.

Each segment's text is printed to stdout as soon as it is decoded; a progress bar goes to stderr
when stderr is a terminal (or with --progress). Files are written only after a file's transcript
is complete, all formats or none, so Ctrl-C or SIGTERM never leaves a partial output file: SIGTERM
is turned into the same KeyboardInterrupt as Ctrl-C, which unwinds and removes temporary files.

Before the model loads: options are checked by argparse (one line, no traceback), the output
folder is made and proven writable, inputs are checked and given distinct output names
(outputs.py). A batch goes on past a failed input and ends with BatchFailed listing each one.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import cancel
from ..errors import BatchFailed, MlxAudioCoreMLError
from ..options import Component
from ..whisper.writers import FORMATS, expand_formats, write_transcripts
from .outputs import OutputPlan, distinct_inputs, plan_outputs, prepare_output_dir, readable_inputs
from .progress_bar import ProgressBar
from .session_args import SessionFlags, add_session_flags, report, show_kernel_log

# TranscribeOptions' bounds (whisper/transcribe_options.py, which needs MLX to import), checked here
# by argparse so a bad value is one line before anything loads; a test keeps the two equal.
MAX_BEAMS = 64
MAX_TEMPERATURES = 100


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("transcribe", help="transcribe audio files with Whisper")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG; anything ffmpeg reads)")
    parser.add_argument(
        "--model", default="tiny.en", help="short name (tiny.en, base ...), hub repo id or model folder"
    )
    parser.add_argument(
        "--language", default=None, help="language code or name; default: detect (English-only models: en)"
    )
    parser.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    parser.add_argument(
        "--output-format", "-f", default=None, choices=(*FORMATS, "all"),
        help="write this format (default txt when --output-dir is given; no files when neither is given)",
    )  # fmt: skip
    parser.add_argument("--output-dir", "-o", type=Path, default=None, help="folder for the output files (default: .)")
    parser.add_argument("--word-timestamps", action="store_true", help="align each word (json and the API carry them)")
    parser.add_argument(
        "--vad", action="store_true", help="decode only the speech Silero VAD finds (times stay on the original audio)"
    )
    beams = _int_in(1, MAX_BEAMS)
    parser.add_argument(
        "--beam-size",
        type=beams,
        default=None,
        help=f"beams at temperature 0, 1 to {MAX_BEAMS} (default: 5, as faster-whisper; 1 is greedy)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="decode VAD chunks of up to 30 s this many at a time (faster; no previous-text prompts)",
    )
    parser.add_argument(
        "--best-of", type=beams, default=5, help="samples per window when falling back to temperature > 0"
    )
    parser.add_argument(
        "--temperature", type=_float_in(0.0, 1.0), default=0.0, help="first sampling temperature, 0 to 1"
    )
    parser.add_argument(
        "--temperature-increment-on-fallback", type=_float_in(0.0, 1.0), default=0.2,
        help=f"step up to 1.0 when a window's text loops or is unlikely; 0 disables fallback (at most {MAX_TEMPERATURES} steps)",
    )  # fmt: skip
    parser.add_argument(
        "--initial-prompt", default=None, help="text that sets vocabulary or style for the first window"
    )
    parser.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_false")
    add_session_flags(parser, Component.ENCODER, dtype=True)
    parser.add_argument(
        "--progress", action="store_true", help="draw the progress bar even when stderr is not a terminal"
    )
    parser.set_defaults(func=run)


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number from {low:g} to {high:g}")
        return value

    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low} to {high}")
        return value

    return parse


def temperatures(start: float, increment: float) -> tuple[float, ...]:
    """The fallback ladder start, start + increment, ... up to 1.0 (InvalidOption past MAX_TEMPERATURES)."""
    from ..whisper.transcribe_options import fallback_temperatures

    return fallback_temperatures(start, increment)


def transcribe_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "language": args.language,
        "task": args.task,
        "beam_size": args.beam_size,
        "best_of": args.best_of,
        "temperature": temperatures(args.temperature, args.temperature_increment_on_fallback),
        "initial_prompt": args.initial_prompt,
        "condition_on_previous_text": args.condition_on_previous_text,
        "word_timestamps": args.word_timestamps,
        "vad_filter": args.vad,
        "batch_size": args.batch_size,
    }


def run(args: argparse.Namespace) -> int:
    formats = _formats(args)
    options = transcribe_options(args)  # InvalidOption now, not after the model loads
    files = distinct_inputs(list(args.files))
    plan = plan_outputs(files, prepare_output_dir(args.output_dir or Path(".")) if formats else Path("."), formats)
    for note in plan.notes():
        print(f"note: {note}", file=sys.stderr)
    inputs, failures = readable_inputs(files)
    for _name, exc in failures:
        print(f"error: {exc}", file=sys.stderr)
    if not inputs:
        raise BatchFailed(failures, len(files))
    previous = signal.signal(signal.SIGTERM, cancel.interrupt_handler)
    try:
        session = load_session(args.model, flags=SessionFlags.from_args(args, Component.ENCODER))
        for path in inputs:
            try:
                transcribe_file(session, path, options, plan, show_name=len(files) > 1, progress=args.progress)
            except MlxAudioCoreMLError as exc:  # one failed input does not stop the others
                print(f"error: {exc}", file=sys.stderr)
                failures.append((path, exc))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failures:
        raise BatchFailed(failures, len(files))
    return 0


def _formats(args: argparse.Namespace) -> tuple[str, ...]:
    if args.output_format is None and args.output_dir is None:
        return ()
    return expand_formats(args.output_format or "txt")


def load_session(
    model: str, backend: str = "auto", dtype: str = "float16", *, flags: SessionFlags | None = None
) -> Any:
    """A WhisperSession for `model` with the session flags asked for (or just a backend and a
    precision); says on stderr what runs the encoder and why, and raises CoreMLRequired under --strict."""
    from ..whisper.session import WhisperSession

    flags = flags or SessionFlags(backend=backend, dtype=dtype)
    session = WhisperSession.from_pretrained(model, flags.options())
    report(session.info, flags)
    show_kernel_log()
    return session


def transcribe_file(
    session: Any, path: str, options: dict[str, Any], plan: OutputPlan, *, show_name: bool, progress: bool
) -> None:
    """Print the file's text as it is decoded, then write every output format (all or none)."""
    if show_name:
        print(f"==> {path} <==", flush=True)
    bar = ProgressBar(Path(path).name, enabled=ProgressBar.wanted(progress))
    with bar:
        segments_iter, info = session.transcribe(path, progress=bar.update, **options)
        if info.all_language_probs is not None:  # detected, not given or implied by an English-only model
            print(f"Detected language: {info.language} ({info.language_probability:.2f})", file=sys.stderr)
        segments = []
        for segment in segments_iter:
            segments.append(segment)
            bar.clear()  # so the text does not land in the middle of the bar's line
            print(segment.text.strip(), flush=True)
    if plan.targets[path]:
        write_transcripts(plan.targets[path], segments, info)
