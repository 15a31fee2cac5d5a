"""`mlx-audio-coreml convert kokoro ...`: the Kokoro vocoder as one Core ML package per frame bucket."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any


def _buckets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"buckets are comma-separated frame counts, not {text!r}") from None


def register(kinds: Any) -> None:
    """Add the `kokoro` kind to `convert`'s subparsers."""
    from ..kokoro.vocoder_bucket import DEFAULT_BUCKETS  # not convert/: that imports coremltools

    kokoro = kinds.add_parser("kokoro", help="the Kokoro decoder (vocoder), one package per frame bucket")
    kokoro.add_argument("--model", default="kokoro", help="a Kokoro folder, or a name in the local store (kokoro)")
    kokoro.add_argument("--precision", choices=("float16", "float32"), default="float32", help="compute precision")
    kokoro.add_argument(
        "--buckets", type=_buckets, default=DEFAULT_BUCKETS,
        help=f"text-frame buckets, 40 a second (default {','.join(map(str, DEFAULT_BUCKETS))})",
    )  # fmt: skip
    kokoro.add_argument("--out", required=True, type=Path, help="folder to write <name>-coreml/ in")
    kokoro.add_argument("--overwrite", action="store_true", help="replace an existing result")
    kokoro.add_argument("--no-validate", dest="validate", action="store_false", help="skip the check against MLX")
    kokoro.add_argument("--deployment-target", default="macOS13", help="minimum OS (macOS13, macOS14, iOS16 ...)")
    kokoro.set_defaults(func=run_kokoro)


def run_kokoro(args: argparse.Namespace) -> int:
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    from ..convert.kokoro import KokoroConvertOptions, convert_kokoro
    from .convert import StageBar

    options = KokoroConvertOptions(
        precision=args.precision, buckets=args.buckets, deployment_target=args.deployment_target,
        validate=args.validate, overwrite=args.overwrite,
    )  # fmt: skip
    bar = StageBar(sys.stderr)
    result = convert_kokoro(args.model, args.out, options, progress=bar.update)
    bar.finish()
    print(f"wrote {result.folder} ({len(result.packages)} buckets) in {result.seconds:.1f} s")
    for frames, check in sorted(result.validations.items()):
        print(
            f"bucket {frames}: {check.runtime} runtime vs MLX, SNR {check.snr_db:.1f} dB ({check.chunk_frames} frames)"
        )
    return 0
