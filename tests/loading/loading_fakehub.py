"""A real HTTP server on 127.0.0.1 that answers like the Hugging Face hub for the files the tests use.

It speaks what huggingface_hub (2.x) asks for:
- `GET /api/models/{repo}/revision/{rev}?blobs=true`: JSON with `sha` and `siblings` (rfilename,
  size, blobId, and `lfs` {sha256, size, pointerSize} for large files); 404 + `X-Error-Code:
  RepoNotFound` for unknown repos.
- `HEAD` / `GET /{repo}/resolve/{rev}/{path}`: `X-Repo-Commit`, `ETag` (git blob id, or sha256 for
  LFS files with `X-Linked-Etag` / `X-Linked-Size`), `Content-Length`, `Range` requests answered
  with 206; 404 + `X-Error-Code: EntryNotFound` for unknown files.

Faults are set per file (`status`, `drop_after`, `stall_s`, `corrupt`) or for the API (`api_status`,
`api_stall_s`). Every request is logged as (method, path) so tests can assert what was (not) asked.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

LFS_THRESHOLD = 1024  # files at least this big are served as LFS files (as the hub does for weights)


@dataclass
class Fault:
    status: int | None = None  # answer every request for the file with this status
    drop_after: int | None = None  # close the connection after sending this many body bytes
    stall_s: float = 0.0  # sleep this long before sending the body (after the headers)
    corrupt: bool = False  # flip the last byte: same size, wrong hash
    head_ok: bool = True  # faults apply to GET only (HEAD answers normally)


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    commit: str = ""
    faults: dict[str, Fault] = field(default_factory=dict)
    api_status: int | None = None
    api_stall_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(self.repo_id.encode()).hexdigest()

    @staticmethod
    def blob_id(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def sibling(self, path: str) -> dict:
        data = self.files[path]
        entry = {"rfilename": path, "size": len(data), "blobId": self.blob_id(data)}
        if len(data) >= LFS_THRESHOLD:
            entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


class FakeHub:
    """Start with `with FakeHub() as hub:`; `hub.url` goes into HF_ENDPOINT."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                hub._answer(self, head=True)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def requested(self, fragment: str) -> list[tuple[str, str]]:
        with self._lock:
            return [r for r in self.requests if fragment in r[1]]

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- Routing --------------------------------------------------------------------------------

    def _answer(self, request: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlparse(request.path).path)
        with self._lock:
            self.requests.append(("HEAD" if head else "GET", path))
        if path.startswith("/api/models/") and "/revision/" in path:
            repo_id, _ = path[len("/api/models/") :].split("/revision/", 1)
            return self._api(request, repo_id)
        parts = path.lstrip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(request, "/".join(parts[:2]), "/".join(parts[4:]), head)
        self._error(request, 404, "RepoNotFound")

    def _api(self, request: BaseHTTPRequestHandler, repo_id: str) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(request, 404, "RepoNotFound")
        if repo.api_stall_s:
            time.sleep(repo.api_stall_s)
        if repo.api_status:
            return self._error(request, repo.api_status, "")
        body = json.dumps(
            {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "siblings": [repo.sibling(p) for p in repo.files]}
        ).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _resolve(self, request: BaseHTTPRequestHandler, repo_id: str, file: str, head: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(request, 404, "RepoNotFound")
        if file not in repo.files:
            return self._error(request, 404, "EntryNotFound", repo.commit)
        fault = repo.faults.get(file, Fault())
        faulty = not (head and fault.head_ok)
        if faulty and fault.status:
            return self._error(request, fault.status, "", repo.commit)
        data = repo.files[file]
        start = _range_start(request.headers.get("Range"))
        self._file_headers(request, repo, file, data, start)
        if head:
            return
        body = data[start:]
        if faulty and fault.corrupt and body:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        if faulty and fault.stall_s:
            time.sleep(fault.stall_s)
        if faulty and fault.drop_after is not None:
            request.wfile.write(body[: max(fault.drop_after - start, 0)])
            request.wfile.flush()
            request.close_connection = True
            return
        request.wfile.write(body)

    def _file_headers(
        self, request: BaseHTTPRequestHandler, repo: FakeRepo, file: str, data: bytes, start: int
    ) -> None:
        sibling = repo.sibling(file)
        request.send_response(206 if start else 200)
        request.send_header("X-Repo-Commit", repo.commit)
        request.send_header("ETag", f'"{sibling["blobId"]}"')
        if "lfs" in sibling:
            request.send_header("X-Linked-Etag", f'"{sibling["lfs"]["sha256"]}"')
            request.send_header("X-Linked-Size", str(len(data)))
        if start:
            request.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        request.send_header("Content-Length", str(len(data) - start))
        request.send_header("Accept-Ranges", "bytes")
        request.end_headers()

    @staticmethod
    def _error(request: BaseHTTPRequestHandler, status: int, code: str, commit: str = "") -> None:
        body = json.dumps({"error": code or f"status {status}"}).encode()
        request.send_response(status)
        if code:
            request.send_header("X-Error-Code", code)
        if commit:
            request.send_header("X-Repo-Commit", commit)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    first = header[len("bytes=") :].split("-", 1)[0]
    return int(first) if first.isdigit() else 0
