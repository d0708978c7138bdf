"""Untrusted model text made safe to print: every control character becomes visible."""

from reflectchat.untrusted import visible


def test_escape_sequences_and_controls_become_visible():
    assert visible("\x1b[31mred\x07") == "␛[31mred␇"
    assert visible("a\rb") == "a␍b"
    assert visible("del\x7f c1\x9b31m") == "del␡ c1\\x9b31m"


def test_newlines_tabs_and_text_are_kept():
    text = "line one\n\tindented [bold]markup[/bold] سلام 😀"
    assert visible(text) == text
    assert visible("windows\r\nline") == "windows\nline"


def test_a_command_failure_quotes_outside_text_literally(capsys):
    from reflectchat.cli.output import EXIT_FAILED, fail

    assert fail("The server said: \x1b]52;c;b3duZWQ=\x07 and \x1b]0;title\x07") == EXIT_FAILED
    said = capsys.readouterr().err
    assert "\x1b" not in said and "␛]52;c;b3duZWQ=␇" in said
