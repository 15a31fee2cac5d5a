"""`mlx-audio-coreml speak TEXT | --file F | -`: text to speech with Kokoro, written as wav/flac/mp3/pcm.

    mlx-audio-coreml speak "Hello there." --voice jf_alpha --speed 1.1 --out hello.wav
    mlx-audio-coreml speak --file chapter.txt --out chapter.flac --progress
    echo "həlˈO" | mlx-audio-coreml speak - --phonemes --out hi.mp3
    mlx-audio-coreml speak --list-voices

Everything that can be checked is checked before the model loads (the output format and its
encoder) or before any audio is made (text, voice, speed: the session's typed errors). Audio is
kept in memory and written once, atomically, at the end: an error, Ctrl-C or SIGTERM leaves no
output file (SIGTERM is turned into the same KeyboardInterrupt as Ctrl-C).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import cancel
from ..audio.write import FORMATS, check_format, format_from_path, mp3_encoder, write_audio
from ..errors import AudioEncoderUnavailable
from ..options import Component
from .progress_bar import ProgressBar
from .session_args import SessionFlags, add_session_flags, report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("speak", help="speak text with Kokoro (text to speech)")
    parser.add_argument("text", nargs="?", default=None, help="the text to speak, or - to read standard input")
    parser.add_argument("--file", type=Path, default=None, help="read the text from this UTF-8 file")
    parser.add_argument("--out", "-o", type=Path, default=None, help="output file (.wav, .flac, .mp3, .pcm)")
    parser.add_argument("--format", choices=FORMATS, default=None, help="output format (default: from --out's suffix)")
    parser.add_argument("--voice", default=None, help="voice name or blend 'a:0.7,b:0.3' (default: the model's first)")
    parser.add_argument("--speed", type=float, default=1.0, help="speaking speed, 0.5 to 2.0 (default 1.0)")
    parser.add_argument("--language", default="en-us", help="G2P language: en-us, en-gb, or any espeak-ng code")
    parser.add_argument(
        "--g2p", choices=("auto", "espeak", "misaki"), default="auto", help="phonemizer (auto: misaki if installed)"
    )
    parser.add_argument("--phonemes", action="store_true", help="the input is Kokoro phonemes (skip G2P)")
    parser.add_argument("--model", default="kokoro", help="model name under the models home, or a model folder")
    add_session_flags(parser, Component.VOCODER, dtype=False)
    parser.add_argument("--list-voices", action="store_true", help="print the installed voices and exit")
    parser.add_argument("--progress", action="store_true", help="draw the progress bar even when stderr is no terminal")
    parser.set_defaults(func=run)


class ChunkBar(ProgressBar):
    """The progress bar counted in chunks spoken (one model call each, up to 510 phoneme tokens)."""

    def render(self, done: float, total: float) -> str:
        fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        filled = int(round(fraction * self.width))
        label = f"{self.label} " if self.label else ""
        bar = "#" * filled + "-" * (self.width - filled)
        return f"{label}[{bar}] {fraction * 100:5.1f}% {int(done)}/{int(total)} chunks"


def run(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, cancel.interrupt_handler)
    try:
        if args.list_voices:
            for name in load_session(args).voices():
                print(name)
            return 0
        fmt = _output_format(args)
        if fmt is None:
            print("error: give --out FILE (or --list-voices)", file=sys.stderr)
            return 2
        source = _read_source(args)
        if source is None:
            return 2
        audio, rate = speak(load_session(args), source, args)
        write_audio(args.out, audio, rate, fmt)
        print(f"wrote {args.out} ({len(audio) / rate:.1f} s of audio)", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _output_format(args: argparse.Namespace) -> str | None:
    """The output format, checked (with its encoder) before anything is loaded; None without --out."""
    if args.out is None:
        return None
    fmt = check_format(args.format) if args.format else format_from_path(args.out)
    if fmt == "mp3" and mp3_encoder() is None:
        raise AudioEncoderUnavailable("mp3", "libsndfile has no MP3 encoder here and ffmpeg is not on PATH")
    return fmt


def _read_source(args: argparse.Namespace) -> str | None:
    """The text from the argument, standard input (-) or --file; None (after a message) if not exactly one."""
    if (args.text is None) == (args.file is None):
        print("error: give the text, - (standard input) or --file FILE, exactly one of them", file=sys.stderr)
        return None
    if args.file is not None:
        return args.file.read_text(encoding="utf-8")
    return sys.stdin.read() if args.text == "-" else args.text


def load_session(args: argparse.Namespace) -> Any:
    """A KokoroSession for --model, with the session flags asked for (--backend, --runtime, ...)."""
    from ..kokoro.session import KokoroSession

    flags = SessionFlags.from_args(args, Component.VOCODER)
    session = KokoroSession.from_pretrained(args.model, flags.options(), language=args.language, g2p=args.g2p)
    report(session.info, flags)  # what runs the vocoder and why; CoreMLRequired under --strict
    return session


def speak(session: Any, source: str, args: argparse.Namespace) -> tuple[np.ndarray, int]:
    """All of `source` spoken, chunk by chunk, the bar counting chunks: (samples, sample rate)."""
    inputs = {"phonemes": source} if args.phonemes else {"text": source}
    pieces = session.stream(voice=args.voice, speed=args.speed, merge=True, **inputs)
    audio: list[np.ndarray] = []
    with ChunkBar("speak", enabled=ProgressBar.wanted(args.progress)) as bar:
        bar.update(0, 1)
        for piece in pieces:
            audio.append(piece.audio)
            bar.update(piece.index + 1, piece.total)
    return np.concatenate(audio), session.sample_rate
