"""The command line: `mlx-audio-coreml COMMAND ...`. The only place in the package that prints.

Each command is a module here with `register(subparsers)`; a command whose module cannot be imported
(a missing optional dependency) is left out rather than breaking the others.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .. import cancel
from .._version import __version__
from ..errors import MlxAudioCoreMLError

_COMMANDS = ("info", "transcribe", "convert", "serve", "listen", "speak", "batch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlx-audio-coreml", description="On-device speech on MLX and Core ML.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:  # a command missing its optional dependency stays usable-others
            sub = subparsers.add_parser(name, help=f"(unavailable: {exc})")
            sub.set_defaults(func=lambda _args, exc=exc: _unavailable(exc))
            continue
        module.register(subparsers)
    return parser


def _unavailable(exc: ImportError) -> int:
    print(f"error: this command is unavailable: {exc}", file=sys.stderr)
    return 2


def _mlx_problem() -> str | None:
    """Why MLX cannot load here, in one line, or None. `info` runs anyway and reports it."""
    try:
        import mlx.core  # noqa: F401
    except (ImportError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "pip install 'mlx[cpu]'" if sys.platform.startswith("linux") else "pip install mlx"
        return f"MLX cannot load ({first}); install its backend for this machine: {hint}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "info" and (problem := _mlx_problem()) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        with _ctrl_c_noted():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        cancel.interrupt_handled()
        print("interrupted", file=sys.stderr)
        return 130
    except MlxAudioCoreMLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


@contextmanager
def _ctrl_c_noted() -> Iterator[None]:
    """Ctrl-C through `cancel.interrupt_handler` for the command's length (the same KeyboardInterrupt,
    noted, so one a C extension drops is raised again: cancel.py says why). Only where Ctrl-C raises
    KeyboardInterrupt now (Python's default): one ignored (a background job) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, cancel.interrupt_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
