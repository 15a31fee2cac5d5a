"""Transcript files: txt, srt, vtt, json and tsv, each written atomically.

A file is rendered in full, written to a temporary file in the destination's folder, flushed to
disk (fsync) and renamed over the destination in one step, so a reader sees the old file or the
new one, never a part; an interrupted write removes its temporary file. Several formats of one
transcript are written together: every temporary file first, renames only once all are on disk,
so a full disk leaves none of them rather than a set that looks complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from ..errors import InvalidOption, OutputWriteError
from .segments import Segment, TranscriptionInfo, join_text

FORMATS = ("txt", "srt", "vtt", "json", "tsv")


def format_timestamp(seconds: float, *, decimal_marker: str = ".", always_include_hours: bool = True) -> str:
    """`hh:mm:ss.mmm` (srt uses a comma for the marker), rounded to the millisecond."""
    if seconds < 0:
        raise ValueError(f"a timestamp cannot be negative: {seconds}")
    milliseconds = round(seconds * 1000.0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1_000)
    prefix = f"{hours:02d}:" if always_include_hours or hours else ""
    return f"{prefix}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def _cue_text(segment: Segment) -> str:
    return segment.text.strip().replace("-->", "->")  # "-->" would end a cue's timing line


def format_txt(segments: Sequence[Segment], info: TranscriptionInfo | None = None) -> str:
    return "".join(segment.text.strip() + "\n" for segment in segments)


def format_srt(segments: Sequence[Segment], info: TranscriptionInfo | None = None) -> str:
    cues = []
    for number, segment in enumerate(segments, start=1):
        start = format_timestamp(segment.start, decimal_marker=",")
        end = format_timestamp(segment.end, decimal_marker=",")
        cues.append(f"{number}\n{start} --> {end}\n{_cue_text(segment)}\n")
    return "\n".join(cues)


def format_vtt(segments: Sequence[Segment], info: TranscriptionInfo | None = None) -> str:
    cues = [f"{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{_cue_text(s)}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def format_tsv(segments: Sequence[Segment], info: TranscriptionInfo | None = None) -> str:
    """Start and end in integer milliseconds, then the text (tabs in it become spaces)."""
    rows = ["start\tend\ttext\n"]
    for s in segments:
        rows.append(f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{s.text.strip().replace(chr(9), ' ')}\n")
    return "".join(rows)


def format_json(segments: Sequence[Segment], info: TranscriptionInfo | None = None) -> str:
    """{"text", "language", "language_probability", "duration", "segments": [...], "info": {...}}."""
    document = {
        "text": join_text(segments),
        "language": info.language if info else None,
        "language_probability": info.language_probability if info else None,
        "duration": info.duration if info else None,
        "segments": [s.to_dict() for s in segments],
        "info": info.to_dict() if info else None,
    }
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


FORMATTERS: dict[str, Callable[[Sequence[Segment], TranscriptionInfo | None], str]] = {
    "txt": format_txt,
    "srt": format_srt,
    "vtt": format_vtt,
    "json": format_json,
    "tsv": format_tsv,
}


def expand_formats(output_format: str) -> tuple[str, ...]:
    """ "all" or a comma-separated list -> formats, checked."""
    if output_format == "all":
        return FORMATS
    names = tuple(dict.fromkeys(name.strip() for name in output_format.split(",") if name.strip()))
    unknown = [n for n in names if n not in FORMATTERS]
    if unknown or not names:
        raise InvalidOption("output_format", output_format, f"choose from {FORMATS} or 'all'")
    return names


def output_path(audio_path: str | Path, output_dir: str | Path, fmt: str) -> Path:
    """<output_dir>/<audio file name without suffix>.<fmt>."""
    return Path(output_dir) / f"{Path(audio_path).stem}.{fmt}"


def write_atomic(path: str | Path, content: str) -> Path:
    """Write `content` to `path` so that `path` is either untouched or complete."""
    return write_all_atomic({Path(path): content})[0]


def write_all_atomic(contents: dict[Path, str]) -> list[Path]:
    """Write every file or none: all are written to temporary files (a full disk fails here, with
    nothing renamed), and only then renamed into place, one after the other."""
    temps: dict[Path, str] = {}
    try:
        for path, content in contents.items():
            temps[path] = _write_temporary(Path(path), content)
        for path, temp_name in temps.items():
            try:
                os.replace(temp_name, path)
            except OSError as exc:
                raise OutputWriteError(str(path), exc.strerror or str(exc)) from exc
    finally:  # KeyboardInterrupt too: never leave a temporary file behind
        for temp_name in temps.values():
            with suppress(FileNotFoundError):
                os.unlink(temp_name)
    for folder in {Path(path).parent for path in contents}:
        _fsync_directory(folder)
    return [Path(path) for path in contents]


def _write_temporary(path: Path, content: str) -> str:
    """A flushed, fsynced temporary file beside `path` holding `content`; OutputWriteError if not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputWriteError(str(path), exc.strerror or str(exc)) from exc
    try:
        os.chmod(temp_name, _file_mode(path))  # mkstemp makes 0600; a transcript is an ordinary file
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException as exc:
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise OutputWriteError(str(path), exc.strerror or str(exc)) from exc
        raise
    return temp_name


def _file_mode(path: Path) -> int:
    """The mode of the file being replaced, else 0666 less the umask (as open() would give)."""
    with suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where directories cannot be opened."""
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_transcript(
    path: str | Path,
    fmt: str,
    segments: Sequence[Segment],
    info: TranscriptionInfo | None = None,
) -> Path:
    """Render `segments` as `fmt` and write them atomically to `path`."""
    return write_transcripts({fmt: Path(path)}, segments, info)[0]


def write_transcripts(
    targets: dict[str, Path],
    segments: Sequence[Segment],
    info: TranscriptionInfo | None = None,
) -> list[Path]:
    """Render `segments` in each format of `targets` (format -> path) and write all of them or,
    when one cannot be written, none (OutputWriteError names it)."""
    unknown = [fmt for fmt in targets if fmt not in FORMATTERS]
    if unknown:
        raise InvalidOption("output_format", unknown[0], f"choose from {FORMATS}")
    segments = list(segments)
    return write_all_atomic({Path(path): FORMATTERS[fmt](segments, info) for fmt, path in targets.items()})
