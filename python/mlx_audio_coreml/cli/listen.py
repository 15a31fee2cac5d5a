"""`mlx-audio-coreml listen`: live transcription from the microphone or from raw PCM on stdin.

    mlx-audio-coreml listen                          # microphone (needs the `mic` extra: sounddevice)
    ffmpeg -i URL -f s16le -ar 16000 -ac 1 - | mlx-audio-coreml listen -

Confirmed text is printed as it is confirmed; on a terminal the tentative rest of the current
hypothesis follows it, dimmed, and is redrawn as it changes. Each utterance ends with a newline.
"""

from __future__ import annotations

import argparse
import queue
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from ..options import Component
from .session_args import SessionFlags, add_session_flags
from .transcribe import load_session

CHUNK_SAMPLES = 1600  # 100 ms at 16 kHz
_DIM, _RESET, _CLEAR = "\x1b[2m", "\x1b[0m", "\x1b[K"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("listen", help="live transcription from the microphone or stdin PCM")
    parser.add_argument(
        "source", nargs="?", default=None, help="'-': 16 kHz mono s16le PCM on stdin (default: microphone)"
    )
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--language", default=None)
    parser.add_argument("--step", type=float, default=1.0, help="seconds of new audio between hypotheses")
    parser.add_argument("--min-silence-ms", type=int, default=600, help="silence that ends an utterance")
    add_session_flags(parser, Component.ENCODER, dtype=True)
    parser.add_argument("--timestamps", action="store_true", help="prefix each utterance with its start time")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..whisper.streaming import ListenOptions, listen

    chunks = stdin_chunks(sys.stdin.buffer) if args.source == "-" else microphone_chunks()
    session = load_session(args.model, flags=SessionFlags.from_args(args, Component.ENCODER))
    transcribe = {"language": args.language} if args.language else {}
    options = ListenOptions(step_s=args.step, min_silence_ms=args.min_silence_ms, transcribe=transcribe)
    show = Display(sys.stdout, sys.stdout.isatty(), args.timestamps)
    for event in listen(session, chunks, options):
        show(event)
    return 0


class Display:
    """Confirmed words as they come; on a terminal, the tentative rest dimmed after them."""

    def __init__(self, out: Any, tty: bool, timestamps: bool) -> None:
        self.out, self.tty, self.timestamps = out, tty, timestamps
        self.line = ""  # confirmed text of the current utterance

    def __call__(self, event: Any) -> None:
        if event.kind == "confirmed":
            prefix = f"[{event.start:8.2f}]" if self.timestamps and not self.line else ""
            piece = prefix + (" " if self.line or prefix else "") + event.text
            self.line += piece
            self._show(piece, tentative="")
        elif event.kind == "tentative":
            self._show("", tentative=event.text)
        elif event.kind == "final":
            self._show("", tentative="")
            self.out.write("\n")
            self.line = ""
        self.out.flush()

    def _show(self, piece: str, tentative: str) -> None:
        if not self.tty:  # a pipe or file gets confirmed text only
            self.out.write(piece)
            return
        rest = f" {_DIM}{tentative}{_RESET}" if tentative else ""
        self.out.write(f"\r{self.line}{rest}{_CLEAR}")  # redraw: confirmed, then the dimmed rest


def stdin_chunks(stream: BinaryIO, samples: int = CHUNK_SAMPLES) -> Iterator[np.ndarray]:
    """16-bit little-endian mono PCM from a byte stream, in pieces of `samples`."""
    while data := stream.read(samples * 2):
        yield np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def microphone_chunks(samples: int = CHUNK_SAMPLES) -> Iterator[np.ndarray]:
    """The default input device at 16 kHz mono (sounddevice), until Ctrl-C."""
    try:
        import sounddevice  # pyright: ignore[reportMissingImports]  (the `mic` extra)
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library itself is missing
        raise SystemExit(
            f"error: the microphone needs sounddevice (pip install 'mlx-audio-coreml[mic]'): {exc}"
        ) from exc
    pieces: queue.Queue[np.ndarray] = queue.Queue()
    callback = lambda data, _frames, _time, _status: pieces.put(data[:, 0].copy())  # noqa: E731
    with sounddevice.InputStream(samplerate=16000, channels=1, dtype="float32", blocksize=samples, callback=callback):
        print("listening (Ctrl-C to stop) ...", file=sys.stderr)
        while True:
            yield pieces.get()
