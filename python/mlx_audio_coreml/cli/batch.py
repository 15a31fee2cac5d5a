"""`mlx-audio-coreml batch MANIFEST --out DIR`: transcribe many files on Ray Data (batch.py)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..batch import FORMATS, BatchSettings, run_batch


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("batch", help="transcribe a manifest of audio files on Ray (local or a cluster)")
    parser.add_argument("manifest", help="text file: one audio path per line (or JSON lines with 'path')")
    parser.add_argument("--out", required=True, help="folder for the results; files already there are skipped")
    parser.add_argument("--address", default=None, help="Ray to join (ray://head:10001, auto); default: a local Ray")
    parser.add_argument("--model", default="tiny.en", help="short name, hub repo id or model folder (on every worker)")
    parser.add_argument("--actors", type=int, default=1, help="sessions transcribing at once (one per actor)")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (0: CPU)")
    parser.add_argument("--files-per-batch", type=int, default=4, help="files handed to an actor at once")
    parser.add_argument("--batch-size", type=int, default=8, help="VAD chunks decoded together in an actor")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="results.jsonl or Parquet parts")
    parser.add_argument("--language", default=None, help="language code; default: detect per file")
    parser.add_argument("--beam-size", type=int, default=None, help="beams at temperature 0 (1: greedy; default 5)")
    parser.add_argument("--word-timestamps", action="store_true", help="time each word (in the segments column)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = {"language": args.language, "beam_size": args.beam_size, "word_timestamps": args.word_timestamps or None}
    settings = BatchSettings(
        model=args.model, actors=args.actors, gpus_per_actor=args.gpus_per_actor, files_per_batch=args.files_per_batch,
        chunk_batch_size=args.batch_size, output_format=args.format,
        options={k: v for k, v in options.items() if v is not None},
    )  # fmt: skip
    report = run_batch(args.manifest, args.out, settings, address=args.address)
    print(
        json.dumps(
            {"files": report.total, "skipped": report.skipped, "transcribed": report.transcribed, "out": report.out_dir}
        )
    )
    print(
        f"{report.transcribed} transcribed, {report.skipped} already done, results in {report.out_dir}", file=sys.stderr
    )
    return 0
