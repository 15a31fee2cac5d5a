"""Where a Whisper session's files come from: store/sources.py told what is particular to Whisper.

- `WHISPER`: the catalog of Whisper models (short names -> repos, the local store, the files of a
  model folder in any of the three formats);
- `companion_search(component, model)`: where an encoder package may be kept, and the conversion
  on the spot that `options.convert_missing` asks for (convert/whisper.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import Component
from ..store import hub
from ..store.progress import FractionCallback
from ..store.sources import CompanionSearch, ResolvedModel
from ..store.sources import resolve_model as _resolve
from . import model_names, published_encoders

# What a Whisper model folder needs, in any of the three formats (MLX, transformers, CTranslate2).
WHISPER_FILE_PATTERNS: tuple[str, ...] = (
    "config.json", "*.safetensors", "weights.npz", "model.bin", "tokenizer.json", "vocabulary.txt",
    "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json",
    "normalizer.json", "preprocessor_config.json", "generation_config.json",
)  # fmt: skip


@dataclass(frozen=True)
class WhisperCatalog:
    """store/sources.py's `ModelCatalog` for Whisper (whisper/model_names.py underneath)."""

    kind: str = "Whisper"
    file_patterns: tuple[str, ...] = WHISPER_FILE_PATTERNS

    def repo_for(self, name: str) -> str | None:
        if model_names.is_known(name) or "/" in name:
            return model_names.repo_for(name)
        return None

    def find_local(self, name_or_path: str | Path) -> Path | None:
        return model_names.find_local(name_or_path)

    def missing_hint(self, name: str) -> str:
        return model_names.missing_hint(name)


WHISPER = WhisperCatalog()


def resolve_model(
    model: str | Path, settings: hub.HubSettings, on_fraction: FractionCallback | None = None
) -> ResolvedModel:
    """The Whisper model's local folder, downloading it when it is not here (store/sources.py)."""
    return _resolve(model, WHISPER, settings, on_fraction)


def companion_search(component: Component, model: ResolvedModel) -> CompanionSearch:
    """Companions kept in the local store under the model's canonical name; the encoder can be
    converted on the spot, and the compiled encoders WhisperKit and whisper.cpp publish for the
    same model are found by their names, locally and in their hub repos (published_encoders.py)."""
    if component is not Component.ENCODER:
        return CompanionSearch(store=model_names.local_store(), stored_names=(model_names.canonical_name(model.name),))
    size = published_encoders.short_name(model.name, model.path)
    return CompanionSearch(
        store=model_names.local_store(),
        stored_names=(model_names.canonical_name(model.name),),
        package_names=published_encoders.package_names(size),
        convert=convert_now,
        folders=published_encoders.whisperkit_download_dirs() if size else (),
        hub_repos=(published_encoders.WHISPERKIT_REPO, published_encoders.WHISPERCPP_REPO) if size else (),
    )


def convert_now(model_dir: Path) -> Path:
    """Convert the encoder of `model_dir` into `<local store>/<folder name>-coreml/` (a companion
    folder, checked through the portable runtime when it can run) and return its package."""
    from ..convert.whisper import ConvertOptions, convert_whisper

    return convert_whisper(model_dir, model_names.local_store(), ConvertOptions(companion=True)).package
