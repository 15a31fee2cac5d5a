"""Download model files from the Hugging Face hub, verified, with byte progress and an offline cache.

Everything goes through huggingface_hub, so HF_ENDPOINT, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE,
HF_TOKEN and HF_HUB_DOWNLOAD_TIMEOUT behave as users expect (the first three are read when a
download starts, not when Python starts). Model weights land in the hub's own cache, shared
with other Hugging Face tools; Core ML packages land as plain files under
$MLX_AUDIO_COREML_HOME/packages (see `list_repo`). Both survive restarts.

Each file is checked against the hub's metadata after download: its size, and its sha256 (LFS
files) or git blob id (small files). A file that fails is deleted and the download fails with
`CorruptDownload`; huggingface_hub itself writes to `*.incomplete` and renames only complete files,
so a partial file is never picked up either. Verified files are recorded beside the cache entry
(`<repo folder>/.mlx-audio-coreml/<commit>.json`) so the next run, online or offline, reuses them
without hashing again unless their size or modification time changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import config
from ..errors import CorruptDownload, DownloadError, ModelNotFound, NetworkError
from .progress import ByteProgress, FractionCallback

logger = logging.getLogger(__name__)

_MANIFEST_DIR = ".mlx-audio-coreml"
_HASH_CHUNK = 1 << 20
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # EFBIG: a file size limit (RLIMIT_FSIZE, quota)


@dataclass(frozen=True)
class HubSettings:
    """Where and how to talk to the hub; `from_env()` reads the standard variables."""

    endpoint: str | None  # None: huggingface.co
    cache_dir: Path  # huggingface_hub's cache (model weights)
    package_dir: Path  # Core ML packages, as real files (see `list_repo(real_files=True)`)
    offline: bool = False
    etag_timeout_s: float = 10.0  # metadata requests (HEAD, API)
    token: str | None = None

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> HubSettings:
        env = os.environ if environ is None else environ
        home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
        cache = env.get("HF_HUB_CACHE") or os.path.join(home, "hub")
        offline = (env.get("HF_HUB_OFFLINE") or "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        return cls(
            endpoint=(env.get("HF_ENDPOINT") or "").rstrip("/") or None,
            cache_dir=Path(os.path.expandvars(cache)).expanduser(),
            package_dir=config.packages_dir(env),
            offline=offline,
            etag_timeout_s=float(env.get("HF_HUB_ETAG_TIMEOUT") or 10),
            token=env.get("HF_TOKEN") or None,
        )


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None = None  # LFS files
    blob_id: str | None = None  # git blob sha1, for small files


@dataclass(frozen=True)
class RepoListing:
    """A repo's files at one commit, with what each must hash to."""

    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    from_cache: bool = False  # the hub was not asked (offline, or it could not be reached)
    revision: str = "main"  # what was asked for; `commit` is what it resolved to
    real_files: bool = False  # downloads land as plain files under `package_dir`, not as cache links

    def file(self, path: str) -> RemoteFile | None:
        return next((f for f in self.files if f.path == path), None)

    def under(self, folder: str) -> tuple[RemoteFile, ...]:
        prefix = folder.rstrip("/") + "/"
        return tuple(f for f in self.files if f.path == folder or f.path.startswith(prefix))


def list_repo(repo_id: str, settings: HubSettings, revision: str = "main", *, real_files: bool = False) -> RepoListing:
    """The repo's files and hashes. Offline, or with the hub unreachable, the last verified listing.

    `real_files`: fetch into `settings.package_dir` with huggingface_hub's local_dir mode, so the
    files are plain files. Core ML packages need that: the hub cache's snapshots are symlinks into
    a blob store, the shim's stand-in copies them as dangling links, and whether Core ML's compiler
    follows them is unverified (VERIFY on a Mac); plain files work everywhere.

    Raises ModelNotFound (no such repo), NetworkError, DownloadError.
    """
    if settings.offline:
        cached = _cached_listing(repo_id, settings, revision, real_files)
        if cached is None:
            raise NetworkError(repo_id, "offline (HF_HUB_OFFLINE) and nothing of it is in the cache")
        return cached
    from huggingface_hub import HfApi
    from huggingface_hub.utils import RepositoryNotFoundError

    try:
        info = HfApi(endpoint=settings.endpoint, token=settings.token).model_info(
            repo_id, revision=revision, files_metadata=True, timeout=settings.etag_timeout_s
        )
    except RepositoryNotFoundError as exc:
        raise ModelNotFound(repo_id, f"the hub at {settings.endpoint or 'huggingface.co'} has no such repo") from exc
    except Exception as exc:
        error = as_download_error(repo_id, exc)
        cached = _cached_listing(repo_id, settings, revision, real_files) if isinstance(error, NetworkError) else None
        if cached is None:
            raise error from exc
        logger.warning("hub unreachable (%s); using the cached copy of %s", error, repo_id)
        return cached
    files = tuple(
        RemoteFile(
            path=s.rfilename,
            size=s.lfs.size if s.lfs is not None else s.size,
            sha256=s.lfs.sha256 if s.lfs is not None else None,
            blob_id=s.blob_id,
        )
        for s in info.siblings or ()
    )
    if not info.sha:
        raise DownloadError(repo_id, "the hub's answer has no commit id")
    return RepoListing(repo_id, info.sha, files, revision=revision, real_files=real_files)


def fetch(
    listing: RepoListing,
    paths: Iterable[str],
    settings: HubSettings,
    on_fraction: FractionCallback | None = None,
) -> Path:
    """Download (or reuse) `paths` of `listing`, verify each, and return the snapshot folder.

    Raises NetworkError, CorruptDownload or DownloadError; nothing unverified is left behind.
    """
    wanted = [_require(listing, p) for p in paths]
    snapshot = _snapshot_dir(listing, settings)
    record = _Manifest.load(listing, settings)
    missing = [f for f in wanted if not record.is_verified(snapshot / f.path, f)]
    progress = ByteProgress(sum(f.size or 0 for f in missing), on_fraction)
    progress.report(force=True)
    for remote in missing:
        local = _download_one(listing, remote, settings, progress)
        verify_file(listing.repo_id, local, remote)
        record.mark_verified(local, remote)
        record.save()
    progress.finish()
    _record_ref(listing, settings)
    return snapshot


def verify_file(repo_id: str, local: Path, remote: RemoteFile) -> None:
    """Size and hash against the hub's metadata; a bad file is deleted (blob and link) and raised."""
    problem = _file_problem(local, remote)
    if problem:
        _delete_cached(local)
        raise CorruptDownload(repo_id, remote.path, problem)


def as_download_error(repo_id: str, exc: BaseException) -> DownloadError:
    """Our error for whatever huggingface_hub (or the disk) raised during a download."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
    )

    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return as_download_error(repo_id, exc.__cause__)  # the HEAD call's own failure says more
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        return DownloadError(repo_id, f"HTTP {status} from {exc.response.url}", exc)
    unreachable = (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError)
    if isinstance(exc, unreachable) or _is_transport_error(exc):
        return NetworkError(repo_id, f"{type(exc).__name__}: {_first_line(exc)}", exc)
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return DownloadError(repo_id, f"disk full while writing to the cache ({os.strerror(exc.errno)})", exc)
    return DownloadError(repo_id, f"{type(exc).__name__}: {_first_line(exc)}", exc)


# --- One file ------------------------------------------------------------------------------------


def _download_one(listing: RepoListing, remote: RemoteFile, settings: HubSettings, progress: ByteProgress) -> Path:
    from huggingface_hub import hf_hub_download

    started = progress.done
    try:
        path = hf_hub_download(
            listing.repo_id,
            remote.path,
            revision=listing.commit,
            cache_dir=settings.cache_dir,
            endpoint=settings.endpoint,
            etag_timeout=settings.etag_timeout_s,
            token=settings.token,
            local_files_only=settings.offline or listing.from_cache,
            local_dir=_snapshot_dir(listing, settings) if listing.real_files else None,
            tqdm_class=progress.tqdm_class(),
        )
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            _remove_partial(listing, remote, settings)  # free the space; nothing can resume into a full disk
        raise as_download_error(listing.repo_id, exc) from exc
    progress.settle(started + (remote.size or 0))  # a cached file counts as downloaded
    return Path(path)


def _file_problem(local: Path, remote: RemoteFile) -> str:
    if not local.is_file():
        return "missing after download"
    size = local.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size} bytes, the hub says {remote.size}"
    if remote.sha256:
        got = _hash_file(local, hashlib.sha256())
        return "" if got == remote.sha256 else f"sha256 {got}, the hub says {remote.sha256}"
    if remote.blob_id:
        # A git blob id is sha1 over "blob <size>\0" followed by the content.
        got = _hash_file(local, hashlib.sha1(f"blob {size}\0".encode()))
        return "" if got == remote.blob_id else f"git blob id {got}, the hub says {remote.blob_id}"
    return ""


def _hash_file(path: Path, digest: hashlib._Hash) -> str:
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _delete_cached(local: Path) -> None:
    """Remove the file (a plain file, or a cache link and the blob behind it) so the next attempt downloads again."""
    blob = local.resolve() if local.is_symlink() else None
    local.unlink(missing_ok=True)
    if blob is not None:
        blob.unlink(missing_ok=True)


def _remove_partial(listing: RepoListing, remote: RemoteFile, settings: HubSettings) -> None:
    """huggingface_hub's `*.<etag>.incomplete` for `remote` (its etag is the sha256 or blob id)."""
    etag = remote.sha256 or remote.blob_id
    if not etag:
        return
    if listing.real_files:  # local_dir mode keeps partial files in <local_dir>/.cache/huggingface/download/
        partials = (_snapshot_dir(listing, settings) / ".cache" / "huggingface" / "download").rglob(
            f"*.{etag}.incomplete"
        )
    else:
        partials = iter([_repo_folder(listing.repo_id, settings, False) / "blobs" / f"{etag}.incomplete"])
    for partial in partials:
        partial.unlink(missing_ok=True)


def _require(listing: RepoListing, path: str) -> RemoteFile:
    remote = listing.file(path)
    if remote is None:
        raise DownloadError(listing.repo_id, f"{path} is not in the repo at {listing.commit[:12]}")
    return remote


def _is_transport_error(exc: BaseException) -> bool:
    """A connection, protocol or timeout error of whichever HTTP client huggingface_hub uses
    (httpx2 from 2.x, httpx in 1.x, requests before): its module is loaded if it raised."""
    for module_name, class_name in (
        ("httpx2", "RequestError"),
        ("httpx", "RequestError"),
        ("requests", "RequestException"),
    ):
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name, ())):
            return True
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- Cache layout and the verified-files record --------------------------------------------------


def _repo_folder(repo_id: str, settings: HubSettings, real_files: bool) -> Path:
    root = settings.package_dir if real_files else settings.cache_dir
    return root / ("models--" + repo_id.replace("/", "--"))


def _snapshot_dir(listing: RepoListing, settings: HubSettings) -> Path:
    return _repo_folder(listing.repo_id, settings, listing.real_files) / "snapshots" / listing.commit


def _cached_listing(repo_id: str, settings: HubSettings, revision: str, real_files: bool) -> RepoListing | None:
    """The listing recorded at the last verified download of `revision`, if any."""
    folder = _repo_folder(repo_id, settings, real_files)
    ref = folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    data = _Manifest.read(folder / _MANIFEST_DIR / f"{commit}.json")
    if data is None:
        return None
    files = tuple(RemoteFile(**f) for f in data.get("files", ()))
    return RepoListing(repo_id, commit, files, from_cache=True, revision=revision, real_files=real_files)


def _record_ref(listing: RepoListing, settings: HubSettings) -> None:
    """Point `refs/<revision>` at the commit, as huggingface_hub does, so offline runs find it."""
    if listing.from_cache or listing.revision == listing.commit:
        return
    ref = _repo_folder(listing.repo_id, settings, listing.real_files) / "refs" / listing.revision
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        staging = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
        staging.write_text(listing.commit)
        os.replace(staging, ref)
    except OSError as exc:
        logger.warning("could not record %s -> %s: %s", listing.revision, listing.commit, exc)


class _Manifest:
    """The listing of one commit plus the files already verified (size and mtime when verified)."""

    def __init__(self, path: Path, listing: RepoListing, verified: dict[str, dict[str, int]]) -> None:
        self.path = path
        self.listing = listing
        self.verified = verified

    @classmethod
    def load(cls, listing: RepoListing, settings: HubSettings) -> _Manifest:
        path = _repo_folder(listing.repo_id, settings, listing.real_files) / _MANIFEST_DIR / f"{listing.commit}.json"
        data = cls.read(path) or {}
        return cls(path, listing, dict(data.get("verified", {})))

    @staticmethod
    def read(path: Path) -> dict | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def is_verified(self, local: Path, remote: RemoteFile) -> bool:
        seen = self.verified.get(remote.path)
        try:
            stat = local.stat()
        except OSError:
            return False
        return seen is not None and seen == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def mark_verified(self, local: Path, remote: RemoteFile) -> None:
        stat = local.stat()
        self.verified[remote.path] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    def save(self) -> None:
        """Write atomically; a failure to record only costs a re-hash next time."""
        payload = {
            "repo_id": self.listing.repo_id,
            "commit": self.listing.commit,
            "files": [asdict(f) for f in self.listing.files],
            "verified": self.verified,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            staging.write_text(json.dumps(payload, indent=1))
            os.replace(staging, self.path)
        except OSError as exc:
            logger.warning("could not record verified downloads in %s: %s", self.path, exc)
