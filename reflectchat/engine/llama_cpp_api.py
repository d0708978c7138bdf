"""One of the two modules that touch llama-cpp-python (the other, llama_cpp_model.py, holds a
loaded model's context): here its load, the vocabulary, the chat-template and log functions,
and the model parameters `Llama()` does not expose. Everything else in reflectchat goes through
the small API of these two, so an upgrade of llama-cpp-python is checked in one place:
`check_installed` names what a version lacks in one sentence instead of failing deep inside a
load.

The parts of llama-cpp-python used beyond its documented `Llama` API, and why:
- `Llama._model.vocab` with `llama_token_to_piece(..., special=True)`, `llama_vocab_is_eog` and
  `llama_vocab_get_attr`: the library's streaming renders control tokens as nothing (a
  Reflection GGUF's `<thinking>`), and its prompt tokenizing cannot tell template markup from
  pasted text (engine/prompt.py).
- `llama_model_default_params`, swapped while a load runs on the loading thread only: the
  progress callback, `use_extra_bufts` (repacked CPU weights) and `tensor_buft_overrides` (a
  mixture of experts' experts in RAM: llama.cpp's --override-tensor), which `Llama()` does not
  take (llama-cpp-python declares the last one "unused").
- `llama_chat_format.Jinja2ChatFormatter`, swapped while a load runs: `Llama()` compiles every
  chat template in the file, in this process and with no bound (Jinja folds constant
  expressions as it compiles, so `'x' | center(3000000000)` builds 3 GB there); reflectchat
  renders the template itself, in a bounded process (engine/sandbox.py).
- ggml's backend registry (`ggml_backend_dev_*`, `ggml_backend_cpu_buffer_type`), exported by
  the same libraries: the buffer types an override can name.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
from llama_cpp import llama_chat_format
from llama_cpp import llama_cpp as low_level

from reflectchat.engine.base import KV_TYPES
from reflectchat.engine.errors import EngineError
from reflectchat.versions import installed

KV_CACHE_TYPES = {name: getattr(llama_cpp, f"GGML_TYPE_{name.upper()}") for name in KV_TYPES}
_SPECIAL = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
_NEEDED_FUNCTIONS = (
    "llama_model_default_params", "llama_token_to_piece", "llama_vocab_is_eog",
    "llama_vocab_get_attr", "llama_vocab_get_add_bos", "llama_vocab_eot",
    "llama_model_n_layer", "llama_vocab_type", "llama_get_logits_ith",
    "llama_chat_builtin_templates", "llama_chat_apply_template",
    "llama_set_abort_callback", "llama_log_set", "llama_supports_gpu_offload",
    "llama_print_system_info",
)
_NEEDED_PARAMS = ("progress_callback", "use_extra_bufts", "tensor_buft_overrides")
SUPPORTED = "llama-cpp-python>=0.3.36,<0.4"


def check_installed() -> None:
    """Raise EngineError, in one sentence, if the installed llama-cpp-python lacks anything
    this module uses."""
    missing = [f for f in _NEEDED_FUNCTIONS if not hasattr(low_level, f)]
    if not hasattr(llama_chat_format, "Jinja2ChatFormatter"):
        missing.append("llama_chat_format.Jinja2ChatFormatter")
    missing += [f"Llama.{a}" for a in ("generate", "tokenize", "token_bos", "n_vocab")
                if not hasattr(llama_cpp.Llama, a)]
    fields = {name for name, _ in low_level.llama_model_params._fields_}
    missing += [f"llama_model_params.{p}" for p in _NEEDED_PARAMS if p not in fields]
    if missing:
        raise lacking(missing)


def lacking(missing: list[str]) -> EngineError:
    return EngineError(f"The installed llama-cpp-python ({installed('llama_cpp_python')}) lacks "
                       f"{', '.join(missing)}, which reflectchat needs; install {SUPPORTED}")


def supports_gpu_offload() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


def system_info() -> str:
    return llama_cpp.llama_print_system_info().decode(errors="replace")


LogSink = Callable[[int, str], None]
_log_sink: list[LogSink] = []


@llama_cpp.llama_log_callback
def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    if _log_sink:
        _log_sink[0](level, text.decode("utf-8", errors="replace"))


def route_log(sink: LogSink) -> None:
    """Send llama.cpp's log (level, text) to `sink` instead of stderr."""
    _log_sink[:] = [sink]
    llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))


# --- model parameters `Llama()` does not take --------------------------------------------

_load_lock = threading.Lock()
_params_for: dict[int, Callable[[Any], None]] = {}  # loading thread -> what it sets
_plain_defaults = low_level.llama_model_default_params
_plain_formatter = llama_chat_format.Jinja2ChatFormatter


class _TemplateLeftAlone:
    """What `Llama()` gets for a chat template while we load: nothing compiled, and a chat
    handler that says so (reflectchat never asks the library to format a chat)."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Callable[..., Any]:
        def refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise EngineError("reflectchat renders chat templates itself "
                              "(engine/prompt.py), not through llama-cpp-python")

        return refuse


def _defaults_for_this_thread() -> Any:
    params = _plain_defaults()
    adjust = _params_for.get(threading.get_ident())
    if adjust is not None:
        adjust(params)
    return params


class _TensorOverride(ctypes.Structure):
    """llama.cpp's `llama_model_tensor_buft_override`: tensors whose name matches `pattern`
    (a C++ std::regex) go into the buffer type `buft`; an array of them ends with a NULL
    pattern."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def _ggml(name: str, restype: Any, *argtypes: Any) -> Any:
    function = getattr(low_level._lib, name)
    function.restype, function.argtypes = restype, list(argtypes)
    return function


def buffer_types() -> dict[str, int]:
    """The buffer types this llama.cpp can put tensors in, by name ("CPU", "CUDA0", ...), as
    llama.cpp's own --override-tensor lists them."""
    count = _ggml("ggml_backend_dev_count", ctypes.c_size_t)
    device = _ggml("ggml_backend_dev_get", ctypes.c_void_p, ctypes.c_size_t)
    buffer = _ggml("ggml_backend_dev_buffer_type", ctypes.c_void_p, ctypes.c_void_p)
    name = _ggml("ggml_backend_buft_name", ctypes.c_char_p, ctypes.c_void_p)
    found = {}
    for i in range(count()):
        buft = buffer(device(i))
        if buft:
            found[name(buft).decode()] = buft
    found["CPU"] = _ggml("ggml_backend_cpu_buffer_type", ctypes.c_void_p)()
    return found


def _override_array(overrides: Sequence[tuple[str, str]]) -> ctypes.Array[_TensorOverride]:
    """The overrides as llama.cpp reads them; EngineError names a buffer type not here."""
    types = buffer_types()
    array = (_TensorOverride * (len(overrides) + 1))()
    for i, (pattern, buffer) in enumerate(overrides):
        if buffer not in types:
            raise EngineError(f"No buffer type {buffer!r} in this llama.cpp build for "
                              f"--override-tensor; it has {', '.join(sorted(types))}")
        array[i].pattern, array[i].buft = pattern.encode(), types[buffer]
    return array


@contextlib.contextmanager
def model_params(progress: Callable[[float], bool] | None = None, repack: bool = False,
                 overrides: Sequence[tuple[str, str]] = ()) -> Iterator[None]:
    """While this runs, a `Llama()` built on this thread gets a progress callback (return
    False to abort), repacked CPU weights on or off and its tensor `overrides` ((pattern,
    buffer type) pairs); a `Llama()` built on any other thread meanwhile gets llama.cpp's
    plain defaults. No `Llama()` compiles a chat template meanwhile."""
    callback = None
    if progress is not None:
        callback = llama_cpp.llama_progress_callback(lambda value, _data: bool(progress(value)))
    placed = _override_array(overrides) if overrides else None  # alive until the load ends

    def adjust(params: Any) -> None:
        params.use_extra_bufts = repack
        if callback is not None:
            params.progress_callback = callback
        if placed is not None:
            params.tensor_buft_overrides = ctypes.cast(placed, ctypes.c_void_p)

    with _load_lock:
        _params_for[threading.get_ident()] = adjust
        low_level.llama_model_default_params = _defaults_for_this_thread
        llama_chat_format.Jinja2ChatFormatter = _TemplateLeftAlone  # type: ignore[misc]
        try:
            yield
        finally:
            del _params_for[threading.get_ident()]
            low_level.llama_model_default_params = _plain_defaults
            llama_chat_format.Jinja2ChatFormatter = _plain_formatter  # type: ignore[misc]


# --- the vocabulary ------------------------------------------------------------------------

class Vocab:
    """A loaded model's tokens: ids, their text, and which end a generation."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._llm = llm
        self._vocab = llm._model.vocab
        self._buf = ctypes.create_string_buffer(64)

    @property
    def bos(self) -> int:
        return self._llm.token_bos()

    @property
    def eos(self) -> int:
        return self._llm.token_eos()

    @property
    def eot(self) -> int:
        return llama_cpp.llama_vocab_eot(self._vocab)

    @property
    def adds_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    @property
    def kind(self) -> int:
        """llama.cpp's `llama_vocab_type`: SPM, BPE, WPM, ..."""
        return int(llama_cpp.llama_vocab_type(self._vocab))

    @property
    def size(self) -> int:
        return self._llm.n_vocab()

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def has_special(self, text: str) -> bool:
        """Whether `text` is one special token of this vocabulary."""
        found = self.tokenize(text, special=True)
        return len(found) == 1 and self.is_special(found[0]) and self.text(found[0]) == text

    def specials_in(self, text: str) -> list[str]:
        """The texts of the special tokens llama.cpp finds in `text`, in order."""
        return [self.text(t) for t in self.tokenize(text, special=True) if self.is_special(t)]

    def is_special(self, token: int) -> bool:
        """A CONTROL or USER_DEFINED token: markup, not text."""
        return bool(llama_cpp.llama_vocab_get_attr(self._vocab, token) & _SPECIAL)

    def text(self, token: int) -> str:
        """The token's text as the vocabulary stores it ("" for none)."""
        return self._llm._model.token_get_text(token) if token >= 0 else ""

    def tokenize(self, text: str, special: bool) -> list[int]:
        """`text` without a start token; `special`: markup of special tokens becomes them."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def text_of(self, tokens: Sequence[Any]) -> str:
        """The text of a run of tokens, special tokens rendered, a cut character replaced."""
        return b"".join(self.piece(int(t)) for t in tokens).decode("utf-8", errors="replace")

    def piece(self, token: int) -> bytes:
        """The exact bytes of one token, special tokens rendered (the library's own streaming
        renders them as nothing and cuts pieces at 32 bytes)."""
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf), 0,
                                           True)
        if n < 0:
            self._buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buf, len(self._buf),
                                               0, True)
        return self._buf.raw[:n]


# --- chat templates ------------------------------------------------------------------------

def builtin_templates() -> list[str]:
    """The names of llama.cpp's built-in chat templates."""
    count = llama_cpp.llama_chat_builtin_templates(None, 0)
    names = (ctypes.c_char_p * count)()
    llama_cpp.llama_chat_builtin_templates(names, count)
    return [n.decode() for n in names if n]


_PROBE = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
          {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}]


def recognised_template(source: str) -> str | None:
    """The built-in template llama.cpp recognises in a Jinja template's text
    (`llm_chat_detect_template`: `<|im_start|>` means chatml, ...), by name; None if none."""
    try:
        rendered = apply_builtin_template(source, _PROBE)
    except EngineError:
        return None
    return next((name for name in builtin_templates()
                 if apply_builtin_template(name, _PROBE) == rendered), None)


def apply_builtin_template(name: str, messages: list[dict[str, str]]) -> str:
    """The prompt llama.cpp's built-in template `name` makes of `messages`, ending where the
    assistant's answer begins."""
    chat = (llama_cpp.llama_chat_message * len(messages))()
    keep = []  # the encoded strings must outlive the call
    for i, m in enumerate(messages):
        role, content = m["role"].encode(), m["content"].encode()
        keep += [role, content]
        chat[i].role, chat[i].content = role, content
    needed = llama_cpp.llama_chat_apply_template(name.encode(), chat, len(messages), True,
                                                 None, 0)
    if needed < 0:
        raise EngineError(f"llama.cpp has no chat template named {name!r}")
    buffer = ctypes.create_string_buffer(needed + 1)
    written = llama_cpp.llama_chat_apply_template(name.encode(), chat, len(messages), True,
                                                  buffer, needed + 1)
    return buffer.raw[:written].decode("utf-8", errors="replace")
