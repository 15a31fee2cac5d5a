"""`mlx-audio-coreml convert whisper ...`: build a Core ML encoder package from MLX weights.

coremltools is imported only when the command runs, so the other commands never pay for it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, TextIO

LAYOUT_CHOICES = ("default", "whispercpp", "whisperkit")
PRECISION_CHOICES = ("float16", "float32")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("convert", help="convert a model's fixed-shape part to a Core ML package")
    kinds = parser.add_subparsers(dest="kind", required=True)
    whisper = kinds.add_parser("whisper", help="the Whisper audio encoder")
    whisper.add_argument("--model", required=True, help="a model folder, or a short name in the local store (tiny.en)")
    whisper.add_argument("--layout", choices=LAYOUT_CHOICES, default="default", help="package I/O layout")
    whisper.add_argument("--precision", choices=PRECISION_CHOICES, default="float16", help="compute precision")
    whisper.add_argument("--out", required=True, type=Path, help="folder to write the package (or companion folder) in")
    whisper.add_argument("--companion", action="store_true", help="write a publishable <name>-coreml/ folder")
    whisper.add_argument("--overwrite", action="store_true", help="replace an existing result")
    whisper.add_argument("--no-validate", dest="validate", action="store_false", help="skip the check against MLX")
    whisper.add_argument("--validation-audio", type=Path, help="audio for the check (default: a built-in test signal)")
    whisper.add_argument("--deployment-target", default="macOS13", help="minimum OS (macOS13, macOS14, iOS16 ...)")
    whisper.add_argument(
        "--batched-attention", action="store_true", help="one attention op for all heads instead of one per head"
    )
    whisper.add_argument(
        "--compiled",
        action="store_true",
        help="also write the package as a compiled-model folder (.mlmodelc: text MIL) beside it, for the portable runtime",
    )
    whisper.set_defaults(func=run_whisper)
    from .convert_kokoro import register as register_kokoro

    register_kokoro(kinds)


def run_whisper(args: argparse.Namespace) -> int:
    logging.getLogger("coremltools").setLevel(logging.ERROR)  # its import warns about the missing macOS runtime
    from ..convert import ConvertOptions, convert_whisper

    options = ConvertOptions(
        layout=args.layout,
        precision=args.precision,
        deployment_target=args.deployment_target,
        split_heads=not args.batched_attention,
        validate=None if args.validate else False,
        validation_audio=args.validation_audio,
        companion=args.companion,
        overwrite=args.overwrite,
    )
    bar = StageBar(sys.stderr)
    result = convert_whisper(args.model, args.out, options, progress=bar.update)
    bar.finish()
    print(f"wrote {result.companion_dir or result.package} in {result.seconds:.1f} s")
    if args.compiled:
        from ..convert.compiled import write_compiled

        compiled = write_compiled(result.package, result.package.with_suffix(".mlmodelc"), overwrite=args.overwrite)
        print(f"wrote {compiled} (text MIL, loadable by the portable runtime; Core ML compiles the .mlpackage itself)")
    if result.validation is not None:
        check = result.validation
        print(
            f"checked through the {check.runtime} runtime: relative error {check.relative_error:.2e} "
            f"(tolerance {check.tolerance:g}), max abs error {check.max_abs_error:.3g}"
        )
    else:
        print(f"not validated: {result.validation_note}")
    return 0


class StageBar:
    """One line per stage with a bar that fills as the stage's fraction grows (redrawn on a TTY)."""

    WIDTH = 24

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.stage: Any = None
        self.started = time.perf_counter()
        self.last_drawn = -1

    def update(self, stage: Any, fraction: float) -> None:
        if stage != self.stage:
            if self.stage is not None:
                self._draw(1.0, final=True)
            self.stage, self.started, self.last_drawn = stage, time.perf_counter(), -1
        self._draw(fraction, final=False)

    def finish(self) -> None:
        if self.stage is not None:
            self._draw(1.0, final=True)
            self.stage = None

    def _draw(self, fraction: float, final: bool) -> None:
        percent = int(fraction * 100)
        if not self.live and not final:
            return  # a log file gets one line per stage
        if percent == self.last_drawn and not final:
            return
        self.last_drawn = percent
        filled = int(fraction * self.WIDTH)
        elapsed = time.perf_counter() - self.started
        line = f"{self.stage.value:<30} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% {elapsed:5.1f}s"
        self.stream.write(("\r" + line + ("\n" if final else "")) if self.live else line + "\n")
        self.stream.flush()
