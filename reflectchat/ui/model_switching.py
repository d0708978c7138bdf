"""Loading a model, switching to another model or quant (Ctrl+L), and downloading a quant that
is not on disk yet, with progress in the status bar and Esc to cancel. Loads, plans and
downloads run on worker threads; the UI hears of them through messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from textual import work
from textual.app import App

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import OWN, Backend, Runtime
from reflectchat.engine.errors import EngineError
from reflectchat.models.advice import Row
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.models.choice import ModelChoice, context_for, settled_choice
from reflectchat.models.hardware import detect
from reflectchat.models.pull import PullError, quant_download
from reflectchat.models.quant_plans import Planner, fit_rows, local_rows
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.ui.messages import (
    DownloadFinished,
    DownloadProgress,
    LoadFinished,
    LoadProgress,
)
from reflectchat.ui.screens.model_picker import ModelPick, ModelPicker
from reflectchat.ui.widgets.status_bar import Status, StatusBar

# Builds the engine for a model choice and runtime; `progress` gets 0..1, False aborts.
EngineFactory = Callable[[ModelChoice, Callable[[float], bool], Runtime], Backend]


class ModelSwitchingPart(App[None]):
    choice: ModelChoice
    engine: Backend | None
    runtime: Runtime
    recorder: SessionRecorder | None
    _make_engine: EngineFactory
    _choose: Callable[[str | None, str | None], ModelChoice] | None
    _status: Status
    _quitting: bool
    _live: Turn | None
    _meta: Callable[[], SessionMeta]  # the session part's

    def _init_model_switching(self) -> None:
        self._downloading: str | None = None  # "model quant" while one downloads
        self._download_cancel = threading.Event()

    @property
    def _status_bar(self) -> StatusBar:
        return self.query_one(StatusBar)

    def _load(self, choice: ModelChoice) -> None:
        self.choice = choice
        self._status = replace(self._status, model=choice.label)
        self._status_bar.loading(choice.label, 0.0)
        self._load_worker(choice)

    @work(thread=True, exclusive=True, group="load")
    def _load_worker(self, choice: ModelChoice) -> None:
        last = [0.0]

        def progress(fraction: float) -> bool:
            now = time.monotonic()
            if now - last[0] > 0.05 or fraction >= 1.0:
                last[0] = now
                self.post_message(LoadProgress(fraction))
            return not self._quitting

        try:
            engine = self._make_engine(choice, progress, self.runtime)
        except EngineError as exc:
            self.post_message(LoadFinished(None, str(exc)))
            return
        self.post_message(LoadFinished(engine))

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.engine is None:
            self._status_bar.loading(self.choice.label, message.fraction)

    def on_load_finished(self, message: LoadFinished) -> None:
        engine = message.engine
        if engine is None:
            self._status_bar.message(f"Could not load {self.choice.label}: {message.error}")
            self.notify(message.error or "", title="Model not loaded", severity="error",
                        timeout=15)
            return
        self.engine = engine
        self.choice = settled_choice(self.choice, engine)
        if engine.load_note:
            self.notify(engine.load_note, title=f"Loaded {self.choice.label}",
                        severity="warning", timeout=15)
        if self.recorder is not None:
            self.recorder.update_meta(self._meta())
        self._status = replace(self._status, model=self.choice.label,
                               gpu_layers=engine.gpu_layers, layer_count=engine.layer_count,
                               ctx_total=engine.n_ctx if engine.context_stated else 0,
                               template="" if engine.template in (OWN, "server") else
                               engine.template)
        self._status_bar.show(self._status)

    def action_switch_model(self) -> None:
        if self._live is not None:
            self.notify("Stop the answer first (Esc), then switch models.", severity="warning")
            return
        if self._downloading is not None:
            self.notify(f"Downloading {self._downloading}; Esc cancels it.", severity="warning")
            return
        n_ctx = self.engine.n_ctx if self.engine is not None else context_for(self.choice)

        def plan_rows() -> list[Row]:  # on the picker's worker thread
            hw = detect()
            planner = Planner(hw, n_ctx)
            return fit_rows(hw, n_ctx, planner=planner) + local_rows(hw, n_ctx, planner=planner)

        self.push_screen(ModelPicker(plan_rows, self.choice.label, self.choice.model_id),
                         self._switch_to)

    def reload_with(self, runtime: Runtime) -> None:
        """Load the model in use again, to run with `runtime`."""
        self.runtime = runtime
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self._load(self.choice)
        self.notify(f"Reloading {self.choice.label} with the new settings; the conversation "
                    "is kept.")

    def _switch_to(self, pick: ModelPick | None) -> None:
        if pick is None or self._choose is None:
            return
        if pick.download and pick.model and pick.quant:
            self._start_download(pick.model, pick.quant)
            return
        try:
            choice = self._choose(pick.model, pick.quant)
        except Exception as exc:  # CatalogError or EngineError: both are user-facing sentences
            self.notify(str(exc), severity="error")
            return
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self._load(choice)
        self.notify(f"Loading {choice.label}; the conversation is kept.")

    # -- downloading a quant --------------------------------------------------------------------

    def _start_download(self, model: str, quant: str) -> None:
        self._downloading = f"{model} {quant}"
        self._download_cancel = threading.Event()
        self._status_bar.loading(f"download of {self._downloading}", 0.0)
        self.refresh_bindings()
        self._download(model, quant, self._download_cancel)

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
        self._status_bar.downloading(self._downloading or "", message.done, message.total,
                                     message.bytes_per_second, left)

    def on_download_finished(self, message: DownloadFinished) -> None:
        self._downloading = None
        self.refresh_bindings()
        if message.error:
            self.notify(message.error, title="Download stopped", severity="error", timeout=15)
            if self.engine is not None:
                self._status_bar.show(self._status)
            return
        self.notify(f"{message.model} {message.quant} is downloaded and verified; loading it.")
        self._switch_to(ModelPick(message.model, message.quant))
