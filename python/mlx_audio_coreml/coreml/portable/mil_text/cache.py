"""A parsed text program kept as its MIL proto, so each compiled model's text is parsed once.

Parsing costs about half a millisecond a line on this machine's loaded CPU (tiny.en's encoder,
549 lines: 0.16-0.4 s; a large encoder has ~20 times the lines), while the proto of the same
program reads back in milliseconds. Entries are keyed on the SHA-256 of model.mil and the parser's
version, kept under the compiled-model cache (`config.compiled_dir()/text-mil/`), written
atomically; an entry that cannot be written or read is simply parsed again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from google.protobuf.message import DecodeError

from .... import config
from .._proto import MIL_pb2
from .parser import parse_program

PARSER_VERSION = 1  # bump when the parser's output for the same text changes


def cache_file(text: str, cache_dir: Path | None = None) -> Path:
    digest = hashlib.sha256(f"{PARSER_VERSION}\0{text}".encode()).hexdigest()
    return (cache_dir or config.compiled_dir()) / "text-mil" / f"{digest}.pb"


def parse_cached(text: str, path: Path | str, cache_dir: Path | None = None) -> MIL_pb2.Program:
    """`parse_program(text, path)`, or the program parsed before from the same text."""
    entry = cache_file(text, cache_dir)
    try:
        return MIL_pb2.Program.FromString(entry.read_bytes())
    except (OSError, DecodeError):
        pass  # not parsed yet, or an unreadable entry: parse (and rewrite it)
    program = parse_program(text, path)
    _store(entry, program.SerializeToString())
    return program


def _store(entry: Path, data: bytes) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".", suffix=".partial", dir=entry.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(temporary, entry)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only or full cache only costs the next load a parse
