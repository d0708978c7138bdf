"""A GGUF file's header (metadata and tensor list) from its first bytes, without the weights:
read from a file on disk, or from the hub with HTTP range requests before downloading, so the
memory plan can use exact tensor sizes either way. Headers fetched from the hub are cached."""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reflectchat.paths import header_cache_dir

FIRST_READ = 1 << 20
MAX_HEADER = 64 << 20  # a Llama 3 header (128k tokens and their merges) is about 8 MB
MAX_DIMS = 4  # ggml's tensors have at most four
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


DEFAULT_ALIGNMENT = 32  # GGUF's, unless general.alignment says otherwise


class NeedMore(Exception):
    """The header goes on past the bytes given."""


class HeaderError(Exception):
    pass


class IncompleteFile(HeaderError):
    """The header is whole but the tensors it lists reach past the file's end."""


@dataclass(frozen=True)
class Header:
    metadata: dict[str, Any]  # an array's value is its length
    tensors: dict[str, int]  # name -> bytes
    params: int = 0  # elements of every tensor: the model's parameter count
    # name -> (type, rows, row length in elements)
    layouts: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    data_end: int = 0  # where the last tensor's bytes end: the size a whole file has


class _Reader:
    def __init__(self, data: bytes, limit: int) -> None:
        """`limit`: the most bytes the header can span (the file's size, where known)."""
        self.data, self.pos, self.limit = data, 0, limit

    def count(self, n: int, item_bytes: int, what: str) -> int:
        """A count read from the header, refused when its items could not fit in the file:
        a damaged or hostile header must not make us loop or allocate without end."""
        if n * item_bytes > self.limit - self.pos:
            raise HeaderError(f"the header claims {n:,} {what}, more than the file's "
                              f"{self.limit:,} bytes can hold; the file is damaged")
        return n

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NeedMore
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        size = self.count(self.scalar("<Q"), 1, "bytes of text")
        return self.take(size).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over `count` strings without decoding them: a vocabulary's 262k token texts
        took a second to decode, and only their number is used."""
        data, pos, unpack = self.data, self.pos, struct.unpack_from
        for _ in range(count):
            if pos + 8 > len(data):
                raise NeedMore
            size = unpack("<Q", data, pos)[0]
            if size > self.limit - pos:
                raise HeaderError(f"the header claims {size:,} bytes of text, more than the "
                                  f"file's {self.limit:,} bytes can hold; the file is damaged")
            pos += 8 + size
        if pos > len(data):
            raise NeedMore
        self.pos = pos

    def value(self, kind: int) -> Any:
        """A scalar or a string; for an array, the number of its values (all that is used of
        one: the vocabulary's size), its values stepped over."""
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item = self.scalar("<I")
            width = struct.calcsize(_SCALARS[item]) if item in _SCALARS else 8
            count = self.count(self.scalar("<Q"), width, "array values")
            if item in _SCALARS:
                self.take(width * count)
            elif item == _STRING:
                self.skip_strings(count)
            else:
                for _ in range(count):
                    self.value(item)
            return count
        raise HeaderError(f"unknown GGUF value type {kind}")


def parse(data: bytes, file_size: int | None = None) -> Header:
    """The header in `data` (the start of a file of `file_size` bytes); NeedMore if `data`
    stops inside it, HeaderError if it is not a GGUF header or claims more than can fit."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    r = _Reader(data, file_size or MAX_HEADER)
    if r.take(4) != b"GGUF":
        raise HeaderError("not a GGUF file")
    version = r.scalar("<I")
    if version < 2:
        raise HeaderError(f"GGUF version {version} is too old")
    n_tensors = r.count(r.scalar("<Q"), 24, "tensors")  # name length, type, offset at least
    n_kv = r.count(r.scalar("<Q"), 12, "metadata keys")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.scalar("<I"))
    tensors, layouts = {}, {}
    params = last = 0
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar("<I")
        if n_dims > MAX_DIMS:
            raise HeaderError(f"tensor {name!r} claims {n_dims} dimensions; the file is damaged")
        dims = [r.scalar("<Q") for _ in range(n_dims)]
        kind = r.scalar("<I")
        offset = r.scalar("<Q")
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        except (ValueError, KeyError):
            raise HeaderError(f"tensor {name!r} has an unknown type ({kind})") from None
        elements = 1
        for d in dims:
            elements *= d
        tensors[name] = elements // block * size
        last = max(last, offset + tensors[name])
        layouts[name] = (GGMLQuantizationType(kind).name, dims[1] if n_dims > 1 else 1,
                         dims[0] if dims else 1)
        params += elements
    align = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        align = DEFAULT_ALIGNMENT
    return Header(metadata, tensors, params, layouts, -(-r.pos // align) * align + last)


def read_local(path: Path) -> Header:
    """The header of a file on disk; HeaderError also when its tensors reach past its end (a
    download cut short: planned as it is, it looked like a tiny model of heavy quality loss).
    Read once per process while the file keeps its size and time (`ask` plans, checks and
    measures one model: three reads of a 70B's header before)."""
    stat = path.stat()
    return _read_local(path.resolve(), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=16)
def _read_local(path: Path, file_size: int, _mtime_ns: int, _inode: int) -> Header:
    size = FIRST_READ
    with path.open("rb") as f:
        while True:
            f.seek(0)
            data = f.read(size)
            try:
                header = parse(data, file_size)
                break
            except NeedMore:
                if len(data) < size or size >= MAX_HEADER:
                    raise HeaderError(f"{path.name}: the header is cut short") from None
                size *= 4
    if header.data_end > file_size:
        raise IncompleteFile(f"{path.name} is incomplete: {file_size:,} of {header.data_end:,} "
                          "bytes (a download cut short?); download it again")
    return header


def fetch(url: str, cache_key: str, headers: dict[str, str] | None = None) -> Header:
    """The header of the file at `url`, with Range requests that grow until it is all there;
    the bytes are cached under `cache_key` (the file's sha256 where known)."""
    import httpx  # here, not at the top: every command reads local headers, few fetch one

    cache = header_cache_dir() / \
        hashlib.sha256(cache_key.encode()).hexdigest()
    if cache.exists():
        try:
            return parse(cache.read_bytes())
        except (NeedMore, HeaderError):
            cache.unlink()
    size = FIRST_READ
    with httpx.Client(headers=headers or {}, follow_redirects=True, timeout=30.0) as client:
        while True:
            response = client.get(url, headers={"Range": f"bytes=0-{size - 1}"})
            if response.status_code not in (200, 206):
                raise HeaderError(f"HTTP {response.status_code} reading the header of {url}")
            data = response.content[:size]
            try:
                header = parse(data)
                break
            except NeedMore:
                if len(data) < size or size >= MAX_HEADER:
                    raise HeaderError(f"the header of {url} is cut short") from None
                size *= 4
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(data)
    return header
