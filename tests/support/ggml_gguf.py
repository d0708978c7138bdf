"""A GGUF file's header as llama.cpp itself reads it: ggml's `gguf_init_from_file` and its
getters (ggml/include/gguf.h), called through ctypes in the library llama-cpp-python ships.
The reference our own header reader is checked against: the reader the model loads with, and
milliseconds on a 262k-token vocabulary where gguf-py's GGUFReader takes ten seconds."""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp

_SCALARS = {  # enum gguf_type -> its getter and C type
    0: ("u8", ctypes.c_uint8), 1: ("i8", ctypes.c_int8), 2: ("u16", ctypes.c_uint16),
    3: ("i16", ctypes.c_int16), 4: ("u32", ctypes.c_uint32), 5: ("i32", ctypes.c_int32),
    6: ("f32", ctypes.c_float), 7: ("bool", ctypes.c_bool), 10: ("u64", ctypes.c_uint64),
    11: ("i64", ctypes.c_int64), 12: ("f64", ctypes.c_double),
}
_STRING, _ARRAY = 8, 9


class _Params(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, _Params]
    lib.gguf_init_from_file.restype = ctypes.c_void_p
    lib.gguf_free.argtypes = [ctypes.c_void_p]
    for name, result in (("gguf_get_n_kv", ctypes.c_int64),
                         ("gguf_get_n_tensors", ctypes.c_int64)):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = result
    for name, result in (("gguf_get_key", ctypes.c_char_p), ("gguf_get_kv_type", ctypes.c_int),
                         ("gguf_get_arr_n", ctypes.c_size_t),
                         ("gguf_get_val_str", ctypes.c_char_p),
                         ("gguf_get_tensor_name", ctypes.c_char_p),
                         ("gguf_get_tensor_size", ctypes.c_size_t),
                         *((f"gguf_get_val_{n}", t) for n, t in _SCALARS.values())):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int64]
        getattr(lib, name).restype = result
    return lib


def llama_cpp_header(path: Path) -> tuple[dict[str, int], dict[str, object]]:
    """(tensor name -> bytes, key -> value) with arrays as their length, as our reader keeps
    them."""
    lib = _library()
    ctx = lib.gguf_init_from_file(str(path).encode(), _Params(True, None))
    assert ctx, f"llama.cpp could not read {path}"
    try:
        tensors = {lib.gguf_get_tensor_name(ctx, i).decode(): lib.gguf_get_tensor_size(ctx, i)
                   for i in range(lib.gguf_get_n_tensors(ctx))}
        metadata: dict[str, object] = {}
        for i in range(lib.gguf_get_n_kv(ctx)):
            kind = lib.gguf_get_kv_type(ctx, i)
            if kind == _ARRAY:
                value: object = lib.gguf_get_arr_n(ctx, i)
            elif kind == _STRING:
                value = lib.gguf_get_val_str(ctx, i).decode()
            else:
                value = getattr(lib, f"gguf_get_val_{_SCALARS[kind][0]}")(ctx, i)
            metadata[lib.gguf_get_key(ctx, i).decode()] = value
        return tensors, metadata
    finally:
        lib.gguf_free(ctx)
