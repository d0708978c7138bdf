"""A local stand-in for the Hugging Face Hub on 127.0.0.1 (point HF_ENDPOINT at it): the
paths-info API and `/{repo}/resolve/{rev}/{file}` with Range support, plus faults chosen per
file: drop the connection mid-file, reset it, serve corrupted bytes, trickle slowly. Every
request is logged with its Range header."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote

from support.local_server import LocalServer

COMMIT = "c0ffee" * 6 + "c0ff"


@dataclass
class HubFile:
    data: bytes
    fault: str | None = None  # drop | reset | busy | corrupt | slow (drop, reset, busy once)
    size_claim: int | None = None  # what paths-info says, if not the real size
    faulted: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Hub:
    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, range


class HubServer(LocalServer):
    def __init__(self, hub: Hub) -> None:
        super().__init__(Handler)
        self.hub = hub


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, *args: object) -> None:
        pass

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _repo_and_rest(self, path: str, marker: str) -> tuple[str, str] | None:
        if marker not in path:
            return None
        repo, _, rest = path.partition(marker)
        return repo.strip("/"), rest

    def do_POST(self) -> None:
        hub = self.server.hub
        path = unquote(self.path)
        self.server.hub.log.append(("POST", path, None))
        split = self._repo_and_rest(path.removeprefix("/api/models/"), "/paths-info/")
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        if split is None:
            return self._error(404, "EntryNotFound", "no such route")
        repo = split[0]
        if repo in hub.gated:
            return self._error(403, "GatedRepo", f"Access to model {repo} is restricted")
        if repo not in hub.repos:
            return self._error(404, "RepoNotFound", f"Repository {repo} not found")
        files = hub.repos[repo]
        answer = [{"type": "file", "path": p, "size": files[p].size_claim or len(files[p].data),
                   "oid": hashlib.sha1(files[p].data).hexdigest(),
                   "lfs": {"oid": files[p].sha256, "size": files[p].size_claim or
                           len(files[p].data), "pointerSize": 134}}
                  for p in form.get("paths", []) if p in files]
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self) -> HubFile | None:
        hub = self.server.hub
        path = unquote(self.path)
        split = self._repo_and_rest(path, "/resolve/")
        if split is None:
            self._error(404, "EntryNotFound", "no such route")
            return None
        repo, rest = split
        filename = rest.partition("/")[2]
        if repo in hub.gated:
            self._error(403, "GatedRepo", f"Access to model {repo} is restricted")
            return None
        f = hub.repos.get(repo, {}).get(filename)
        if f is None:
            self._error(404, "EntryNotFound", f"{filename} not found")
        return f

    def _headers(self, f: HubFile, status: int, start: int, length: int) -> None:
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{f.sha256}"')
        self.send_header("X-Linked-Etag", f'"{f.sha256}"')
        self.send_header("X-Linked-Size", str(len(f.data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(f.data) - 1}/{len(f.data)}")
        self.end_headers()

    def do_HEAD(self) -> None:
        self.server.hub.log.append(("HEAD", unquote(self.path), None))
        f = self._file()
        if f is not None:
            self._headers(f, 200, 0, len(f.data))

    def do_GET(self) -> None:
        byte_range = self.headers.get("Range")
        self.server.hub.log.append(("GET", unquote(self.path), byte_range))
        f = self._file()
        if f is None:
            return
        if f.fault == "busy" and not f.faulted:  # a 503 asking for a second's wait, once
            f.faulted = True
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = int(byte_range.removeprefix("bytes=").split("-")[0]) if byte_range else 0
        body = f.data[start:]
        if f.fault == "corrupt":
            body = bytes(b ^ 0xFF for b in body[:16]) + body[16:]
        self._headers(f, 206 if byte_range else 200, start, len(body))
        if f.fault in ("drop", "reset") and not f.faulted:
            f.faulted = True
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(0.5)  # the client reads and saves what came before the break
            if f.fault == "reset":  # RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR) if f.fault == "drop" else None
            return
        step = 64 * 1024
        for i in range(0, len(body), step):
            try:
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
            except OSError:
                return
            if f.fault == "slow":
                time.sleep(0.05)
