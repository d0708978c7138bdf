"""Downloading a quant into the shared Hugging Face cache, resumably and verified.

The hub's metadata gives the files (`hub_files.py`) and huggingface_hub's cache layout says
where they go (`hf_cache.py`). The transfer is our own, because the library restarts from
byte 0 after a failed call (seen with huggingface_hub 2.4: its `*.incomplete` file is named
per process and deleted when a call fails): bytes go to
`blobs/<sha256>.incomplete`, a name that does not change between processes, and every
attempt, in this process or after a crash or reboot, continues with a `Range` request from
the bytes on disk. The finished file must match the hub's sha256; a mismatch deletes it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from reflectchat.models.catalog import CatalogModel, Quant
from reflectchat.models.hf_cache import CachePaths
from reflectchat.models.hub_files import PullError, RemoteFile, remote_files, resolve_url
from reflectchat.sizes import size_text

CHUNK = 1 << 20
ATTEMPTS = 6  # consecutive failures without new bytes before giving up
DISK_MARGIN = 1 << 30
READ_TIMEOUT_S = 60.0


def quant_download(entry: CatalogModel, quant: Quant) -> Download:
    """The download of one catalog quant, for `pull` and the app alike: its files' sizes and
    sha256 from the hub, and the disk checked for the bytes still missing."""
    job = Download(entry.repo, remote_files(entry.repo, list(quant.files)))
    job.check_space()
    return job


Progress = Callable[[int], None]  # called with the number of new bytes


class Download:
    """Files of one quant, as one job: `needed()` for the disk check, then `run()`."""

    def __init__(self, repo: str, files: list[RemoteFile], revision: str = "main") -> None:
        self.repo = repo
        self.files = files
        self.revision = revision
        self.cache = CachePaths.for_repo(repo)
        self.retries = 0  # attempts that failed and were resumed

    def have(self, f: RemoteFile) -> int:
        """Bytes of `f` already on disk (complete: its size)."""
        if self.cache.blob(f.sha256).exists():
            return f.size
        part = self.cache.incomplete(f.sha256)
        return part.stat().st_size if part.exists() else 0

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)

    def needed(self) -> int:
        return sum(f.size - self.have(f) for f in self.files)

    @property
    def complete(self) -> bool:
        return self.needed() == 0 and all(self.cache.blob(f.sha256).exists() for f in self.files)

    def check_space(self) -> None:
        folder = self.cache.repo_dir
        while not folder.exists():
            folder = folder.parent
        free = shutil.disk_usage(folder).free
        need = self.needed()
        if need and need + DISK_MARGIN > free:
            raise PullError(f"Not enough disk space in {folder}: the download needs "
                            f"{size_text(need)} (plus 1 GiB to spare) and "
                            f"{size_text(free)} is free")

    def run(self, progress: Progress, cancelled: Callable[[], bool] = lambda: False
            ) -> list[Path]:
        """Download what is missing; returns the snapshot path of every file."""
        from huggingface_hub.utils import build_hf_headers

        self.cache.repo_dir.joinpath("blobs").mkdir(parents=True, exist_ok=True)
        headers = build_hf_headers()
        paths = []
        with httpx.Client(headers=headers, follow_redirects=True,
                          timeout=httpx.Timeout(READ_TIMEOUT_S, connect=15.0)) as client:
            for f in self.files:
                url = resolve_url(self.repo, f.path, self.revision)
                commit = self._fetch(client, url, f, progress, cancelled)
                paths.append(self._link(f, commit))
        return paths

    def _fetch(self, client: httpx.Client, url: str, f: RemoteFile, progress: Progress,
               cancelled: Callable[[], bool]) -> str:
        blob = self.cache.blob(f.sha256)
        commit = self._commit(client, url)
        if blob.exists():
            return commit
        with _only_download(self.cache.lock(f.sha256), f.path):
            return commit if blob.exists() else self._fetch_missing(client, url, f, progress,
                                                                    cancelled, commit)

    def _fetch_missing(self, client: httpx.Client, url: str, f: RemoteFile, progress: Progress,
                       cancelled: Callable[[], bool], commit: str) -> str:
        blob, part = self.cache.blob(f.sha256), self.cache.incomplete(f.sha256)
        failures = 0
        while True:
            start = part.stat().st_size if part.exists() else 0
            if start < f.size:
                try:
                    self._get_range(client, url, part, start, f.size, progress, cancelled)
                    failures = 0
                except (httpx.TransportError, _ShortBody, _Busy) as exc:
                    got = (part.stat().st_size if part.exists() else 0) - start
                    failures = 0 if got else failures + 1
                    self.retries += 1
                    if failures >= ATTEMPTS:
                        raise PullError(f"The download of {f.path} keeps failing ({exc}); "
                                        f"{part.stat().st_size if part.exists() else 0:,} of "
                                        f"{f.size:,} bytes are kept: run the same command "
                                        "again to continue") from None
                    wait = min(2 ** failures, 30) if failures else 0.2
                    time.sleep(max(wait, exc.retry_after) if isinstance(exc, _Busy) else wait)
                    continue
            if part.stat().st_size > f.size:
                part.unlink()
                raise PullError(f"{f.path} came out larger than the hub says; it was deleted")
            if _sha256(part) != f.sha256:
                part.unlink()
                raise PullError(f"{f.path} does not match the hub's sha256 (corrupted on the "
                                "way or on disk); the bad file was deleted, run the command "
                                "again to download it afresh")
            os.replace(part, blob)
            return commit

    def _commit(self, client: httpx.Client, url: str) -> str:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = client.head(url)
            except httpx.TransportError as exc:
                raise PullError(f"Cannot reach the Hugging Face Hub ({exc}); check the "
                                "network") from None
            try:
                _raise_for_status(response, url)
            except _Busy as busy:
                if attempt == ATTEMPTS:
                    raise PullError(f"The hub keeps answering HTTP {response.status_code} for "
                                    f"{url}; try again later") from None
                self.retries += 1
                time.sleep(max(min(2 ** attempt, 30), busy.retry_after))
                continue
            break
        return response.headers.get("X-Repo-Commit") or self.revision

    def _get_range(self, client: httpx.Client, url: str, part: Path, start: int, size: int,
                   progress: Progress, cancelled: Callable[[], bool]) -> None:
        headers = {"Range": f"bytes={start}-"} if start else {}
        with client.stream("GET", url, headers=headers) as response:
            _raise_for_status(response, url)
            if start and response.status_code != 206:
                start = 0  # the server ignored the range: start again
            try:
                with part.open("r+b" if start else "wb") as out:
                    if start:  # ("wb" starts empty)
                        out.seek(start)
                        out.truncate()
                    for chunk in response.iter_bytes(CHUNK):
                        if cancelled():
                            raise PullError("Download cancelled; the bytes so far are kept")
                        out.write(chunk)
                        out.flush()
                        progress(len(chunk))
            except OSError as exc:
                raise self._write_failed(exc, part, size) from None
        if part.stat().st_size < size:
            raise _ShortBody(f"the server sent {part.stat().st_size:,} of {size:,} bytes")

    def _write_failed(self, exc: OSError, part: Path, size: int) -> PullError:
        """A disk that is full (or failing) mid-download: one sentence; the bytes stay."""
        kept = part.stat().st_size if part.exists() else 0
        if exc.errno == errno.ENOSPC:
            folder = self.cache.repo_dir
            return PullError(f"No space left on the disk of {folder}: {size_text(kept)} of "
                             f"{size_text(size)} are kept; free {size_text(size - kept)} "
                             "(plus 1 GiB to spare) and run the same command again")
        return PullError(f"Could not write {part} ({exc.strerror or exc}); {size_text(kept)} "
                         "are kept: run the same command again to continue")

    def _link(self, f: RemoteFile, commit: str) -> Path:
        """The snapshot entry huggingface_hub would make: a relative link to the blob."""
        link = self.cache.snapshot(commit, f.path)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            target = os.path.relpath(self.cache.blob(f.sha256), link.parent)
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        refs = self.cache.repo_dir / "refs" / self.revision
        refs.parent.mkdir(parents=True, exist_ok=True)
        refs.write_text(commit)
        return link


class _ShortBody(Exception):
    pass


class _Busy(Exception):
    """The hub answered 429 or 5xx: worth trying again, after the wait it asks for if any."""

    def __init__(self, status: int, retry_after: float) -> None:
        super().__init__(f"the hub answered HTTP {status}")
        self.retry_after = retry_after


@contextmanager
def _only_download(lock: Path, what: str) -> Iterator[None]:
    """One process at a time downloads a file: a second one is told, never let to write the
    same partial file."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PullError(f"Another download of {what} is running right now; let it finish "
                            "(or stop it), then run this again") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    code = response.headers.get("X-Error-Code", "")
    if code == "GatedRepo" or response.status_code in (401, 403):
        raise PullError(f"Access denied to {url} (HTTP {response.status_code}): the repo is "
                        "gated or private; accept its terms on the hub and log in with "
                        "`hf auth login`")
    if response.status_code == 404:
        raise PullError(f"Not found on the hub: {url}")
    if response.status_code == 429 or response.status_code >= 500:
        try:
            retry_after = min(float(response.headers.get("Retry-After", 0)), 60.0)
        except ValueError:
            retry_after = 0.0
        raise _Busy(response.status_code, retry_after)
    raise PullError(f"The hub answered HTTP {response.status_code} for {url}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK * 8):
            digest.update(block)
    return digest.hexdigest()
