"""config.toml is the user's file too: saving the app's [ui] table keeps every other table, as
it is on disk at that moment, however many apps save at once."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from reflectchat.config import ConfigFile, UIConfig

LAB = '[endpoints.lab]\nurl = "http://gpu-box:8080"\n'


def test_a_table_written_after_the_app_read_the_file_is_kept(tmp_path: Path):
    path = tmp_path / "config.toml"
    app = ConfigFile(path)  # read before the user adds a server
    path.write_text(LAB, encoding="utf-8")
    app.save_ui(replace(UIConfig(), show_thinking=False))
    again = ConfigFile(path)
    assert again.endpoint_tables() == {"lab": {"url": "http://gpu-box:8080"}}
    assert again.ui().show_thinking is False


def test_apps_saving_at_once_lose_no_table_and_raise_nothing(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_text(LAB, encoding="utf-8")
    errors: list[BaseException] = []

    def save_many(show: bool) -> None:
        config = ConfigFile(path)
        for _ in range(40):
            try:
                config.save_ui(replace(UIConfig(), show_thinking=show))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=save_many, args=(i % 2 == 0,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert "lab" in ConfigFile(path).endpoint_tables()
    assert not list(tmp_path.glob(".config-*"))  # no temporary file left behind
