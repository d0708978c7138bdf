"""GGUF headers from outside (a download, a user's file) are read with every count bounded."""

from __future__ import annotations

import pytest

from reflectchat.engine.gguf_header import read_local


def test_a_header_claiming_more_than_its_file_holds_fails_at_once(tmp_path):
    """132 bytes claiming a 2^40-element array: GGUFReader ran past 120 s and 12 GB on it."""
    import struct

    from reflectchat.engine.gguf_file import diagnose_load_failure
    from reflectchat.engine.gguf_header import HeaderError

    key = b"tokenizer.ggml.tokens"
    data = (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IIQ", 9, 8, 1 << 40))  # an array of 2^40 strings
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data.ljust(132, b"\0"))
    with pytest.raises(HeaderError, match="more than the file's 132 bytes can hold"):
        read_local(path)
    said = diagnose_load_failure(path)
    assert "damaged GGUF header" in said and "download it again" in said
