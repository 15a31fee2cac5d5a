"""Zipped compiled models (`ggml-<size>-encoder.mlmodelc.zip`, as whisper.cpp publishes its
encoders): unpacked once into the compiled cache, then used like any .mlmodelc.

The archive must hold exactly one `<name>.mlmodelc/` folder (macOS's `__MACOSX/` resource forks
are skipped). Members that would land outside it (absolute paths, `..`) or that are links are
refused. Unpacking goes through store/staging.py, so an interrupted unpack leaves nothing behind;
the cache folder is keyed on the archive's path, size and modification time.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path, PurePosixPath

from .. import config
from ..errors import PackageError
from .staging import staged_path

ARCHIVE_SUFFIX = ".mlmodelc.zip"


def is_compiled_archive(path: Path) -> bool:
    return Path(path).name.endswith(ARCHIVE_SUFFIX) and Path(path).is_file()


def unpacked_path(archive: Path, cache_dir: Path | None = None) -> Path:
    """Where `archive`'s model is (or will be) unpacked: one folder per archive path and content."""
    archive = Path(archive).resolve()
    info = archive.stat()
    digest = hashlib.sha256(f"{archive}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:16]
    name = archive.name[: -len(".zip")]
    return (cache_dir or config.compiled_dir()) / f"{name[: -len('.mlmodelc')]}-{digest}" / name


def unpack_compiled(archive: Path, cache_dir: Path | None = None) -> Path:
    """The .mlmodelc inside `archive`, unpacked into the cache on first use; PackageError if the
    archive is not a zip holding one compiled model."""
    archive = Path(archive)
    destination = unpacked_path(archive, cache_dir)
    if destination.is_dir():
        return destination
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = _model_members(archive, zipped)
            try:
                with staged_path(destination) as built:
                    for info, relative in members:
                        target = built.joinpath(*relative.parts)
                        if info.is_dir():
                            target.mkdir(parents=True, exist_ok=True)
                            continue
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with zipped.open(info) as source, open(target, "wb") as out:
                            while chunk := source.read(1 << 20):
                                out.write(chunk)
            except FileExistsError:
                pass  # another process unpacked the same archive first: theirs is as good
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageError(str(archive), f"cannot unpack the compiled model: {exc}") from exc
    return destination


def _model_members(archive: Path, zipped: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Each member inside the one top-level `.mlmodelc/` folder, with its path below that folder."""
    members = []
    tops = set()
    for info in zipped.infolist():
        path = PurePosixPath(info.filename)
        if not path.parts or path.parts[0] == "__MACOSX":
            continue
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
            raise PackageError(str(archive), f"archive member {info.filename!r} points outside the model")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise PackageError(str(archive), f"archive member {info.filename!r} is a link")
        tops.add(path.parts[0])
        members.append((info, PurePosixPath(*path.parts[1:])))
    if len(tops) != 1 or not next(iter(tops)).endswith(".mlmodelc"):
        raise PackageError(str(archive), f"expected one .mlmodelc folder in the archive, found {sorted(tops)}")
    return [(info, relative) for info, relative in members if relative.parts]
