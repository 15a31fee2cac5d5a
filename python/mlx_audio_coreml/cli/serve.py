"""`mlx-audio-coreml serve`: the OpenAI-compatible audio API on uvicorn, loopback by default.

mlx-audio-coreml serve --model tiny.en [--tts-model kokoro] [--api-key KEY] [--port 8000]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import config
from ..options import Component
from .session_args import SessionFlags, add_session_flags
from .transcribe import load_session


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="serve OpenAI's audio API (transcriptions, translations, speech)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--model", action="append", default=None, help="Whisper model to serve (repeatable; default tiny.en)"
    )
    parser.add_argument("--tts-model", default=None, help="text-to-speech model to serve (kokoro)")
    parser.add_argument(
        "--api-key", default=config.setting(config.API_KEY) or None,
        help="require 'Authorization: Bearer KEY' on /v1 (default: $MLX_AUDIO_COREML_API_KEY; none: open)",
    )  # fmt: skip
    add_session_flags(parser, Component.ENCODER, dtype=True)  # the Whisper encoder's; vocoder=PATH for --tts-model
    parser.add_argument("--max-upload-mb", type=float, default=25.0, help="largest accepted request body")
    parser.add_argument("--max-queued", type=int, default=8, help="requests waiting per model before 429")
    parser.add_argument("--workers", type=int, default=1, help="requests run at once per model")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..serve import ServedModels, ServeLimits, create_app
    from ..serve.runner import config

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"warning: serving on {args.host} without --api-key: anyone who can reach it may use it", file=sys.stderr)
    names = args.model or ["tiny.en"]
    transcription = {}
    for name in names:
        print(f"loading {name} ...", file=sys.stderr)
        transcription[name] = load_session(name, flags=SessionFlags.from_args(args, Component.ENCODER))
    speech = {args.tts_model: _load_tts(args.tts_model, args)} if args.tts_model else {}
    models = ServedModels(transcription=transcription, speech=speech)
    limits = ServeLimits(
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_queued=args.max_queued,
        workers=args.workers, api_key=args.api_key,
    )  # fmt: skip
    try:
        uvicorn.Server(
            config(create_app(models, limits), args.host, args.port, limits.shutdown_grace_s, args.log_level)
        ).run()
    finally:
        models.close()
    return 0


def _load_tts(name: str, args: argparse.Namespace) -> Any:
    try:
        from ..kokoro.session import KokoroSession
    except ImportError as exc:
        raise SystemExit(f"error: text to speech is not available in this build ({exc})") from exc
    print(f"loading {name} ...", file=sys.stderr)
    given = SessionFlags.from_args(args, Component.ENCODER)  # --runtime and a vocoder=PATH package apply here too
    return KokoroSession.from_pretrained(
        name, SessionFlags(Component.VOCODER, runtime=given.runtime, packages=given.packages).options()
    )
