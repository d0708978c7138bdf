"""Remote OpenAI-compatible servers (llama-server, vLLM, Ollama, LM Studio): where they are and
how to reach them, from `--endpoint` or a named `[endpoints.NAME]` table in config.toml:

    [endpoints.lab]
    url = "http://gpu-box:8080"     # http or https; "/v1" is added when missing
    model = "reflection-70b"        # optional: the server's name for the model
    api_key_env = "LAB_API_KEY"     # optional: the environment variable holding the key
    format = "reflection"           # optional: reflection | think | plain | auto
    context = 32768                 # optional: the server's context, if it does not say
    verify_tls = true               # optional: false only for a self-signed test server
    timeout = 180                   # optional: seconds to wait for the next streamed event

The key itself is never written anywhere: it is read from the environment when connecting.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reflectchat.engine.base import FORMAT_NAMES, TagFormat
from reflectchat.engine.errors import EngineError

DEFAULT_TIMEOUT_S = 180.0  # a 70B can take minutes to read a long prompt: --timeout for more


@dataclass(frozen=True)
class Endpoint:
    url: str  # the API base, ending in /v1
    model: str | None = None
    api_key_env: str | None = None
    format: TagFormat | None = None
    context: int | None = None
    verify_tls: bool = True
    timeout: float = DEFAULT_TIMEOUT_S
    name: str | None = None  # the config table it came from

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def api_key(self) -> str | None:
        """The key from the environment variable the endpoint names."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise EngineError(f"The endpoint's API key is read from the environment variable "
                              f"{self.api_key_env}, which is not set")
        return key


def api_base(url: str) -> str:
    """Check a server URL and return its API base (ending in /v1). Only http and https are
    accepted, and no user or password in the URL: keys belong in an environment variable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise EngineError(f"An endpoint must be an http:// or https:// URL, not {url!r}")
    if not parts.hostname:
        raise EngineError(f"The endpoint URL {url!r} has no host")
    if parts.username or parts.password:
        raise EngineError("Put the API key in an environment variable (api_key_env), not in "
                          "the endpoint URL")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def endpoint_from_table(name: str, table: object) -> Endpoint:
    """A named endpoint from config.toml; EngineError names the key that is wrong."""
    where = f"[endpoints.{name}]"
    if not isinstance(table, dict):
        raise EngineError(f"{where} must be a table")
    known = {f.name for f in fields(Endpoint)} - {"name"}
    unknown = set(table) - known
    if unknown:
        raise EngineError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    if not isinstance(table.get("url"), str):
        raise EngineError(f"{where} needs url = \"http://host:port\"")
    kinds: dict[str, Any] = {"model": str, "api_key_env": str, "format": str, "context": int,
                             "verify_tls": bool, "timeout": (int, float)}
    for key, kind in kinds.items():
        value = table.get(key)
        if value is not None and (not isinstance(value, kind) or
                                  (kind is int and isinstance(value, bool))):
            raise EngineError(f"{where}: {key} has the wrong type ({type(value).__name__})")
    timeout = table.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not math.isfinite(timeout)
                                or not 0 < timeout <= 86_400):
        raise EngineError(f"{where}: timeout takes seconds between 0 and 86400, not {timeout}")
    context = table.get("context")
    if context is not None and not 0 < context <= 1 << 24:
        raise EngineError(f"{where}: context takes a number of tokens, not {context}")
    try:
        tag_format = TagFormat.parse(table["format"]) if "format" in table else None
    except ValueError:
        raise EngineError(f"{where}: format must be one of "
                          f"{', '.join(FORMAT_NAMES)}, or tags:OPEN,CLOSE") from None
    return Endpoint(api_base(table["url"]), table.get("model"), table.get("api_key_env"),
                    tag_format, table.get("context"), table.get("verify_tls", True),
                    float(table.get("timeout", DEFAULT_TIMEOUT_S)), name)


def resolve_endpoint(value: str, tables: dict[str, object],
                     api_key_env: str | None = None) -> Endpoint:
    """`--endpoint` is a configured endpoint's name or a URL."""
    if value in tables:
        endpoint = endpoint_from_table(value, tables[value])
    elif "://" in value:
        endpoint = Endpoint(api_base(value))
    else:
        names = ", ".join(sorted(tables)) or "none are configured"
        raise EngineError(f"--endpoint {value!r} is neither a URL nor a configured endpoint "
                          f"(in config.toml: {names})")
    if api_key_env:
        endpoint = Endpoint(**{**endpoint.__dict__, "api_key_env": api_key_env})
    return endpoint
