"""Token ids to text without losing anything.

llama-cpp-python's streaming detokenizes with `special=False` (control tokens such as a
Reflection GGUF's `<thinking>` come out empty) into a 32-byte buffer (longer pieces, like a run
of 64 dashes, vanish). This decoder renders special tokens and any piece whole
(`Vocab.piece`), and joins UTF-8 characters split across byte tokens.
"""

from __future__ import annotations

import codecs

from reflectchat.engine.llama_cpp_api import Vocab


class PieceDecoder:
    def __init__(self, vocab: Vocab) -> None:
        self._vocab = vocab
        self._cache: dict[int, bytes] = {}
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def piece(self, token: int) -> bytes:
        """The exact bytes of one token, special tokens included."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        data = self._vocab.piece(token)
        self._cache[token] = data
        return data

    def decode(self, token: int) -> str:
        """Text completed by this token (empty while a UTF-8 character is still partial)."""
        return self._utf8.decode(self.piece(token))

    def flush(self) -> str:
        """Whatever is left at the end: an incomplete character becomes U+FFFD."""
        return self._utf8.decode(b"", final=True)
