"""The status bar: true to the machine, one line at any width, counting while it streams."""

from __future__ import annotations

from support.app_pilot import STREAMING, ask, finished, loaded, make_app, wait_for

from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import Sampling
from reflectchat.ui.widgets.status_bar import Status, StatusBar

ENDLESS = Script("<|go|>", [Control("<thinking>"), "Still thinking. ", Control("</thinking>"),
                            Control("<output>"), "Still answering. ", Control("</output>")],
                 loops=True)


def status_text(app) -> str:
    return str(app.query_one(StatusBar).query_one("#status-text").render())


async def test_a_machine_without_gpu_offload_shows_cpu_not_gpu_layers():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert app.host.engine is not None and app.host.engine.gpu_layers == 0  # a CPU build here
        text = status_text(app)
        assert "GPU 0/" not in text and "│ CPU │" in text


async def test_the_context_meter_counts_while_the_answer_streams(make_model):
    app = make_app(make_model(ENDLESS, cost=STREAMING), n_ctx=32768,
                   sampling=Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: app.chat.status.facts is not None
                       and app.chat.status.facts.tokens["output"] > 50, what="tokens to stream")
        assert app.chat.conversation.turns[-1].stats is None  # still streaming
        used = app.chat.status.ctx_used
        assert used > 50 and f"ctx {used:,}/" in status_text(app)
        facts = app.chat.status.facts
        shown = status_text(app)
        assert f"think {facts.tokens['thinking']:,} · " in shown
        assert f"out {facts.tokens['output']:,} · " in shown and "output after " in shown
        assert facts.seconds["output"] > 0 and facts.first_output_s is not None
        await pilot.press("escape")
        await finished(pilot)


async def test_the_status_bar_fits_one_line_at_80_columns():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        bar = app.query_one(StatusBar)
        assert bar.size.height == 1
        text = status_text(app)
        assert len(text) <= 78 and "\n" not in text
        assert "ctx " in text and "tok/s" in text  # the most useful parts stay
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        wide = status_text(app)  # room again: the facts of each channel are back
        assert "output after" in wide and "reflect " in wide and "think " in wide


def test_a_long_model_name_is_shortened_last():
    status = Status(model="Reflection Llama 3.1 70B (bartowski) Q4_K_M", layer_count=80,
                    gpu_layers=40, ctx_used=1000, ctx_total=8192, tokens_per_second=12.5)
    wide, narrow = str(status.render(200)), str(status.render(60))
    assert "GPU 40/80 layers" in wide and wide.startswith("Reflection Llama")
    assert len(narrow) <= 58 and "ctx 1,000/8,192" in narrow and "…" in narrow


def test_the_context_meter_warns_near_the_limit_and_shows_earlier_reasoning():
    calm = Status(model="m", ctx_used=1000, ctx_total=8192).context_meter()
    assert str(calm) == "ctx 1,000/8,192 12%" and not calm.spans
    near = Status(model="m", ctx_used=7000, ctx_total=8192).context_meter()
    full = Status(model="m", ctx_used=8000, ctx_total=8192).context_meter()
    assert str(near) == "ctx 7,000/8,192 85%" and near.spans[0].style == "$warning"
    assert full.spans[0].style == "$error"
    sent = Status(model="m", ctx_used=1000, ctx_total=8192, ctx_reasoning=400)
    assert str(sent.context_meter()) == "ctx 1,000/8,192 12% (reasoning 40%)"


def test_no_context_percentage_when_the_server_does_not_state_its_context():
    """A remote answer of 60,000 tokens showed 1465% of a context the server never stated."""
    assert str(Status(model="m", ctx_used=60_000, ctx_total=0).context_meter()) == "ctx 60,000"
