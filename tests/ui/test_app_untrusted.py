"""Outside text (a server's error, a path, a model's name) is shown literally in the app:
notifications carry text, never markup, and control characters are made visible."""

from __future__ import annotations

from support.app_pilot import loaded, make_app

from reflectchat.ui.widgets.status_bar import Problem

HOSTILE = "HTTP 500 at a[/x]: [bold]not bold[/bold] \x1b]52;c;b3duZWQ=\x07\x1b]0;title\x07"


async def test_a_notification_with_markup_and_escapes_is_shown_as_text():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.notify(HOSTILE, title="Server [/said]", severity="error")
        await pilot.pause(0.2)  # rendering the toast: a markup error would end the app here
        assert app.is_running
        shown = list(app.notices)[-1]
        assert shown.message.startswith("HTTP 500 at a[/x]: [bold]not bold[/bold] ␛]52;c;")
        assert "\x1b" not in shown.message + shown.title
        app.host.activity = Problem(HOSTILE)
        await pilot.pause()
        text = str(app.query_one("#status-text").render())
        assert "[/x]" in text and "␛]0;title␇" in text and "\x1b" not in text
