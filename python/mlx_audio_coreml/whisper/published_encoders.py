"""Compiled Whisper encoders that users already own: WhisperKit's and whisper.cpp's names and places.

- WhisperKit (hub repo `argmaxinc/whisperkit-coreml`): one folder per model,
  `openai_whisper-<size>/AudioEncoder.mlmodelc` (layout `melspectrogram_features` [1, n_mels, 1,
  3000] -> `encoder_output_embeds`); WhisperKit's apps download it under
  `~/Documents/huggingface/models/argmaxinc/whisperkit-coreml/`.
- whisper.cpp (hub repo `ggerganov/whisper.cpp`): `ggml-<size>-encoder.mlmodelc`, published zipped
  (`.mlmodelc.zip`, unpacked by store/archives.py) and kept beside `ggml-<size>.bin`.
These names feed store/sources.py's companion search; the session checks the layout it finds.
"""

from __future__ import annotations

from pathlib import Path

from . import model_names

WHISPERKIT_REPO = "argmaxinc/whisperkit-coreml"
WHISPERCPP_REPO = "ggerganov/whisper.cpp"
WHISPERKIT_ENCODER = "AudioEncoder.mlmodelc"

# WhisperKit folder names that differ from `openai_whisper-<size>` (turbo was released 2024-09-30)
_WHISPERKIT_FOLDERS: dict[str, tuple[str, ...]] = {
    "large-v3-turbo": ("openai_whisper-large-v3-v20240930_turbo", "openai_whisper-large-v3_turbo"),
}


def short_name(model_name: str, model_dir: Path | None = None) -> str | None:
    """Our short name (`tiny.en`) for a name, repo id or folder the session was given; None if unknown."""
    candidates = [model_name, Path(model_name).name]
    if model_dir is not None:
        candidates.append(model_dir.name)
    repos = {repo: name for name, repo in model_names.MLX_REPOS.items()}
    repos.update({repo: name for name, repo in model_names.TRANSFORMERS_REPOS.items()})
    for candidate in candidates:
        if candidate in repos:
            return repos[candidate]
        if model_names.is_known(candidate):
            return model_names.canonical_name(candidate)
    return None


def whisperkit_names(size: str) -> tuple[str, ...]:
    """`openai_whisper-<size>/AudioEncoder.mlmodelc` (and the known variants for `size`)."""
    folders = _WHISPERKIT_FOLDERS.get(size, (f"openai_whisper-{size}",))
    return tuple(f"{folder}/{WHISPERKIT_ENCODER}" for folder in folders)


def whispercpp_names(size: str) -> tuple[str, ...]:
    """`ggml-<size>-encoder.mlmodelc`, then its zipped form."""
    return (f"ggml-{size}-encoder.mlmodelc", f"ggml-{size}-encoder.mlmodelc.zip")


def package_names(size: str | None) -> tuple[str, ...]:
    """Every published name of `size`'s encoder, WhisperKit's first; () for an unknown model."""
    return whisperkit_names(size) + whispercpp_names(size) if size else ()


def whisperkit_download_dirs() -> tuple[Path, ...]:
    """Where WhisperKit's apps keep the repo (its Hub client's default base: ~/Documents/huggingface)."""
    return (Path.home() / "Documents" / "huggingface" / "models" / WHISPERKIT_REPO,)
