"""Switching quants in the app: the picker's plan per quant, downloading one from a local hub
(tests/support/hub_server.py) with progress, cancelling, and loading it once it is verified."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.app_pilot import ask, loaded, make_app, wait_for
from support.hub_server import Hub, HubFile, HubServer
from textual.widgets import OptionList

from reflectchat.demo.scripted_model import Control, Script, write_scripted_gguf
from reflectchat.ui.screens.model_picker import PLANNING, ModelPicker
from reflectchat.ui.widgets.status_bar import StatusBar

QWQ = "Qwen/QwQ-32B-GGUF"
FILE = "qwq-32b-q4_k_m.gguf"
ANSWER = Script("<|go|>", [Control("<think>"), "Downloaded thinking. ", Control("</think>"),
                           "Downloaded answer."])


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Iterator[tuple[Hub, HubServer]]:
    from huggingface_hub import constants

    model = write_scripted_gguf(tmp_path / "qwq.gguf", [ANSWER])
    state = Hub(repos={QWQ: {FILE: HubFile(model.read_bytes())}})
    with HubServer(state) as server:
        # huggingface_hub reads these at import: point this process's copy at the local hub
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(Path(os.environ["HF_HOME"]) / "hub"))
        yield state, server


def picker_lines(app) -> list[str]:
    return [str(o.prompt) for o in app.screen.query_one(OptionList).options]


async def planned(pilot) -> None:
    """The picker has filled in the plan of every catalog quant (a worker makes them)."""
    await wait_for(pilot, lambda: not any(PLANNING in line for line in picker_lines(pilot.app)),
                   what="the quants' plans")


async def open_planned_picker(pilot) -> None:
    """Ctrl+L, and wait for the picker to fill in every quant's plan."""
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelPicker), what="picker")
    await planned(pilot)


def quant_index(lines: list[str], model: str, quant: str) -> int:
    """The picker line of `quant` under the header line of `model`."""
    header = next(i for i, line in enumerate(lines) if line.startswith(model + " "))
    return next(i for i, line in enumerate(lines) if i > header
                and line[2:].split()[0] == quant)


async def choose(pilot, model: str, quant: str) -> None:
    options = pilot.app.screen.query_one(OptionList)
    options.highlighted = quant_index(picker_lines(pilot.app), model, quant)
    await pilot.press("enter")


async def test_the_picker_shows_each_quants_plan_and_downloads_then_loads_one(hub):
    state, _ = hub
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await open_planned_picker(pilot)
        lines = picker_lines(app)
        q4 = lines[quant_index(lines, "QwQ 32B", "Q4_K_M")]
        assert "download" in q4 and "GiB" in q4 and "4.9 bpw" in q4
        assert any(v in q4 for v in ("full GPU", "partial", "CPU only", "does not fit"))
        # where it runs, this machine's bandwidth bounds its speed (18.5 GiB: runs with 24 GiB
        # of RAM or a GPU, not on a 24 GiB machine without one: an eighth is left to the system)
        assert ("tok/s" in q4) == ("does not fit" not in q4)
        stars = [line for line in lines if line.startswith("★")]
        assert all("quality loss" not in line for line in stars)
        assert len(stars) == len([line for line in lines if "\n★ " in line])  # with reasons
        assert lines[1].startswith("Best for this machine: ")
        await choose(pilot, "QwQ 32B", "Q4_K_M")
        await wait_for(pilot, lambda: app.host.choice.model_id == "qwq-32b", timeout=60,
                       what="the download and the switch")
        await wait_for(pilot, lambda: app.host.engine is not None, timeout=60, what="the load")
        messages = [n.message for n in app.notices]
        assert any("downloaded and verified; loading it" in m for m in messages)
        await ask(pilot, "Say hi")
        assert app.chat.conversation.turns[-1].answer.output.strip() == "Downloaded answer."
    assert [m for m, p, r in state.log if m == "GET" and p.endswith(FILE)]


async def test_escape_cancels_a_download_and_keeps_its_bytes(hub):
    state, _ = hub
    state.repos[QWQ][FILE] = HubFile(bytes(3_000_000), fault="slow")
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await open_planned_picker(pilot)
        await choose(pilot, "QwQ 32B", "Q4_K_M")
        status = app.query_one(StatusBar).query_one("#status-text")
        await wait_for(pilot, lambda: "Downloading" in str(status.render()), timeout=30,
                       what="download progress")
        shown = str(status.render())
        # the rate's unit depends on how fast this machine reads the trickle (KiB/s on a busy CI)
        assert re.search(r"\d B/s|[KMG]iB/s", shown) and "Esc cancels" in shown
        await pilot.press("ctrl+n")  # a new chat does not forget the download
        await pilot.pause()
        assert app.host.downloading == "qwq-32b Q4_K_M"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.host.downloading is None, timeout=30, what="the cancel")
        stopped = [n.message for n in app.notices if n.title == "Download stopped"]
        assert stopped and "cancelled" in stopped[0] and "kept" in stopped[0]
        assert app.host.choice.model_id == "demo"


async def test_the_picker_opens_at_once_and_plans_on_a_worker_thread(monkeypatch):
    import threading

    from reflectchat.ui import model_host

    gate, planned_on = threading.Event(), []
    real_fit_rows = model_host.fit_rows

    def gated_fit_rows(*args, **kwargs):
        planned_on.append(threading.current_thread())
        assert gate.wait(30)
        return real_fit_rows(*args, **kwargs)

    monkeypatch.setattr(model_host, "fit_rows", gated_fit_rows)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker), what="picker")
        await wait_for(pilot, lambda: planned_on, what="planning to start")
        lines = picker_lines(app)  # open, usable, and saying what it is doing
        assert "demo model" in lines[0] and PLANNING in lines[1] and len(lines) == 2
        assert planned_on[0] is not threading.main_thread()
        gate.set()
        await planned(pilot)
        lines = picker_lines(app)
        assert quant_index(lines, "QwQ 32B", "Q4_K_M") and len(lines) > 10
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelPicker), what="close")


async def test_a_full_disk_mid_download_is_a_message_and_the_app_stays(hub):
    """ENOSPC from the kernel itself: the partial file is /dev/full."""
    state, _ = hub
    f = state.repos[QWQ][FILE]
    blobs = Path(os.environ["HF_HOME"]) / "hub" / "models--Qwen--QwQ-32B-GGUF" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{f.sha256}.incomplete").symlink_to("/dev/full")
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await open_planned_picker(pilot)
        await choose(pilot, "QwQ 32B", "Q4_K_M")
        await wait_for(pilot, lambda: app.host.downloading is None and any(
            n.title == "Download stopped" for n in app.notices), timeout=30,
            what="the download to stop")
        said = next(n.message for n in app.notices if n.title == "Download stopped")
        assert "No space left on the disk of" in said and "run the same command again" in said
        assert app.is_running and app.host.choice.model_id == "demo"
        await ask(pilot, "Solve 2x")  # the chat goes on


async def test_a_model_lm_studio_downloaded_is_in_the_picker_and_loads_in_place():
    studio = Path.home() / ".lmstudio" / "models" / "lmstudio-community" / "Tiny-GGUF"
    studio.mkdir(parents=True)
    model = write_scripted_gguf(studio / "tiny-Q8_0.gguf", [ANSWER])
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await open_planned_picker(pilot)
        lines = picker_lines(app)
        header = "lmstudio-community/Tiny-GGUF (LM Studio)"
        assert any(line.startswith(header) for line in lines)
        await choose(pilot, header, "tiny-Q8_0.gguf")
        await wait_for(pilot, lambda: app.host.engine is not None and app.host.choice.path == model,
                       timeout=60, what="the local model to load")
        assert list(studio.iterdir()) == [model]  # used where it lies, nothing copied
        await ask(pilot, "Say hi")
        assert app.chat.conversation.turns[-1].answer.output.strip() == "Downloaded answer."
