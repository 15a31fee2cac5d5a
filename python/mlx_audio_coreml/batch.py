"""Transcribe a manifest of many audio files on Ray Data, on a laptop's local Ray or a cluster.

    report = run_batch("files.txt", "out/", BatchSettings(model="tiny.en", actors=2))
    mlx-audio-coreml batch files.txt --out out/ [--address ray://head:10001]

The manifest lists one audio path per line (a path every worker can read: a shared disk on a
cluster), or is JSON lines with a "path" field. Ray Data reads, decodes and resamples each file to 16 kHz on CPU tasks, then
`map_batches` sends batches of files to a pool of actors, each holding ONE `WhisperSession`
(on a GPU with `gpus_per_actor`), which transcribes its batch's VAD chunks together
(whisper/batched.py). The driver writes one row per file as results arrive: JSON lines
(`results.jsonl`, appended and flushed per batch) or Parquet (one part file per batch). A run
that stops keeps what it wrote; the next run over the same folder skips the files already there.
No scheduler of our own: Ray places the tasks and actors.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ManifestError, RayUnavailable

RESULTS_JSONL = "results.jsonl"
PARQUET_GLOB = "part-*.parquet"
FORMATS = ("jsonl", "parquet")


@dataclass(frozen=True)
class BatchSettings:
    """How a batch run transcribes: the model, the Ray pool and the decoding options."""

    model: str = "tiny.en"  # short name, hub repo id or folder (the same on every worker)
    actors: int = 1  # sessions (actors) transcribing at once
    gpus_per_actor: float = 0.0  # 0: actors run on CPUs; 1: one GPU each (MLX's CUDA backend)
    files_per_batch: int = 4  # files handed to an actor at once
    chunk_batch_size: int = 8  # VAD chunks decoded together inside an actor
    output_format: str = "jsonl"  # or "parquet"
    options: dict[str, Any] = field(default_factory=dict)  # transcribe keywords (language, beam_size ...)


@dataclass(frozen=True)
class BatchReport:
    """What a run did: files in the manifest, skipped as already done, and transcribed now."""

    total: int
    skipped: int
    transcribed: int
    out_dir: str


def read_manifest(path: str | Path) -> list[str]:
    """The audio paths a manifest lists, in order, without duplicates."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ManifestError(str(path), f"cannot be read ({exc.strerror or exc})") from exc
    paths: list[str] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                line = str(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ManifestError(str(path), f"line {number} is not JSON with a 'path' field") from exc
        if line not in paths:
            paths.append(line)
    if not paths:
        raise ManifestError(str(path), "lists no audio files")
    return paths


def done_paths(out_dir: str | Path) -> set[str]:
    """Files already transcribed into `out_dir` (either format), so a new run skips them."""
    out = Path(out_dir)
    done: set[str] = set()
    jsonl = out / RESULTS_JSONL
    if jsonl.is_file():
        for line in jsonl.read_text().splitlines():
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError):
                continue  # a line cut short by a stop mid-write: that file is done again
    parts = sorted(out.glob(PARQUET_GLOB))
    if parts:
        import pyarrow.parquet as pq

        for part in parts:
            done.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
    return done


def decode_file(row: dict[str, Any]) -> dict[str, Any]:
    """A Ray task on a CPU worker: read one file, decode and resample it to 16 kHz mono float32
    (carried as bytes: files differ in length, and Ray's batches want one shape per column)."""
    from .audio.stream import open_stream
    from .whisper.audio import SAMPLE_RATE

    samples = open_stream(row["path"]).read_all(SAMPLE_RATE)
    return {"path": row["path"], "audio": np.ascontiguousarray(samples, dtype=np.float32).tobytes()}


class TranscribeActor:
    """One actor of the pool: loads one session, then transcribes batches of decoded files."""

    def __init__(self, model: str, options: dict[str, Any], chunk_batch_size: int) -> None:
        from .whisper.session import WhisperSession

        self.session = WhisperSession.from_pretrained(model)
        self.options = options
        self.chunk_batch_size = chunk_batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from .whisper.batched import transcribe_files

        audios = [np.frombuffer(blob, dtype=np.float32) for blob in batch["audio"]]
        results = transcribe_files(self.session, audios, batch_size=self.chunk_batch_size, **self.options)
        return result_columns(list(batch["path"]), results)


def result_columns(paths: list[str], results: list[tuple[list[Any], Any]]) -> dict[str, list[Any]]:
    """One row per file: path, text, language, duration and the segments as JSON."""
    return {
        "path": paths,
        "text": ["".join(s.text for s in segments).strip() for segments, _ in results],
        "language": [info.language for _, info in results],
        "duration": [float(info.duration) for _, info in results],
        "segments": [json.dumps([s.to_dict() for s in segments]) for segments, _ in results],
    }


def run_batch(
    manifest: str | Path, out_dir: str | Path, settings: BatchSettings | None = None, *, address: str | None = None
) -> BatchReport:
    """Transcribe every file of `manifest` not yet in `out_dir`; Ray at `address` (None: the
    running one, else a new local instance; "ray://host:10001" for a cluster)."""
    settings = settings or BatchSettings()
    if settings.output_format not in FORMATS:
        raise ValueError(f"output_format {settings.output_format!r}: choose one of {FORMATS}")
    try:
        import ray  # pyright: ignore[reportMissingImports]  (the `ray` extra)
    except ImportError as exc:
        raise RayUnavailable(str(exc)) from exc
    paths = read_manifest(manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = done_paths(out)
    todo = [p for p in paths if p not in done]
    if todo:
        if not ray.is_initialized():
            ray.init(address=address)
        write_rows(_results(ray, todo, settings), out, settings.output_format)
    return BatchReport(len(paths), len(paths) - len(todo), len(todo), str(out))


def _results(ray: Any, todo: list[str], settings: BatchSettings) -> Iterator[dict[str, list[Any]]]:
    dataset = ray.data.from_items([{"path": p} for p in todo]).map(decode_file)
    transcribed = dataset.map_batches(
        TranscribeActor,
        fn_constructor_kwargs={
            "model": settings.model,
            "options": settings.options,
            "chunk_batch_size": settings.chunk_batch_size,
        },
        batch_size=settings.files_per_batch,
        concurrency=settings.actors,
        num_gpus=settings.gpus_per_actor,
        batch_format="numpy",
    )
    for batch in transcribed.iter_batches(batch_size=None, batch_format="numpy"):
        yield {name: [_plain(v) for v in values] for name, values in batch.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def write_rows(batches: Iterable[dict[str, list[Any]]], out: Path, output_format: str) -> None:
    """Write each batch as it arrives, so a stopped run keeps every finished batch."""
    for batch in batches:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        if output_format == "jsonl":
            with (out / RESULTS_JSONL).open("a") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in rows)
                handle.flush()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            target = out / f"part-{uuid.uuid4().hex[:12]}.parquet"
            temporary = target.with_suffix(".tmp")  # renamed when whole: the glob never sees half a part
            pq.write_table(pa.Table.from_pylist(rows), temporary)
            temporary.rename(target)
