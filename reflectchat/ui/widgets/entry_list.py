"""A list of two-line entries that renders only the rows in view.

Every row has the same height (two lines and a divider), so the list's size is known without
measuring any entry and a scroll position maps straight to an entry: a thousand entries cost
no more to show than ten. (Textual's OptionList measures every option's wrapped height on each
update, which takes about 100 ms for a thousand sessions.) Lines longer than the width are cut
with an ellipsis.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.visual import Visual

ROW_HEIGHT = 3  # two lines of text and a divider
Row = tuple[Content, Content]


class EntryList(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"entry-list--highlight", "entry-list--divider"}
    DEFAULT_CSS = """
    EntryList > .entry-list--highlight { background: $boost; }
    EntryList:focus > .entry-list--highlight { background: $accent 30%; }
    EntryList > .entry-list--divider { color: $panel; }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1_000_000_000)", "First", show=False),
        Binding("end", "move(1_000_000_000)", "Last", show=False),
        Binding("enter", "choose", "Open", show=False),
    ]

    highlighted: reactive[int | None] = reactive(None, always_update=True)

    @dataclass
    class Chosen(Message):
        """Enter or a click on an entry."""

        index: int

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []

    def set_rows(self, rows: list[Row]) -> None:
        """Replace the entries; the highlight stays at its position where it can."""
        self.rows = rows
        self.virtual_size = Size(self.size.width, len(rows) * ROW_HEIGHT)
        if self.highlighted is not None:
            self.highlighted = min(self.highlighted, len(rows) - 1) if rows else None
        self.refresh()

    def validate_highlighted(self, value: int | None) -> int | None:
        if value is None or not self.rows:
            return None
        return max(0, min(value, len(self.rows) - 1))

    def watch_highlighted(self, value: int | None) -> None:
        if value is not None:
            self.scroll_to_region(Region(0, value * ROW_HEIGHT, 1, ROW_HEIGHT), animate=False,
                                  force=True)
        self.refresh()

    def action_move(self, step: int) -> None:
        current = self.highlighted
        self.highlighted = (0 if step > 0 else len(self.rows) - 1) if current is None \
            else current + step

    def action_page(self, direction: int) -> None:
        self.action_move(direction * max(1, self.scrollable_content_region.height // ROW_HEIGHT))

    def action_choose(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Chosen(self.highlighted))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = (offset.y + self.scroll_offset.y) // ROW_HEIGHT
        if index < len(self.rows):
            self.highlighted = index
            self.post_message(self.Chosen(index))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index, part = divmod(self.scroll_offset.y + y, ROW_HEIGHT)
        base = self.get_visual_style()
        if index >= len(self.rows):
            return Strip.blank(width, base.rich_style)
        if part == ROW_HEIGHT - 1:
            divider = self.get_visual_style("entry-list--divider")
            return Strip.blank(width, base.rich_style) if index == len(self.rows) - 1 else \
                Strip([*Content("─" * width).render_segments(divider)], width)
        style = self.get_visual_style("entry-list--highlight") if index == self.highlighted \
            else base
        line = self.rows[index][part].truncate(width, ellipsis=True)
        return Visual.to_strips(self, line, width, 1, style, pad=True)[0]
