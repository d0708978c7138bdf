"""Text from the store, a model and `reflectchat eval`'s results, holding Rich markup (`[/]`, a
`[link=…]`), a terminal hyperlink and escape sequences, walked through every screen and widget
that shows it: the panes, the raw view, the turn list, the sessions list and its search, the
Tune screen, the Eval view and the settings (whose editor shows the stored system prompt's
controls visibly, and keeps the prompt as it was when saved untouched). What reaches the
terminal is checked as a terminal gets it: the frames' bytes, with no hyperlink (OSC 8) and no
sequence from the text, and the markup there to read."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from support.app_pilot import loaded, make_app, wait_for
from textual.drivers.headless_driver import HeadlessDriver
from textual.pilot import Pilot
from textual.widgets import Label, OptionList

from reflectchat.demo.scripted_model import Script, write_scripted_gguf
from reflectchat.eval.results import Result, ResultsFile, RunInfo, results_file
from reflectchat.paths import store_file, user_themes_dir
from reflectchat.store.records import SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from
from reflectchat.ui.app import ReflectChatApp

HOSTILE = ("[/] [link=https://evil.example]click[/link] [bold]b "
           "\x1b]8;;https://osc.example\x1b\\x\x1b]8;;\x1b\\ \x1b[31mred\x1b[0m\x07")
CSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]")
POINTER = re.compile(r"\x1b\]22;[a-z-]+\x07")  # Textual's own: the mouse pointer's shape


class Frames:
    """The bytes every frame sends to the terminal: the app runs with a driver (Textual's
    public `driver_class`) that is not headless, so it is sent each frame as a real terminal
    driver is, and keeps what it is sent."""

    def __init__(self, app: ReflectChatApp) -> None:
        self.sent: list[str] = []
        sent = self.sent

        class Recording(HeadlessDriver):
            @property
            def is_headless(self) -> bool:
                return False

            def write(self, data: str) -> None:
                sent.append(data)

        app.driver_class = Recording

    async def check(self, pilot: Pilot, where: str, drawn: str = "[link=") -> None:
        """Everything drawn since the last check: no hyperlink, no escape sequence but the
        screen's own colours and moves, and the markup (`drawn`) shown as text."""
        await wait_for(pilot, lambda: drawn in CSI.sub("", "".join(self.sent)),
                       what=f"{where}: the markup drawn as text")
        sent = POINTER.sub("", "".join(self.sent))
        self.sent.clear()
        assert "\x1b]" not in sent, f"{where}: an OSC sequence (a hyperlink?) reached the terminal"
        assert "\x07" not in sent, f"{where}: a bell reached the terminal"
        assert "\x1b" not in CSI.sub("", sent), f"{where}: an escape sequence from the text"


async def test_hostile_text_is_shown_literally_in_every_screen():
    store = SessionStore.open(store_file())
    answer = f"<thinking>{HOSTILE}<reflection>{HOSTILE}</reflection></thinking>" \
             f"<output>{HOSTILE}</output>"
    session, _ = store.start_session(f"title {HOSTILE}", SessionMeta(model=HOSTILE,
                                                                      system_prompt=HOSTILE), [
        StoredMessage("user", f"evil {HOSTILE}"),
        StoredMessage("assistant", answer, thinking=HOSTILE, reflections=[HOSTILE],
                      output=HOSTILE, tag_format="reflection", finish_reason="stop")])
    run = ResultsFile(results_file("hostile"))
    run.describe(RunInfo(f"set {HOSTILE}", HOSTILE, ["default"], 1, "number", time.time()))
    run.add(Result("item [/]", "default", False, HOSTILE, HOSTILE, 1, None, None, 5, 30, 0.5,
                   20.0, "stop", None, answer, "reflection"))
    conversation = conversation_from(store.session(session), store.messages(session))
    app = make_app(conversation=conversation, store=store, session_id=session)
    frames = Frames(app)
    async with app.run_test(size=(160, 48), headless=False) as pilot:
        await loaded(pilot)
        await frames.check(pilot, "the panes and the turn list")
        await pilot.press("f5")
        await frames.check(pilot, "the raw view")
        await pilot.press("f5", "f6")
        await frames.check(pilot, "the sessions list")
        app.query_one("#session-search").focus()
        await pilot.press(*"evil", "enter")
        await frames.check(pilot, "the sessions search")
        await pilot.press("f6", "ctrl+t")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TuneScreen", what="Tune")
        await frames.check(pilot, "the Tune screen")
        await pilot.press("escape", "ctrl+g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "EvalScreen", what="Eval")
        await frames.check(pilot, "the Eval view")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0], what="the chat")
        await pilot.press("f8")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "SettingsScreen",
                       what="the settings")
        await frames.check(pilot, "the settings")
        await pilot.press("ctrl+s")  # saved untouched: the prompt is kept as it was stored
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0], what="the chat")
        assert app.chat.conversation.system_prompt == HOSTILE


# a name a file or folder can have: no slash, but a screen clear, a window title (OSC 0), a
# clipboard write (OSC 52), a right-to-left override and markup (a click that quits)
NAME = "m[@click=app.quit]\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\u202egguf[b]"


async def test_the_picker_the_themes_and_the_palette_show_hostile_names_literally():
    home = Path(os.environ["HOME"])
    model = write_scripted_gguf(home / "scripted.gguf", [Script("<|go|>", ["Hi."])])
    ollama = home / ".ollama" / "models"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    blobs = ollama / "blobs"
    blobs.mkdir(parents=True)
    shutil.copy(model, blobs / f"sha256-{digest}")
    tag = ollama / "manifests" / "registry.ollama.ai" / "library" / NAME / "latest"
    tag.parent.mkdir(parents=True)
    tag.write_text(json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                           "digest": f"sha256:{digest}"}]}))
    cache = home / "cache" / "llama.cpp"
    cache.mkdir(parents=True)
    shutil.copy(model, cache / f"{NAME}.gguf")
    whole = model.read_bytes()
    (cache / "cut.gguf").write_bytes(whole[:len(whole) // 2])  # a download cut short
    themes = user_themes_dir()
    themes.mkdir(parents=True)
    (themes / "evil.toml").write_text('name = "[/] [link=https://evil.example]x"\n'
                                      'primary = "#ff8800"\n')
    store = SessionStore.open(store_file())
    code = f"```\n{HOSTILE}\n```"
    session, _ = store.start_session("code", SessionMeta(model="m"), [
        StoredMessage("user", "show code"),
        StoredMessage("assistant", f"<output>{code}</output>", output=code,
                      tag_format="reflection", finish_reason="stop")])
    conversation = conversation_from(store.session(session), store.messages(session))
    app = make_app(conversation=conversation, store=store, session_id=session)
    frames = Frames(app)
    async with app.run_test(size=(160, 48), headless=False) as pilot:
        await loaded(pilot)  # it started: the theme was skipped, not a crash
        assert any("evil.toml" in n.message and "a theme's name is letters" in n.message
                   for n in app.notices)
        await frames.check(pilot, "the panes")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelPicker",
                       what="the picker")
        options = app.screen.query_one(OptionList)
        await wait_for(pilot, lambda: "planning" not in {o.id for o in options.options},
                       what="the picker's rows")
        await pilot.press("end")  # the files other tools downloaded come last
        await frames.check(pilot, "the model picker", drawn="gguf[b]")
        said = str(app.screen.query_one("#picker-note", Label).render())
        assert said.startswith("✗ ") and f"cut.gguf is incomplete: {len(whole) // 2:,} of " \
            f"{len(whole):,} bytes" in said
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0], what="the chat")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette",
                       what="the palette")
        await pilot.press(*"code block")
        await frames.check(pilot, "the palette's code block entry")
        for _ in "code block":
            await pilot.press("backspace")
        await pilot.press(*"theme")
        await frames.check(pilot, "the palette's themes", drawn="Theme: reflect-paper")
