"""The model the chat talks to: loading it, switching to another model or quant (Ctrl+L),
downloading a quant that is not on disk yet, and the activity line (load or download progress,
a failed load) with the model's facts for the status bar. Loads, plans and downloads run on
worker threads with this widget as their message target; it draws nothing itself.

What the rest of the app reads of it are its reactives: `engine` (None while none is loaded),
`choice`, `status` and `activity`; the app binds them into the chat and the status bar."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from textual import work
from textual.reactive import reactive, var
from textual.widget import Widget

from reflectchat.engine.base import OWN, Backend, Runtime
from reflectchat.engine.errors import EngineError
from reflectchat.models.advice import Row
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.models.choice import ModelChoice, context_for, settled_choice
from reflectchat.models.hardware import detect
from reflectchat.models.pull import PullError, quant_download
from reflectchat.models.quant_plans import Planner, fit_rows, local_rows
from reflectchat.ui.messages import (
    DownloadFinished,
    DownloadProgress,
    LoadFinished,
    LoadProgress,
)
from reflectchat.ui.screens.model_picker import ModelPick, ModelPicker
from reflectchat.ui.widgets.status_bar import (
    Activity,
    Downloading,
    Loading,
    ModelStatus,
    Problem,
)

# Builds the engine for a model choice and runtime; `progress` gets 0..1, False aborts.
EngineFactory = Callable[[ModelChoice, Callable[[float], bool], Runtime], Backend]


class ModelHost(Widget):
    DEFAULT_CSS = "ModelHost { display: none; }"

    engine: reactive[Backend | None] = var(None, always_update=True)
    choice: reactive[ModelChoice] = var(None, always_update=True)  # set in __init__
    status: reactive[ModelStatus] = var(ModelStatus)
    activity: reactive[Activity | None] = var(None, always_update=True)

    def __init__(self, choice: ModelChoice, make_engine: EngineFactory,
                 choose: Callable[[str | None, str | None], ModelChoice] | None,
                 runtime: Runtime | None) -> None:
        """`choose` finds the choice for a model and quant the picker names (None: no
        switching); `runtime` is how the model runs (F8 changes it)."""
        super().__init__()
        self.make_engine = make_engine
        self.choose = choose
        self.runtime = runtime or Runtime()
        self.downloading: str | None = None  # "model quant" while one downloads
        self.download_cancel = threading.Event()
        self.closing = False  # the app is quitting: a load under way stops
        self.in_use = False  # the chat is answering with the engine: it is not switched now
        self.set_reactive(ModelHost.choice, choice)
        self.set_reactive(ModelHost.status, ModelStatus(
            model=choice.label, ctx_total=choice.context_length or 0))

    def load(self, choice: ModelChoice) -> None:
        """Load `choice`, closing the model in use first, on the load worker: a 70B's close
        (its buffers freed, its file unmapped) never holds up the UI."""
        closing = self.engine
        self.engine = None
        self.choice = choice
        self.status = replace(self.status, model=choice.label)
        self.activity = Loading(choice.label, 0.0)
        self._load_worker(choice, closing)

    def reload_with(self, runtime: Runtime) -> None:
        """Load the model in use again, to run with `runtime`."""
        self.runtime = runtime
        self.load(self.choice)
        self.notify(f"Reloading {self.choice.label} with the new settings; the conversation "
                    "is kept.")

    @work(thread=True, exclusive=True, group="load")
    def _load_worker(self, choice: ModelChoice, closing: Backend | None = None) -> None:
        if closing is not None:
            closing.close()
        last = [0.0]

        def progress(fraction: float) -> bool:
            now = time.monotonic()
            if now - last[0] > 0.05 or fraction >= 1.0:
                last[0] = now
                self.post_message(LoadProgress(fraction))
            return not self.closing

        try:
            engine = self.make_engine(choice, progress, self.runtime)
        except EngineError as exc:
            self.post_message(LoadFinished(None, str(exc)))
            return
        self.post_message(LoadFinished(engine))

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.engine is None:
            self.activity = Loading(self.choice.label, message.fraction)

    def on_load_finished(self, message: LoadFinished) -> None:
        engine = message.engine
        if engine is None:
            self.activity = Problem(f"Could not load {self.choice.label}: {message.error}")
            self.notify(message.error or "", title="Model not loaded", severity="error",
                        timeout=15)
            return
        self.choice = settled_choice(self.choice, engine)
        if engine.load_note:
            self.notify(engine.load_note, title=f"Loaded {self.choice.label}",
                        severity="warning", timeout=15)
        self.status = ModelStatus(
            model=self.choice.label, gpu_layers=engine.gpu_layers,
            layer_count=engine.layer_count,
            ctx_total=engine.n_ctx if engine.context_stated else 0,
            template="" if engine.template in (OWN, "server") else engine.template,
            reading=self.choice.reading)
        self.activity = None
        self.engine = engine  # last: the chat it is bound to restores its session's context

    def lend(self) -> Backend | None:
        """The model, taken out for a comparison that needs its memory for another model
        (the caller closes it, off the UI thread); `load` brings it back."""
        engine, self.engine = self.engine, None
        return engine

    def close(self) -> None:
        """The app is going: close the model (its loads and answers have stopped)."""
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def no_model(self) -> str:
        """Why there is no model to answer: still loading, or none loaded at all."""
        if isinstance(self.activity, Problem):
            return "No model is loaded: its load failed (the message above says why). Ctrl+L " \
                   "picks a model or quant."
        return "The model is still loading; the bar below shows how far. Ctrl+L picks another."

    # -- the picker -------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Answering or downloading: not a time to load another model."""
        return self.in_use or self.downloading is not None

    def pick(self) -> None:
        """The model picker; what is picked is loaded (or downloaded first)."""
        if self.in_use:
            self.notify("Stop the answer first (Esc), then switch models.", severity="warning")
            return
        if self.downloading is not None:
            self.notify(f"Downloading {self.downloading}; Esc cancels it.", severity="warning")
            return
        n_ctx = self.engine.n_ctx if self.engine is not None else context_for(self.choice)

        def plan_rows() -> tuple[list[Row], list[str]]:  # on the picker's worker thread
            hw = detect()
            planner = Planner(hw, n_ctx)
            notes: list[str] = []  # files other tools downloaded that cannot be planned
            rows = fit_rows(hw, n_ctx, planner=planner) + \
                local_rows(hw, n_ctx, notes=notes, planner=planner)
            return rows, notes

        self.app.push_screen(ModelPicker(plan_rows, self.choice.label, self.choice.model_id),
                             self._switch_to)

    def _switch_to(self, pick: ModelPick | None) -> None:
        if pick is None or self.choose is None:
            return
        if pick.download and pick.model and pick.quant:
            self._start_download(pick.model, pick.quant)
            return
        try:
            choice = self.choose(pick.model, pick.quant)
        except Exception as exc:  # CatalogError or EngineError: both are user-facing sentences
            self.notify(str(exc), severity="error")
            return
        self.load(choice)
        self.notify(f"Loading {choice.label}; the conversation is kept.")

    # -- downloading a quant --------------------------------------------------------------------

    def _start_download(self, model: str, quant: str) -> None:
        self.downloading = f"{model} {quant}"
        self.download_cancel = threading.Event()
        self.activity = Loading(f"download of {self.downloading}", 0.0)
        self.app.refresh_bindings()
        self._download(model, quant, self.download_cancel)

    def cancel_download(self) -> None:
        self.download_cancel.set()

    @work(thread=True, exclusive=True, group="download")
    def _download(self, model: str, quant: str, cancel: threading.Event) -> None:
        try:
            entry = load_catalog().get(model)
            job = quant_download(entry, entry.quant(quant))
            done, start, last = job.total - job.needed(), time.monotonic(), [0.0]
            first = done

            def progress(n: int) -> None:
                nonlocal done
                done += n
                now = time.monotonic()
                if now - last[0] > 0.2 or done >= job.total:
                    last[0] = now
                    speed = (done - first) / max(now - start, 1e-6)
                    self.post_message(DownloadProgress(done, job.total, speed))

            job.run(progress, cancel.is_set)
        except (CatalogError, PullError) as exc:
            self.post_message(DownloadFinished(model, quant, str(exc)))
            return
        self.post_message(DownloadFinished(model, quant, None))

    def on_download_progress(self, message: DownloadProgress) -> None:
        left = (message.total - message.done) / message.bytes_per_second \
            if message.bytes_per_second > 0 else 0
        self.activity = Downloading(self.downloading or "", message.done, message.total,
                                    message.bytes_per_second, left)

    def on_download_finished(self, message: DownloadFinished) -> None:
        self.downloading = None
        self.app.refresh_bindings()
        if message.error:
            self.notify(message.error, title="Download stopped", severity="error", timeout=15)
            if self.engine is not None:
                self.activity = None
            return
        self.notify(f"{message.model} {message.quant} is downloaded and verified; loading it.")
        self._switch_to(ModelPick(message.model, message.quant))
