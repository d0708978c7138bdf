"""GGUFs other tools already downloaded, found where each tool's documentation says it keeps
them, and used in place:
- the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`/hub);
- llama.cpp's cache (`LLAMA_CACHE`, else ~/.cache/llama.cpp): the hub layout, and the older flat
  files named `<owner>_<repo>_<file>.gguf`;
- Ollama's store (`OLLAMA_MODELS`, else ~/.ollama/models and the Linux service's
  /usr/share/ollama/.ollama/models): each manifest's `application/vnd.ollama.image.model`
  layer is a GGUF blob;
- LM Studio's models folder (`~/.lmstudio-home-pointer` names its home, else ~/.cache/lm-studio
  when it exists, else ~/.lmstudio): `models/<publisher>/<model>/<file>.gguf`.
Only files that start with the GGUF magic count; of a split model, the first shard stands for
all; vision projectors (`mmproj-*`) are not chat models and are left out.

Those folders are other programs' and may hold anything: only regular files are opened (a FIFO
would block the open, a device such as /dev/zero behind a link would never end), manifests and
pointer files are read only up to `SMALL_FILE` bytes, and JSON nested too deep is skipped like
any other unreadable manifest.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from reflectchat.engine.gguf_file import shard_paths

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_REGISTRY, OLLAMA_LIBRARY = "registry.ollama.ai", "library"
LATER_SHARD = re.compile(r"-(\d{5})-of-\d{5}\.gguf$")
SMALL_FILE = 1 << 20  # a manifest or pointer file is far smaller: larger is not one


@dataclass(frozen=True)
class LocalModel:
    path: Path  # the file to load: the first shard, or Ollama's blob
    source: str  # Hugging Face cache | llama.cpp cache | Ollama | LM Studio
    model: str  # how that tool names the model: owner/repo, publisher/model, name
    name: str  # the file, or Ollama's tag
    size: int  # bytes, all shards


def find_local_models(env: Mapping[str, str] | None = None,
                      home: Path | None = None) -> list[LocalModel]:
    env = os.environ if env is None else env
    home = home or Path.home()
    found: list[LocalModel] = []
    seen: set[Path] = set()
    for model in [*_hub_cache(_hf_cache(env, home), "Hugging Face cache"),
                  *_llama_cache(env, home), *_ollama(env, home), *_lm_studio(home)]:
        real = model.path.resolve()
        if real not in seen:
            seen.add(real)
            found.append(model)
    return found


def _regular(path: Path) -> bool:
    """A regular file, links followed: never a FIFO, a socket or a device."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def _read(path: Path, limit: int) -> bytes | None:
    """The first `limit` + 1 bytes of a regular file (None: not one, or unreadable). Opened
    without blocking, should it turn into a FIFO between the check and the open."""
    if not _regular(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _small_text(path: Path) -> str | None:
    """A small file's text (a manifest, a pointer); None for anything else."""
    data = _read(path, SMALL_FILE)
    if data is None or len(data) > SMALL_FILE:
        return None
    return data.decode("utf-8", errors="replace")


def _is_gguf(path: Path) -> bool:
    return _read(path, 3) == b"GGUF"


def _wanted(path: Path) -> bool:
    match = LATER_SHARD.search(path.name)
    return (not path.name.lower().startswith("mmproj") and not (match and match[1] != "00001")
            and _is_gguf(path))


def _size(path: Path) -> int:
    try:
        return sum(p.stat().st_size for p in shard_paths(path))
    except OSError:
        return 0


def _hf_cache(env: Mapping[str, str], home: Path) -> Path:
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    hf_home = Path(env["HF_HOME"]).expanduser() if env.get("HF_HOME") else \
        Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface"
    return hf_home / "hub"


def _hub_cache(root: Path, source: str) -> Iterator[LocalModel]:
    """`models--owner--repo/snapshots/<revision>/<file>` (symlinks into `blobs/`)."""
    for repo in sorted(root.glob("models--*")):
        name = repo.name.removeprefix("models--").replace("--", "/")
        for path in sorted((repo / "snapshots").glob("*/**/*.gguf")):
            if path.is_file() and _wanted(path):
                yield LocalModel(path, source, name, path.name, _size(path))


def _llama_cache(env: Mapping[str, str], home: Path) -> Iterator[LocalModel]:
    root = Path(env["LLAMA_CACHE"]).expanduser() if env.get("LLAMA_CACHE") else \
        Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "llama.cpp"
    yield from _hub_cache(root, "llama.cpp cache")
    for path in sorted(root.glob("*.gguf")):
        if path.is_file() and _wanted(path):
            owner_repo = path.name.split("_")
            model = "/".join(owner_repo[:2]) if len(owner_repo) > 2 else path.stem
            yield LocalModel(path, "llama.cpp cache", model, path.name, _size(path))


def _ollama(env: Mapping[str, str], home: Path) -> Iterator[LocalModel]:
    roots = [Path(env["OLLAMA_MODELS"]).expanduser()] if env.get("OLLAMA_MODELS") else \
        [home / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]
    for root in roots:
        for manifest in sorted((root / "manifests").glob("*/*/*/*")):
            blob = _ollama_blob(root, manifest)
            if blob is None:
                continue
            host, namespace, model, tag = manifest.relative_to(root / "manifests").parts
            name = model if (host, namespace) == (OLLAMA_REGISTRY, OLLAMA_LIBRARY) else \
                f"{host}/{namespace}/{model}"
            yield LocalModel(blob, "Ollama", name, f"{name}:{tag}", _size(blob))


def _ollama_blob(root: Path, manifest: Path) -> Path | None:
    text = _small_text(manifest)
    if text is None:
        return None
    try:
        layers = json.loads(text).get("layers", [])
    except (ValueError, AttributeError, RecursionError):  # nested deeper than Python parses
        return None
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER:
            digest = str(layer.get("digest", ""))
            if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                blob = root / "blobs" / digest.replace(":", "-")
                return blob if _is_gguf(blob) else None
    return None


def lm_studio_home(home: Path) -> Path:
    pointer = home / ".lmstudio-home-pointer"
    named = (_small_text(pointer) or "").strip()
    if named:
        return Path(named).expanduser()
    cache = home / ".cache" / "lm-studio"
    return cache if cache.is_dir() else home / ".lmstudio"


def _lm_studio(home: Path) -> Iterator[LocalModel]:
    root = lm_studio_home(home) / "models"
    for path in sorted(root.glob("*/*/*.gguf")):
        if path.is_file() and _wanted(path):
            publisher, model = path.parent.parent.name, path.parent.name
            yield LocalModel(path, "LM Studio", f"{publisher}/{model}", path.name, _size(path))
