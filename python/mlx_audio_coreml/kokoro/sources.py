"""Where a Kokoro session's files come from: store/sources.py told what is particular to Kokoro.

- `KOKORO`: the catalog. A folder path is used as it is; a name is looked up in the local store
  ($MLX_AUDIO_COREML_HOME/models/<name>, where `scripts/fetch_models.sh kokoro` installs
  `kokoro`); otherwise `kokoro` means hexgrad's repo (downloaded when the hub is reachable) and a
  name with a "/" is a hub repo id.
- `companion_search(model)`: where a vocoder package may be kept (`<store>/<name>-coreml/`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import config
from ..store import hub
from ..store.progress import FractionCallback
from ..store.sources import CompanionSearch, ResolvedModel
from ..store.sources import resolve_model as _resolve

DEFAULT_MODEL = "kokoro"
REPOS = {"kokoro": "hexgrad/Kokoro-82M", "kokoro-82m": "hexgrad/Kokoro-82M"}
# The files of a Kokoro folder in the formats kokoro.weights reads (hexgrad's, mlx-community's, ours).
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
KOKORO_FILE_PATTERNS: tuple[str, ...] = ("config.json", "*.pth", "*.safetensors", "voices/*.pt", "voices/*.npy")


@dataclass(frozen=True)
class KokoroCatalog:
    """store/sources.py's `ModelCatalog` for Kokoro."""

    kind: str = "Kokoro"
    file_patterns: tuple[str, ...] = KOKORO_FILE_PATTERNS

    def repo_for(self, name: str) -> str | None:
        """A known short name's repo, or `name` itself when it reads as "owner/repo" (not a path)."""
        return name if _REPO_ID.fullmatch(name) else REPOS.get(name.lower())

    def find_local(self, name_or_path: str | Path) -> Path | None:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            return path
        stored = config.models_dir() / str(name_or_path)
        return stored if stored.is_dir() else None

    def missing_hint(self, name: str) -> str:
        return (
            f"Install it with `scripts/fetch_models.sh kokoro` (into {config.models_dir()}), "
            "pass a model folder, or a hub repo id such as hexgrad/Kokoro-82M."
        )


KOKORO = KokoroCatalog()


def resolve_model(
    model: str | Path, settings: hub.HubSettings, on_fraction: FractionCallback | None = None
) -> ResolvedModel:
    """The Kokoro model's local folder, downloading it when it is not here (store/sources.py)."""
    return _resolve(model, KOKORO, settings, on_fraction)


def companion_search(model: ResolvedModel) -> CompanionSearch:
    """A vocoder package may sit in the local store as `<model name>-coreml/`; none is converted
    on the spot (there is no Kokoro vocoder converter yet)."""
    return CompanionSearch(store=config.models_dir(), stored_names=(Path(model.name).name,))
