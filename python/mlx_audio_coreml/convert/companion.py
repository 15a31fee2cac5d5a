"""Write a companion-repo folder `<name>-coreml/`, ready to publish beside the MLX weights repo.

Contents:
    AudioEncoder.mlpackage/   the converted encoder
    README.md                 a model card: source, layout, precision, how it was checked
    manifest.json             what is inside and the sha256 of every other file

The manifest lets a downloader find the encoder without guessing (`components.encoder.path`) and
detect a partial or corrupt download (`files`: relative path -> sha256), and ties the package to the
exact weights it was built from (`source.weights_sha256`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from .validate import ValidationReport

ENCODER_PACKAGE_NAME = "AudioEncoder.mlpackage"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "mlx-audio-coreml-companion"
MANIFEST_VERSION = 1


def companion_name(model_name: str) -> str:
    """`openai/whisper-tiny.en` -> `whisper-tiny.en-coreml`; a folder path -> `<folder>-coreml`."""
    return f"{Path(model_name.rstrip('/')).name}-coreml"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path, skip: frozenset[str] = frozenset({MANIFEST_NAME})) -> dict[str, str]:
    """Relative POSIX path -> sha256 for every file under `folder`, sorted, skipping `skip`."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative not in skip:
            hashes[relative] = sha256_file(path)
    return hashes


def write_companion_files(
    folder: Path,
    metadata: Mapping[str, str],
    validation: ValidationReport | None,
    validation_note: str,
) -> None:
    """Write README.md and manifest.json into `folder`, which already holds the encoder package."""
    (folder / "README.md").write_text(model_card(metadata, validation, validation_note), encoding="utf-8")
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "source": {
            "model": metadata["mlx_audio_coreml.source_model"],
            "revision": metadata["mlx_audio_coreml.source_revision"],
            "weights_sha256": metadata["mlx_audio_coreml.weights_sha256"],
        },
        "components": {
            "encoder": {
                "path": ENCODER_PACKAGE_NAME,
                "layout": metadata["mlx_audio_coreml.layout"],
                "precision": metadata["mlx_audio_coreml.precision"],
            }
        },
        "files": file_hashes(folder),
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def model_card(metadata: Mapping[str, str], validation: ValidationReport | None, validation_note: str) -> str:
    """A short Hugging Face style model card for the companion repo."""
    get = metadata.get
    source = get("mlx_audio_coreml.source_model", "?")
    if validation is not None:
        checked = (
            f"Run through the `{validation.runtime}` runtime (the ML Program executed with MLX) and compared "
            f"with the float32 MLX encoder on the same mel: relative error {validation.relative_error:.2e} "
            f"(tolerance {validation.tolerance:g}). Not yet run on Core ML or the Neural Engine by this tool."
        )
    else:
        checked = f"Not validated: {validation_note or 'validation was skipped'}."
    return f"""---
library_name: mlx-audio-coreml
tags: [whisper, coreml, speech-recognition]
---

# {source}: Core ML audio encoder

The Whisper audio encoder of `{source}` as a Core ML ML Program, built by
`mlx-audio-coreml convert whisper` from the MLX weights (sha256 `{get("mlx_audio_coreml.weights_sha256", "?")}`,
revision `{get("mlx_audio_coreml.source_revision", "?")}`). The text decoder stays on MLX.

| | |
| --- | --- |
| layout | `{get("mlx_audio_coreml.layout", "?")}` |
| input | `{get("mlx_audio_coreml.input_name", "?")}` {get("mlx_audio_coreml.input_shape", "?")} {get("mlx_audio_coreml.io_dtype", "?")} (log-mel, 30 s) |
| output | `{get("mlx_audio_coreml.output_name", "?")}` {get("mlx_audio_coreml.output_shape", "?")} {get("mlx_audio_coreml.io_dtype", "?")} |
| compute precision | {get("mlx_audio_coreml.precision", "?")} |
| minimum deployment target | {get("mlx_audio_coreml.deployment_target", "?")} |
| n_mels / n_ctx / d_model | {get("mlx_audio_coreml.n_mels", "?")} / {get("mlx_audio_coreml.n_ctx", "?")} / {get("mlx_audio_coreml.d_model", "?")} |
| tools | mlx-audio-coreml {get("mlx_audio_coreml.version", "?")}, coremltools {get("mlx_audio_coreml.coremltools_version", "?")}, mlx {get("mlx_audio_coreml.mlx_version", "?")} |

## Check

{checked}

## Use

```python
from mlx_audio_coreml.whisper.session import WhisperSession

session = WhisperSession.from_pretrained("{source}")  # finds this companion package
segments, info = session.transcribe("speech.wav")
```

`manifest.json` lists the sha256 of every file. The license of the source model applies to these
weights.
"""
