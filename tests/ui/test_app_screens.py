"""Themes, settings, help, the command palette, copy and export, driven through the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.app_pilot import ask, loaded, make_app, wait_for
from textual.command import CommandList
from textual.widgets import Checkbox, Input, Label

from reflectchat.config import ConfigFile
from reflectchat.paths import config_file, user_themes_dir
from reflectchat.ui import bindings
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.chat_view import ChatView
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.screens.settings_screen import SettingsScreen


async def test_theme_files_load_and_the_choice_persists():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.theme == "reflect-dark"
        assert {"reflect-dark", "reflect-paper", "reflect-contrast"} <= set(app.file_themes)
        app.theme = "reflect-paper"
        await pilot.pause()
    assert ConfigFile().ui().theme == "reflect-paper"


async def test_user_themes_are_picked_up_and_a_bad_one_is_reported():
    themes = user_themes_dir()
    themes.mkdir(parents=True)
    (themes / "mine.toml").write_text('name = "mine"\nprimary = "#ff8800"\n')
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not-a-color"\n')
    (config_file()).write_text('[ui]\ntheme = "broken"\n')
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "mine" in app.file_themes and "broken" not in app.file_themes
        messages = [n.message for n in app.notices]
        assert any("broken.toml" in m and "primary = 'not-a-color' is not a color" in m
                   for m in messages), messages
        assert any("'broken' was not found" in m for m in messages)
        assert app.theme == "reflect-dark"


async def test_a_theme_with_nan_or_css_in_its_values_is_skipped_and_the_app_starts():
    themes = user_themes_dir()
    themes.mkdir(parents=True)
    (themes / "nan.toml").write_text('name = "nan"\nprimary = "#ff8800"\n'
                                     "luminosity_spread = nan\n")
    (themes / "css.toml").write_text('name = "css"\nprimary = "#ff8800"\n[variables]\n'
                                     'border = "red; } Screen { display: none"\n')
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)  # it started, and drew
        messages = [n.message for n in app.notices]
        assert any("nan.toml" in m and "from 0 to 1" in m for m in messages), messages
        assert any("css.toml" in m and "one CSS value" in m for m in messages), messages
        assert not {"nan", "css"} & set(app.file_themes)


async def test_a_corrupt_config_gives_a_warning_and_is_never_overwritten():
    path = config_file()
    path.parent.mkdir(parents=True)
    path.write_text("[ui\nshow_thinking = maybe\n")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert any("config.toml" in n.message for n in app.notices)
        await pilot.press("f2")
        assert not app.query_one("#thinking").display  # the toggle still works for now
    assert path.read_text() == "[ui\nshow_thinking = maybe\n"


async def test_settings_modal_validates_and_applies_sampling_and_system_prompt():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#field-temperature", Input).value = "hot"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Temperature: 'hot' is not a number" in str(
            screen.query_one("#settings-error", Label).render())
        screen.query_one("#field-temperature", Input).value = "0.2"
        screen.query_one("#field-max_tokens", Input).value = "64"
        screen.query_one("#system-prompt").text = "Be brief."
        screen.query_one("#with-reasoning", Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        assert app.chat.conversation.sampling.temperature == 0.2
        assert app.chat.conversation.sampling.max_tokens == 64
        assert app.chat.conversation.system_prompt == "Be brief."
        assert app.chat.conversation.with_reasoning


async def test_help_screen_lists_the_keys_from_the_bindings():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(str(s.render()) for s in app.screen.query("Static"))
        for key, what in [("f2", "Thinking pane"), ("f3", "Reflection pane"),
                          ("f4", "Output only"), ("f5", "exact model text"), ("esc", "Stop"),
                          ("⏎", "Send"), ("^j", "New line"), ("^r", "last prompt again"),
                          ("n", "sessions list: Start a new chat"), ("del, d", "Delete")]:
            line = next((line for line in text.splitlines() if line.startswith(key + " ")), "")
            assert what in line, (key, what, text)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_every_action_of_the_app_is_a_command_with_a_title_and_a_text():
    """One table: an action the app defines is a row of `bindings.COMMANDS` (or a link's),
    and each row has its palette title and what it does."""
    for owner, chat in ((ReflectChatApp, False), (ChatView, True)):
        defined = {name.removeprefix("action_") for kind in owner.__mro__
                   if kind.__module__.startswith("reflectchat") for name in vars(kind)
                   if name.startswith("action_")}
        commands = {c.action.split("(")[0] for c in bindings.COMMANDS if c.chat is chat}
        assert defined - set(bindings.LINK_ACTIONS) == commands, owner
    assert all(c.title and c.tooltip for c in bindings.COMMANDS)
    assert len({c.title for c in bindings.COMMANDS}) == len(bindings.COMMANDS)


async def test_palette_offers_the_apps_commands_for_the_answer_in_view():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        names = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Toggle thinking pane", "Toggle reflection pane", "Switch model or quant",
                       "New chat", "Export conversation", "Theme: reflect-paper",
                       "Go to reflection 1", "Earlier turn", "Keys"):
            assert wanted in names
        # every command the app can run now is in the palette, Quit once (Textual's own)
        for command in bindings.COMMANDS:
            owner = app.chat if command.chat else app
            if owner.check_action(command.action, ()) is not False:
                assert command.title in names
        assert names.count("Quit") == 1
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"toggle thinking")

        def first_match() -> str:
            found = app.screen.query(CommandList)
            if not found or found.first().highlighted != 0:
                return ""
            return str(found.first().get_option_at_index(0).prompt)

        await wait_for(pilot, lambda: "Toggle thinking pane" in first_match(),
                       what="the command found")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.ui_config.show_thinking, what="thinking hidden")


async def test_copy_output_and_export_markdown(monkeypatch):
    monkeypatch.delenv("TMUX", raising=False)  # a plain terminal: the clipboard escape
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await pilot.press("ctrl+o")  # copied on a worker (it may ask tmux first)
        output = app.chat.conversation.turns[-1].answer.output.strip()
        await wait_for(pilot, lambda: app.clipboard == output, what="the copy")
        assert "x = 1/2" in app.clipboard
        app.chat.action_export()  # written on a worker
        await wait_for(pilot, lambda: any(n.message.startswith("Exported to")
                                          for n in app.notices), what="the export")
        path = next(n.message for n in app.notices if n.message.startswith("Exported to"))
        text = Path(path.removeprefix("Exported to ")).read_text(encoding="utf-8")
        assert "<summary>Thinking</summary>" in text and "<summary>Reflection 1</summary>" in text
        assert "sign error" in text and "x = 1/2" in text


async def test_settings_refuse_out_of_range_values_and_a_new_context_reloads_the_model():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert app.host.engine.n_ctx == 4096
        await pilot.press("f8")
        await pilot.pause()
        screen = app.screen
        for field, value, said in [("repeat_penalty", "40.0", "Repeat penalty must be between "
                                    "0.5 and 2, not 40.0"),
                                   ("n_ctx", "12", "Context tokens must be between 256"),
                                   ("gpu_layers", "-5", "GPU layers must be between -1")]:
            screen.query_one(f"#field-{field}", Input).value = value
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert said in str(screen.query_one("#settings-error", Label).render())
            assert app.screen is screen  # nothing saved
            screen.query_one(f"#field-{field}", Input).value = "" if field != \
                "repeat_penalty" else "1.1"
        screen.query_one("#field-n_ctx", Input).value = "2048"
        screen.query_one("#field-n_threads", Input).value = "1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.host.engine is not None and app.host.engine.n_ctx == 2048,
                       what="the reload with the new context")
        assert app.chat.conversation.sampling.repeat_penalty == 1.1
        assert app.host.runtime.n_ctx == 2048 and app.host.runtime.n_threads == 1
        assert "ctx 0/2,048" in str(app.query_one("#status-text").render())
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        assert "x = 1/2" in app.chat.conversation.turns[-1].answer.output


def test_the_app_takes_the_answer_options_ask_takes():
    from reflectchat.cli.args import with_answer_options
    from reflectchat.cli.parser import build_parser
    from reflectchat.models.choice import choose_model

    args = build_parser().parse_args(["--max-tokens", "50", "--temperature", "0.2",
                                      "--system", "Be brief."])
    choice = with_answer_options(args, choose_model(None, None, demo=True))
    assert (choice.sampling.max_tokens, choice.sampling.temperature) == (50, 0.2)
    assert choice.system_prompt == "Be brief."
    with pytest.raises(SystemExit):  # the parser says it: tests/cli/test_numeric_flags.py
        build_parser().parse_args(["--temperature", "40"])


async def test_focus_goes_where_the_user_expects():
    from reflectchat.store.session_store import SessionStore
    from reflectchat.ui.widgets.conversation_list import ConversationList
    from reflectchat.ui.widgets.prompt_input import PromptInput

    app = make_app(store=SessionStore.open(config_file().parent / "sessions.db"))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        app.query_one(ConversationList).focus()
        await pilot.press("h", "i", "space", "?")  # typed outside a text field
        prompt = app.query_one(PromptInput)
        assert app.focused is prompt and prompt.text == "hi ?"  # nothing typed is lost
        prompt.clear()
        await pilot.press("f6")
        await pilot.pause()
        sidebar = app.query_one("#sessions")
        assert app.focused is not None and sidebar in app.focused.ancestors_with_self
        await pilot.press("slash")
        await pilot.pause()
        assert app.focused is app.query_one("#session-search", Input)
        await pilot.press("f6")  # hidden again: back to the prompt
        await pilot.pause()
        assert app.focused is prompt and prompt.text == ""
        await pilot.press("f1")
        await pilot.pause()
        assert any("switch the column in view" in text for _, text in app.key_help())


async def test_copy_inside_tmux_without_set_clipboard_does_not_claim_success(monkeypatch,
                                                                           tmp_path):
    from reflectchat.ui.clipboard import clean

    fake = tmp_path / "bin"
    fake.mkdir()
    tmux = fake / "tmux"
    tmux.write_text("#!/bin/sh\necho off\n")  # `tmux show-options -gv set-clipboard`
    tmux.chmod(0o755)
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    monkeypatch.setenv("PATH", str(fake))  # and no wl-copy, xclip, xsel or pbcopy
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        before = len(app.notices)
        await pilot.press("ctrl+o")  # tmux is asked on a worker
        await wait_for(pilot, lambda: len(app.notices) > before, what="the copy's notice")
        said = list(app.notices)[-1].message
        assert "Sent" not in said and "Copied" not in said
        assert "set-clipboard is off" in said and "tmux set -g set-clipboard on" in said
        path = Path(said.split(" is in ")[1].split(". To copy")[0])
        assert path.read_text(encoding="utf-8") == \
            app.chat.conversation.turns[-1].answer.output.strip()
        assert not app.clipboard  # no escape was sent for tmux to drop
    assert clean("a\x1b]52;c;Zm9v\x07b\r\nc\x9bd\te") == "a]52;c;Zm9vb\nc" + "d\te"
