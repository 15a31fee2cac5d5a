"""`mlx-audio-coreml transcribe FILE...`: speech to text, printed and written as txt/srt/vtt/json/tsv.

Each segment's text is printed to stdout as soon as it is decoded; a progress bar goes to stderr
when stderr is a terminal (or with --progress). Files are written only after a file's transcript
is complete, each atomically, so Ctrl-C or SIGTERM never leaves a partial output file: SIGTERM is
turned into the same KeyboardInterrupt as Ctrl-C, which unwinds and removes temporary files.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import AudioError
from ..whisper.writers import FORMATS, expand_formats, output_path, write_transcript
from .progress_bar import ProgressBar

BACKENDS = {"auto": "AUTO", "mlx": "MLX", "coreml": "CORE_ML"}
DTYPES = ("float16", "float32", "int8", "int4")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("transcribe", help="transcribe audio files with Whisper")
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (WAV, FLAC, OGG; anything ffmpeg reads)")
    parser.add_argument("--model", default="tiny.en", help="short name (tiny.en, base ...), hub repo id or model folder")
    parser.add_argument("--language", default=None, help="language code or name; default: detect (English-only models: en)")
    parser.add_argument("--task", choices=("transcribe", "translate"), default="transcribe")
    parser.add_argument(
        "--output-format", "-f", default=None, choices=(*FORMATS, "all"),
        help="write this format (default txt when --output-dir is given; no files when neither is given)",
    )  # fmt: skip
    parser.add_argument("--output-dir", "-o", type=Path, default=None, help="folder for the output files (default: .)")
    parser.add_argument("--word-timestamps", action="store_true", help="align each word (json and the API carry them)")
    parser.add_argument("--vad", action="store_true", help="decode only the speech Silero VAD finds (times stay on the original audio)")
    parser.add_argument("--beam-size", type=int, default=None, help="beam search with this many beams (default: greedy)")
    parser.add_argument("--best-of", type=int, default=5, help="samples per window when falling back to temperature > 0")
    parser.add_argument("--temperature", type=float, default=0.0, help="first sampling temperature")
    parser.add_argument(
        "--temperature-increment-on-fallback", type=float, default=0.2,
        help="step up to 1.0 when a window's text loops or is unlikely; 0 disables fallback",
    )  # fmt: skip
    parser.add_argument("--initial-prompt", default=None, help="text that sets vocabulary or style for the first window")
    parser.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_false")
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="auto", help="who runs the encoder")
    parser.add_argument("--dtype", choices=DTYPES, default="float16", help="MLX weights precision or quantization")
    parser.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is not a terminal")
    parser.set_defaults(func=run)


def temperatures(start: float, increment: float) -> tuple[float, ...]:
    if increment <= 0:
        return (start,)
    steps = int(round((1.0 - start) / increment)) if start < 1.0 else 0
    return tuple(round(start + i * increment, 6) for i in range(steps + 1))


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
    }


def run(args: argparse.Namespace) -> int:
    formats = _formats(args)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        session = load_session(args.model, args.backend, args.dtype)
        if args.backend == "coreml" and session.info.did_fallback:  # asked for Core ML, got MLX: say why
            print("note: " + "; ".join(session.info.fallback_reasons), file=sys.stderr)
        failures = 0
        for path in args.files:
            try:
                transcribe_file(session, path, args, formats)
            except AudioError as exc:  # one unreadable file does not stop the others
                print(f"error: {exc}", file=sys.stderr)
                failures += 1
        return 1 if failures else 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _formats(args: argparse.Namespace) -> tuple[str, ...]:
    if args.output_format is None and args.output_dir is None:
        return ()
    return expand_formats(args.output_format or "txt")


def load_session(model: str, backend: str, dtype: str) -> Any:
    """A WhisperSession for `model` with the encoder backend and weights precision asked for."""
    from ..options import BackendPreference, ModelLoadingOptions, WhisperQuantization
    from ..whisper.session import WhisperSession

    options = ModelLoadingOptions.default().with_(
        backend=BackendPreference[BACKENDS[backend]], quantization=WhisperQuantization(dtype)
    )
    return WhisperSession.from_pretrained(model, options)


def transcribe_file(session: Any, path: str, args: argparse.Namespace, formats: tuple[str, ...]) -> None:
    """Print the file's text as it is decoded, then write each output format atomically."""
    if len(args.files) > 1:
        print(f"==> {path} <==", flush=True)
    bar = ProgressBar(Path(path).name, enabled=ProgressBar.wanted(args.progress))
    with bar:
        segments_iter, info = session.transcribe(path, progress=bar.update, **transcribe_options(args))
        segments = []
        for segment in segments_iter:
            segments.append(segment)
            bar.clear()  # so the text does not land in the middle of the bar's line
            print(segment.text.strip(), flush=True)
    for fmt in formats:
        target = output_path(path, args.output_dir or Path("."), fmt)
        write_transcript(target, fmt, segments, info)
