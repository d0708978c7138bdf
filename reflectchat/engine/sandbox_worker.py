"""The process where outside input is worked on apart from the app: a model file's chat
template, tensor-override patterns over its tensor names, an answer checked as mathematics.

A GGUF's template is a program from whoever made the file. Jinja's sandbox stops it reaching
Python's internals, but not from looping for hours or building gigabytes of text, and a thread
cannot be stopped from outside. A regular expression can backtrack for hours too (llama.cpp's
std::regex hangs the load on such an --override-tensor pattern), and sympy can expand a
27-byte answer into gigabytes. So they run here: the app
sends one JSON request a line on stdin and reads one reply a line on stdout; it kills this
process when a request runs past its time, and this process refuses a prompt past
`OUTPUT_LIMIT` and, where the system allows, lives within `MEMORY_LIMIT` of address space.

The environment is the one Hugging Face transformers and llama-cpp-python give chat templates
(transformers' `chat_template_utils.py`): a sandbox that trims blocks, loop controls, the
`{% generation %}` tag passed through, `tojson` that keeps non-ASCII text, and the globals
`raise_exception` and `strftime_now`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from datetime import datetime
from typing import Any

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

OUTPUT_LIMIT = 16 << 20  # characters: a prompt of 16 million characters fits no context
MEMORY_LIMIT = 1 << 30  # bytes of address space for this whole process (Linux, BSD)
_COMPILED_KEPT = 8


class OutputLimit(Exception):
    pass


class _GenerationTag(Extension):
    """`{% generation %}...{% endgeneration %}` marks trained spans; rendering ignores it."""

    tags = {"generation"}  # noqa: RUF012 (Jinja's extension API)

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _strftime_now(form: str) -> str:
    return datetime.now().strftime(form)


class Renderer:
    def __init__(self) -> None:
        self._environment = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
            extensions=[_GenerationTag, loopcontrols])
        self._environment.filters["tojson"] = _tojson
        self._compiled: dict[str, jinja2.Template] = {}

    def render(self, request: dict[str, Any]) -> str:
        source = request["source"]
        template = self._compiled.get(source)
        if template is None:
            if len(self._compiled) >= _COMPILED_KEPT:
                self._compiled.pop(next(iter(self._compiled)))
            template = self._compiled[source] = self._environment.from_string(source)
        pieces: list[str] = []
        size = 0
        for piece in template.generate(
                **request.get("variables", {}), messages=request["messages"],
                bos_token=request["bos"], eos_token=request["eos"],
                add_generation_prompt=request["generation_prompt"],
                raise_exception=_raise_exception, strftime_now=_strftime_now,
                tools=None, functions=None, tool_choice=None, function_call=None):
            size += len(piece)
            if size > OUTPUT_LIMIT:
                raise OutputLimit
            pieces.append(piece)
        return "".join(pieces)


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # Windows: the time limit still holds
        return
    # a hard limit already lower, or a system that refuses: the time limit still holds
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def read_variables(source: str) -> list[str]:
    """The variables a template reads that nobody sets for it (`messages`, the tokens and the
    functions we pass aside): where its switches are (`enable_thinking`, `reasoning`,
    `thinking_effort`, ...)."""
    from jinja2 import meta

    given = {"messages", "bos_token", "eos_token", "add_generation_prompt", "raise_exception",
             "strftime_now", "tools", "functions", "tool_choice", "function_call"}
    tree = Renderer()._environment.parse(source)
    return sorted(meta.find_undeclared_variables(tree) - given)


def call(request: dict[str, Any]) -> Any:
    """One of reflectchat's own functions, named "reflectchat.module:name"."""
    module, _, name = str(request["call"]).partition(":")
    if not module.startswith("reflectchat."):
        raise ValueError(f"{module} is not reflectchat's")
    return getattr(importlib.import_module(module), name)(*request["args"])


def reply_to(renderer: Renderer, line: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
        if "call" in request:
            return {"result": call(request)}
        return {"text": renderer.render(request)}
    except OutputLimit:
        return {"bound": f"it wrote more than {OUTPUT_LIMIT >> 20} million characters"}
    except MemoryError:
        return {"bound": f"it needed more than {MEMORY_LIMIT >> 20} MiB of memory"}
    except RecursionError:
        return {"error": "it nests too deeply"}
    except Exception as exc:  # the template's own error, of any kind
        return {"error": str(exc) or type(exc).__name__}


def main() -> None:
    _limit_memory()
    renderer = Renderer()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(reply_to(renderer, line)) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
