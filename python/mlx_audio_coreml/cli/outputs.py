"""Where a batch's transcripts go, decided and checked before the model loads.

Everything that can be known before decoding is checked here, so an hour of work is never lost to
a bad `--output-dir`: the folder is made if missing and a file is created and removed in it; an
input named twice is refused; inputs that are missing, folders, devices, unreadable or claim an
implausible sample rate are reported at once (their headers are read, no samples).
Two inputs with the same file name (a/talk.wav, b/talk.mp3) never overwrite each other: the first
keeps `talk.*`, later ones get `talk-2.*`, `talk-3.*` ... (by their order on the command line, and
never a name another input owns), and the command says so.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..audio.stream import open_stream
from ..errors import DuplicateInput, MlxAudioCoreMLError, OutputWriteError


@dataclass(frozen=True)
class OutputPlan:
    """Each input's output path per format; `renamed` holds (input, stem) where a stem was changed."""

    targets: dict[str, dict[str, Path]] = field(default_factory=dict)
    renamed: tuple[tuple[str, str], ...] = ()

    def notes(self) -> list[str]:
        return [
            f"{name} shares its file name with an earlier input: its outputs are named {stem}.*"
            for name, stem in self.renamed
        ]


def prepare_output_dir(output_dir: Path) -> Path:
    """`output_dir`, made if missing and proven writable, or OutputWriteError saying why not."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputWriteError(str(output_dir), "is a file, not a folder; give --output-dir a folder")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test.", dir=output_dir)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise OutputWriteError(str(output_dir), f"{exc.strerror or exc}; choose a folder you can write to") from exc
    return output_dir


def distinct_inputs(files: list[str]) -> list[str]:
    """`files` as given, or DuplicateInput for the first one named twice (as the same file)."""
    seen: set[str] = set()
    for name in files:
        key = os.path.realpath(name)
        if key in seen:
            raise DuplicateInput(name)
        seen.add(key)
    return files


def readable_inputs(files: list[str]) -> tuple[list[str], list[tuple[str, MlxAudioCoreMLError]]]:
    """(inputs whose header reads with a plausible sample rate, (input, error) for the others)."""
    good, bad = [], []
    for name in files:
        try:
            open_stream(Path(name))  # the header only: no sample is decoded here
        except MlxAudioCoreMLError as exc:
            bad.append((name, exc))
        else:
            good.append(name)
    return good, bad


def plan_outputs(files: list[str], output_dir: Path, formats: tuple[str, ...]) -> OutputPlan:
    """Distinct output paths for every input: same-named inputs get `-2`, `-3` ... suffixes."""
    if not formats:
        return OutputPlan({name: {} for name in files})
    wanted = [Path(name).stem for name in files]
    taken: set[str] = set()
    targets: dict[str, dict[str, Path]] = {}
    renamed = []
    for index, (name, stem) in enumerate(zip(files, wanted)):
        chosen, number = stem, 1
        # a later input's own name is reserved too, so `talk-2.wav` keeps its name
        while chosen in taken or (chosen != stem and chosen in wanted[index + 1 :]):
            number += 1
            chosen = f"{stem}-{number}"
        taken.add(chosen)
        if chosen != stem:
            renamed.append((name, chosen))
        targets[name] = {fmt: output_dir / f"{chosen}.{fmt}" for fmt in formats}
    return OutputPlan(targets, tuple(renamed))
