"""F10: the prompt being typed, asked of two setups side by side. Side A is the chat as it runs
(its model, effort, thinking budget and speculation); side B is picked in `CompareSetup`. The
comparison screen runs both (`compare_run.py`), the session keeps both answers, and back in the
chat the conversation goes on with the one marked better."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from reflectchat.chat.comparison import Comparison, Setup
from reflectchat.chat.conversation import Turn
from reflectchat.config import ConfigFile
from reflectchat.engine.base import Backend, Runtime, Sampling
from reflectchat.engine.endpoints import endpoint_from_table
from reflectchat.engine.errors import EngineError
from reflectchat.models.choice import ModelChoice, choose_model, endpoint_choice
from reflectchat.models.hardware import Hardware
from reflectchat.models.local_files import find_local_models
from reflectchat.sizes import size_text
from reflectchat.store.recorder import SessionRecorder
from reflectchat.ui.compare_run import CompareJob, Side, compare_mode
from reflectchat.ui.screens.compare_screen import CompareScreen
from reflectchat.ui.screens.compare_setup import AS_RUNS, CompareAsk, CompareSetup

if TYPE_CHECKING:
    from reflectchat.ui.chat_view import ChatView
    from reflectchat.ui.model_host import ModelHost


def speculation_word(speculation: str | None) -> str | None:
    """A runtime's speculation as a setup names it: off, ngram, draft (None: the default)."""
    return speculation if speculation in (None, "off", "ngram") else "draft"


def other_models(current: ModelChoice) -> list[tuple[str, ModelChoice]]:
    """The configured servers and every GGUF on this machine but the one in use (on a worker
    thread: this reads folders other tools fill)."""
    found = []
    for name, table in ConfigFile().endpoint_tables().items():
        try:
            endpoint = endpoint_from_table(name, table)
        except EngineError:
            continue  # said when it is used as --endpoint
        found.append((f"server {name}: {endpoint.model or 'its model'} @ {endpoint.host}",
                      endpoint_choice(endpoint)))
    here = current.path.resolve() if current.endpoint is None else None
    for local in find_local_models():
        if local.path.resolve() != here:
            found.append((f"{local.name}  ({local.source}, {size_text(local.size)})",
                          choose_model(str(local.path), None, False)))
    return found


class Resolved(NamedTuple):
    choice: ModelChoice | None  # side B's model (None: A's, as loaded)
    sampling: Sampling
    runtime: Runtime
    setups: tuple[Setup, Setup]


class CompareFlow:
    def __init__(self, host: ModelHost, chat: ChatView,
                 hardware: Callable[[], Hardware]) -> None:
        self.host, self.chat, self.hardware = host, chat, hardware

    def begin(self) -> None:
        chat, host = self.chat, self.host
        prompt = chat.prompt.text
        viewed = chat.answer_view.viewed
        if not prompt.strip() and viewed is not None and viewed.comparison is not None and \
                viewed.comparison.finished:
            self.reopen(viewed.comparison)
            return
        if not prompt.strip():
            chat.notify("Type the prompt to compare first; F10 then asks it of two setups side "
                        "by side (on a compared answer, F10 shows both again).",
                        severity="warning")
            return
        if chat.live is not None:
            chat.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if host.engine is None or host.busy:
            chat.notify(host.no_model() if host.engine is None else
                        "Wait for the download to end (or Esc it), then compare.",
                        severity="warning")
            return
        chat.app.push_screen(CompareSetup(prompt, host.choice.label,
                                          partial(other_models, host.choice),
                                          self._same_as_a),
                             partial(self._asked, prompt))

    def _resolved(self, ask: CompareAsk) -> Resolved:
        """Side B as asked, "as A" filled in from the chat, and both sides' setups."""
        host, sampling_a, runtime_a = self.host, self.chat.conversation.sampling, \
            self.host.runtime
        sampling_b = replace(
            sampling_a,
            effort=sampling_a.effort if ask.effort == AS_RUNS else ask.effort,
            thinking_budget=sampling_a.thinking_budget if ask.thinking_budget == AS_RUNS
            else ask.thinking_budget)
        spec_b = runtime_a.speculation if ask.speculation == AS_RUNS else ask.speculation
        choice_b = ask.choice
        if choice_b is None and spec_b != runtime_a.speculation:
            choice_b = host.choice  # speculation is set when a model loads: a second load
        model_b = choice_b or host.choice
        setups = (Setup(host.choice.label, sampling_a.effort, sampling_a.thinking_budget,
                        speculation_word(runtime_a.speculation)),
                  Setup(model_b.label, sampling_b.effort, sampling_b.thinking_budget,
                        speculation_word(spec_b)))
        return Resolved(choice_b, sampling_b, replace(runtime_a, speculation=spec_b), setups)

    def _same_as_a(self, ask: CompareAsk) -> bool:
        """Whether side B, as asked, would answer just as A does (the dialog refuses it)."""
        resolved = self._resolved(ask)
        return resolved.choice is None and resolved.setups[0] == resolved.setups[1]

    def _asked(self, prompt: str, ask: CompareAsk | None) -> None:
        chat, host, engine = self.chat, self.host, self.host.engine
        if ask is None or engine is None or chat.live is not None:
            return
        choice_a, sampling_a = host.choice, chat.conversation.sampling
        choice_b, sampling_b, runtime_b, setups = self._resolved(ask)
        model_b = choice_b or choice_a
        plan = partial(compare_mode, choice_a, choice_b, engine.n_ctx, runtime_b.n_ctx,
                       self.hardware)
        turns = (Turn(prompt, choice_a.tag_format), Turn(prompt, model_b.tag_format))
        comparison = Comparison(setups, list(turns))
        for turn in turns:
            turn.comparison = comparison
        messages = chat.conversation.messages_for(prompt)
        recorder = chat.recorder
        chat.prompt.clear()
        host.in_use = True
        load_b = None if choice_b is None else partial(self._load, choice_b, runtime_b)
        app = chat.app

        def build(sides: tuple[Side, Side], cancel: object, note: Callable) -> CompareJob:
            return CompareJob(comparison, sides, messages, engine, load_b, plan, model_b.label,
                              cancel, recorder, note, chat.post_message,  # type: ignore[arg-type]
                              lambda: app.call_from_thread(host.lend),
                              lambda: app.call_from_thread(host.load, host.choice))

        app.push_screen(CompareScreen(comparison, build, (sampling_a, sampling_b),
                                      "Planning how the two answer …",
                                      self._keep_mark(recorder)), self._back)

    def reopen(self, comparison: Comparison) -> None:
        """A comparison kept earlier, both answers side by side again, to read or mark anew."""
        before = comparison.chosen
        how = "Kept from earlier: " + ", ".join(s.label for s in comparison.setups)
        self.chat.app.push_screen(
            CompareScreen(comparison, None, (self.chat.conversation.sampling,) * 2, how,
                          self._keep_mark(self.chat.recorder)),
            partial(self._remarked, before))

    async def _remarked(self, before: Turn, comparison: Comparison | None) -> None:
        if comparison is not None and comparison.chosen is not before:
            await self.chat.swap_turn(before, comparison.chosen)

    def _keep_mark(self, recorder: SessionRecorder | None) -> Callable[[Comparison], None]:
        def keep(marked: Comparison) -> None:
            if recorder is not None:
                self.chat.run_worker(partial(recorder.mark, marked), thread=True, group="mark")
        return keep

    def _load(self, choice: ModelChoice, runtime: Runtime,
              progress: Callable[[float], bool]) -> Backend:
        if choice.endpoint is None and not Path(choice.path).exists():
            raise EngineError(f"{choice.path} is not there any more")
        return self.host.make_engine(choice, progress, runtime)

    async def _back(self, comparison: Comparison | None) -> None:
        self.host.in_use = False
        if comparison is not None:
            await self.chat.add_comparison(comparison)
