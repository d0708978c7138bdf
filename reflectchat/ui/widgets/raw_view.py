"""The raw view (F5): the exact model text, tags included, as it streams. Read-only and
wrapped, so a long line is never cut at the pane's edge; it follows the end while it grows."""

from __future__ import annotations

from textual.widgets import TextArea


class RawView(TextArea):
    def __init__(self) -> None:
        super().__init__("", id="raw", read_only=True, soft_wrap=True, show_line_numbers=False,
                         highlight_cursor_line=False)
        self.border_title = "Raw model text (tags included)"

    def clear(self) -> None:
        self.load_text("")

    def write(self, text: str) -> None:
        """Append `text` (already made visible: model text is untrusted)."""
        at_end = self.scroll_y >= self.max_scroll_y
        self.insert(text, self.document.end)
        if at_end:
            self.scroll_end(animate=False)
