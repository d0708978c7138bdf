"""Checks on a GGUF path before and after llama.cpp tries it, for errors a user can act on."""

from __future__ import annotations

import re
from pathlib import Path

from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_header import HeaderError, IncompleteFile, read_local
from reflectchat.versions import installed

_SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
_RAW_PART = re.compile(r"\.gguf\.part\d+of\d+$")


def shard_paths(path: Path) -> list[Path]:
    """Every file of a model: the file itself, or all shards of a gguf-split model."""
    m = _SHARD.match(path.name)
    if not m:
        return [path]
    if int(m["index"]) != 1:
        first = path.with_name(f"{m['stem']}-00001-of-{m['count']}.gguf")
        raise EngineError(f"{path.name} is shard {int(m['index'])} of a split model; "
                          f"pass the first shard instead: {first}")
    count = int(m["count"])
    return [path.with_name(f"{m['stem']}-{i:05d}-of-{m['count']}.gguf")
            for i in range(1, count + 1)]


def check_before_load(path: Path) -> None:
    """Cheap checks: the file exists, every shard is there, and each starts like a GGUF (a
    file cut short is said by `diagnose_load_failure`: reading a header with 300,000 tokens
    here would slow every load)."""
    if _RAW_PART.search(path.name):
        whole = path.name.rsplit(".part", 1)[0]
        raise EngineError(f"{path.name} is one byte-split part, not a loadable GGUF; join the "
                          f"parts first: cat {whole}.part* > {whole}")
    if not path.exists():
        raise EngineError(f"Model file not found: {path}")
    if path.is_dir():
        raise EngineError(f"{path} is a folder; pass the .gguf file inside it")
    shards = shard_paths(path)
    for i, shard in enumerate(shards, start=1):
        if not shard.exists():
            raise EngineError(f"Shard {i} of {len(shards)} is missing: {shard} "
                              "(keep every shard of a split model in the same folder)")
        with shard.open("rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise EngineError(f"{shard} is not a GGUF model file "
                              f"(it starts with {magic!r}, not b'GGUF')")



def tensor_names(path: Path) -> list[str]:
    """The names of every tensor in the model's files, from their headers (none where a
    header cannot be read: the load then says what is wrong)."""
    names: list[str] = []
    for shard in shard_paths(path):
        try:
            names += read_local(shard).tensors
        except (OSError, HeaderError):
            return []
    return names


def diagnose_load_failure(path: Path, said: str = "") -> str:
    """Why llama.cpp refused a file that passed `check_before_load`, as one sentence; `said`
    is llama.cpp's own last error, if any. Our header reader bounds every count by the file's
    size and finds a file cut short; it reads a 262k-token vocabulary in a tenth of a second
    (gguf-py's GGUFReader, used here before, took ten)."""
    for shard in shard_paths(path):
        try:
            header = read_local(shard)
        except IncompleteFile as exc:
            return str(exc)
        except (HeaderError, OSError) as exc:
            return f"{shard} has a damaged GGUF header ({exc}); download it again"
        name = header.metadata.get("general.architecture")
        if isinstance(name, str):
            if "unknown model architecture" in said:
                return (f"{path.name} is a '{name}' model, an architecture this llama.cpp "
                        f"(llama-cpp-python {installed('llama_cpp_python')}) does not know; a "
                        "newer llama-cpp-python may run it (packaging/install.sh upgrades it for "
                        "your GPU)")
            return (f"llama.cpp could not load {path.name} (architecture '{name}'): the file may "
                    "be damaged, its architecture unsupported by this llama.cpp build, or memory "
                    "short for the requested GPU layers")
    return f"llama.cpp could not load {path.name}"


def mtp_layers(path: Path) -> int:
    """The multi-token-prediction layers a GGUF carries (`ARCH.nextn_predict_layers`: Qwen3.5,
    Qwen3-Next, GLM-4.5, DeepSeek V3 files); 0 for none or an unreadable header."""
    try:
        meta = read_local(path).metadata
    except (HeaderError, OSError):
        return 0
    value = meta.get(f"{meta.get('general.architecture')}.nextn_predict_layers")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
