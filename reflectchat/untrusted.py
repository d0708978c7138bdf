"""Model output is untrusted: make control characters visible instead of letting the terminal
act on them (ANSI escape sequences, carriage returns, bells, C1 controls)."""

from __future__ import annotations

_VISIBLE = {c: 0x2400 + c for c in range(0x20) if chr(c) not in "\n\t"}
_VISIBLE[0x7F] = 0x2421
_VISIBLE.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
# bidirectional embeddings, overrides and isolates: they reorder the text around them, so
# "gnp\u202e.exe" would read as another name (Unicode TR 36; "Trojan Source", CVE-2021-42574)
_VISIBLE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})


def visible(text: str) -> str:
    """`text` with every control character but newline and tab shown as a visible symbol
    (ESC as ␛, CR as ␍) or, for C1 controls and bidirectional overrides, as a `\\x9b` or
    `\\u202e` escape."""
    return text.replace("\r\n", "\n").translate(_VISIBLE)
