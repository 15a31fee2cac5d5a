"""Where a session's files come from: the model folder, and each component's Core ML package.

Model-agnostic: the model package passes what is particular to it (a `ModelCatalog`: its names,
repos, file patterns and local store; a `CompanionSearch`: where companions may be kept, extra
package names, a conversion to run when none exists). whisper/sources.py is the Whisper one.

Model: a local folder, then the local store, then the hub.
Core ML package for a component, first found wins:
1. `options.coreml_sources[component]`: a local package path, or a hub repo id;
2. beside the model: `<model dir>/<package>`, or a companion folder `<model dir>-coreml/` (what
   `convert ... --companion` writes), also in the local store;
3. the hub's companion repo `<model repo>-coreml`, then the published repos the model names
   (`CompanionSearch.hub_repos`: WhisperKit's, whisper.cpp's; a zipped .mlmodelc is unpacked);
4. when `options.convert_missing` and the model supplies a conversion: one made now.
A companion's `manifest.json` (written by convert/companion.py) names the package folder and the
sha256 of the weights it was converted from, which the session compares with the loaded weights.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import DownloadError, ModelNotFound, NetworkError
from ..loading.selection import PackageLookup
from ..options import Component, ModelLoadingOptions
from . import hub
from .archives import is_compiled_archive, unpack_compiled
from .progress import FractionCallback

COMPANION_SUFFIX = "-coreml"
COMPANION_MANIFEST = "manifest.json"
# Package folder names tried when a companion has no manifest, in order: ours first, then common
# spellings. Add a published layout's names here (one tuple per component), or pass model-specific
# ones (e.g. names that contain the model's name) in `CompanionSearch.package_names`.
PACKAGE_NAMES: dict[Component, tuple[str, ...]] = {
    Component.ENCODER: (
        "AudioEncoder.mlpackage",
        "encoder.mlpackage",
        "AudioEncoder.mlmodelc",
    ),
    Component.VOCODER: (
        "AudioVocoder.mlpackage",
        "vocoder.mlpackage",
        "AudioVocoder.mlmodelc",
    ),
}


class ModelCatalog(Protocol):
    """What `resolve_model` needs to know about one model family (Whisper, Kokoro)."""

    @property
    def kind(self) -> str:
        """For messages: "Whisper"."""
        ...

    @property
    def file_patterns(self) -> tuple[str, ...]:
        """The files of a model folder, as fnmatch patterns."""
        ...

    def repo_for(self, name: str) -> str | None:
        """The hub repo of a known short name or a repo id; None for anything else."""
        ...

    def find_local(self, name_or_path: str | Path) -> Path | None:
        """A local model folder: the path itself, then the local store."""
        ...

    def missing_hint(self, name: str) -> str:
        """How to obtain a model that is not on this machine."""
        ...


@dataclass(frozen=True)
class CompanionSearch:
    """Where one component's package may be, beyond the configured source and the hub companion."""

    store: Path  # the local model store: companions may be kept there as `<name>-coreml/`
    stored_names: tuple[str, ...] = ()  # names a companion may be kept under (besides the folder's)
    package_names: tuple[str, ...] = ()  # tried before PACKAGE_NAMES[component]
    convert: Callable[[Path], Path] | None = None  # model folder -> a package made now (convert_missing)
    folders: tuple[Path, ...] = ()  # other local folders to look in (a published repo's download place)
    hub_repos: tuple[str, ...] = ()  # published repos tried after the `-coreml` companion repo


@dataclass(frozen=True)
class ResolvedModel:
    """A model folder on this machine and the hub repo it stands for (when known)."""

    name: str  # as the caller gave it
    path: Path
    repo_id: str | None  # None: a local folder with no known repo
    downloaded: bool = False


@dataclass(frozen=True)
class PackageSource:
    """A found package: a local path, or a folder in a hub repo listing (downloaded on `fetch`)."""

    where: str  # for messages: a path or "<repo>/<folder>"
    local_path: Path | None = None
    listing: hub.RepoListing | None = None
    folder: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)
    convert: Callable[[], Path] | None = None  # makes the package now, when no package exists

    @property
    def source_weights_sha256(self) -> str | None:
        return (self.manifest.get("source") or {}).get("weights_sha256")

    def weights_problem(self, loaded_sha256: str | None) -> str:
        """Why this package does not belong to the loaded weights; '' when it does or nobody knows."""
        claimed = self.source_weights_sha256
        if claimed and loaded_sha256 and claimed != loaded_sha256:
            return (
                f"Core ML package {self.where} was converted from other weights "
                f"(sha256 {claimed[:12]}, loaded {loaded_sha256[:12]})"
            )
        return ""


def resolve_model(
    model: str | Path,
    catalog: ModelCatalog,
    settings: hub.HubSettings,
    on_fraction: FractionCallback | None = None,
) -> ResolvedModel:
    """The model's local folder, downloading it when it is not here.

    Raises ModelNotFound (with a hint on how to get the model), NetworkError or DownloadError.
    """
    name = str(model)
    given_folder = Path(name).expanduser().is_dir()
    repo_id = None if given_folder else catalog.repo_for(name)
    local = catalog.find_local(model)
    if local is not None:
        return ResolvedModel(name, local, repo_id)
    if repo_id is None:
        raise ModelNotFound(name, catalog.missing_hint(name))
    listing = hub.list_repo(repo_id, settings)
    wanted = [f.path for f in listing.files if any(fnmatch.fnmatch(f.path, p) for p in catalog.file_patterns)]
    if not wanted:
        raise ModelNotFound(name, f"the repo {repo_id} holds no {catalog.kind} weights")
    return ResolvedModel(name, hub.fetch(listing, wanted, settings, on_fraction), repo_id, downloaded=True)


def find_package(
    component: Component,
    model: ResolvedModel,
    options: ModelLoadingOptions,
    settings: hub.HubSettings,
    search: CompanionSearch,
) -> PackageLookup:
    """Whether a Core ML package exists for `component`; asks the hub only if nothing local is found."""
    names = search.package_names + PACKAGE_NAMES[component]
    configured = options.coreml_sources.get(component)
    if configured is not None:
        path = Path(configured).expanduser()
        if path.exists():
            return _found_local(component, path, names)
        if (
            isinstance(configured, Path)
            or str(configured).endswith((".mlpackage", ".mlmodelc", ".zip"))
            or path.is_absolute()
        ):
            return PackageLookup(False, f"the configured package {configured} does not exist")
        return _find_on_hub(component, str(configured), settings, names)
    for folder in _local_candidates(model, search):
        if folder.exists():
            found = _found_local(component, folder, names)
            if found.found:
                return found
    found = (
        _find_on_hub(component, model.repo_id + COMPANION_SUFFIX, settings, names)
        if model.repo_id is not None
        else PackageLookup(False, f"no Core ML package beside {model.path} and no hub repo to look in")
    )
    if not found.found and found.error is None:
        found = _find_in_published(component, search.hub_repos, settings, names) or found
    if found.found or found.error is not None or not options.convert_missing or search.convert is None:
        return found
    where = f"a conversion of {model.path} made now ({found.detail})"
    convert = functools.partial(search.convert, model.path)
    return PackageLookup(True, where, location=PackageSource(where, convert=convert))


def fetch_package(source: PackageSource, settings: hub.HubSettings, on_fraction: FractionCallback | None) -> Path:
    """The package's local path, downloading (verified) when it is on the hub, converting when asked.

    Raises DownloadError, or a ConversionError from an on-the-spot conversion.
    """
    if source.convert is not None:
        return source.convert()
    if source.local_path is not None:
        if not source.local_path.exists():
            raise DownloadError(source.where, "the package disappeared")
        if on_fraction is not None:
            on_fraction(1.0)
        return _unpacked(source.local_path)
    assert source.listing is not None
    files = [f.path for f in source.listing.under(source.folder)]
    snapshot = hub.fetch(source.listing, files, settings, on_fraction)
    return _unpacked(snapshot / source.folder)


def _unpacked(path: Path) -> Path:
    """A zipped compiled model (whisper.cpp publishes `.mlmodelc.zip`) as its unpacked folder."""
    return unpack_compiled(path) if is_compiled_archive(path) else path


# --- Local ---------------------------------------------------------------------------------------


def _local_candidates(model: ResolvedModel, search: CompanionSearch) -> list[Path]:
    folders = [model.path, model.path.with_name(model.path.name + COMPANION_SUFFIX)]
    folders += [search.store / (name + COMPANION_SUFFIX) for name in search.stored_names]
    folders.append(search.store / (model.path.name + COMPANION_SUFFIX))  # where a conversion made now goes
    folders += list(search.folders)
    return list(dict.fromkeys(folders))


def _found_local(component: Component, path: Path, names: tuple[str, ...]) -> PackageLookup:
    """`path` is a package itself, or a folder holding one (with or without a companion manifest)."""
    if path.suffix in (".mlpackage", ".mlmodelc", ".mlmodel") or is_compiled_archive(path):
        return PackageLookup(True, str(path), location=PackageSource(str(path), local_path=path))
    manifest = _read_manifest(path / COMPANION_MANIFEST)
    for name in _names_from_manifest(component, manifest) or names:
        if (path / name).exists():
            where = str(path / name)
            return PackageLookup(True, where, location=PackageSource(where, local_path=path / name, manifest=manifest))
    return PackageLookup(False, f"no {component.value} package in {path}")


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _names_from_manifest(component: Component, manifest: dict[str, Any]) -> tuple[str, ...]:
    entry = (manifest.get("components") or {}).get(component.value) or {}
    path = entry.get("path") if isinstance(entry, dict) else None
    return (str(path).strip("/"),) if path else ()


# --- Hub -----------------------------------------------------------------------------------------


def _find_on_hub(
    component: Component, repo_id: str, settings: hub.HubSettings, names: tuple[str, ...]
) -> PackageLookup:
    try:
        listing = hub.list_repo(repo_id, settings, real_files=True)
        manifest = _hub_manifest(listing, settings)
    except ModelNotFound:
        return PackageLookup(False, f"no Core ML repo {repo_id} on the hub")
    except NetworkError as exc:
        if settings.offline:  # the user chose offline: nothing failed, the package just is not here
            return PackageLookup(False, f"{repo_id} is not in the cache and HF_HUB_OFFLINE is set")
        return PackageLookup(False, error=exc)
    except DownloadError as exc:
        return PackageLookup(False, error=exc)
    for name in _names_from_manifest(component, manifest) or names:
        if listing.under(name):
            where = f"{repo_id}/{name}"
            return PackageLookup(
                True, where, location=PackageSource(where, listing=listing, folder=name, manifest=manifest)
            )
    return PackageLookup(False, f"the repo {repo_id} has no {component.value} package")


def _find_in_published(
    component: Component, repos: tuple[str, ...], settings: hub.HubSettings, names: tuple[str, ...]
) -> PackageLookup | None:
    """The first published repo holding the package; None when none does (an error or an absence
    there is not reported: the companion repo's answer stands)."""
    for repo_id in repos:
        found = _find_on_hub(component, repo_id, settings, names)
        if found.found:
            return found
    return None


def _hub_manifest(listing: hub.RepoListing, settings: hub.HubSettings) -> dict[str, Any]:
    """The companion manifest (a small file, verified like any other), or {} when the repo has none."""
    if listing.file(COMPANION_MANIFEST) is None:
        return {}
    snapshot = hub.fetch(listing, [COMPANION_MANIFEST], settings)
    return _read_manifest(snapshot / COMPANION_MANIFEST)
