"""A plan for every catalog quant and every GGUF already on disk, on this machine: what `models`,
`pull --quant auto` and the app's model picker show. Each row has the memory plan, the quality
(bits per weight), the predicted or measured speed, and the ★ (`advice.py`)."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

import httpx

from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_file import shard_paths
from reflectchat.engine.gguf_header import HeaderError, fetch
from reflectchat.models.advice import Row, Speed, recommend
from reflectchat.models.catalog import CatalogModel, Quant, load_catalog
from reflectchat.models.choice import downloaded_files
from reflectchat.models.fit import (
    GPU_MARGIN,
    RAM_MARGIN,
    ModelShape,
    Plan,
    Verdict,
    plan,
    shape_from_catalog,
    shape_from_gguf,
    shape_from_headers,
)
from reflectchat.models.hardware import Hardware
from reflectchat.models.hub_files import resolve_url
from reflectchat.models.local_files import LocalModel, find_local_models
from reflectchat.models.measured import Measurements, machine_key
from reflectchat.models.speed import decode_bound, measure_ram_bandwidth, placement, prompt_estimate

RAM_BANDWIDTH = "ram_bandwidth"


class Planner:
    """Plans on one machine, with what it measured before."""

    def __init__(self, hw: Hardware, n_ctx: int, cache_type: str = "f16",
                 measurements: Measurements | None = None,
                 tensor_split: Sequence[float] | None = None,
                 ram_bandwidth: float | None = None) -> None:
        """`ram_bandwidth`: bytes/s, for a machine that is not this one (else measured)."""
        self.hw, self.n_ctx, self.cache_type = hw, n_ctx, cache_type
        self.tensor_split = tensor_split
        self.measurements = measurements or Measurements()
        self.machine = machine_key(hw)
        self._ram_bandwidth = ram_bandwidth

    @property
    def ram_bandwidth(self) -> float:
        """Measured once per machine, then read back."""
        if self._ram_bandwidth is None:
            known = self.measurements.fact(self.machine, RAM_BANDWIDTH)
            if known is None:
                known = measure_ram_bandwidth()
                self.measurements.set_fact(self.machine, RAM_BANDWIDTH, known)
            self._ram_bandwidth = known
        return self._ram_bandwidth

    def row(self, shape: ModelShape, file: str, size: int, **fields: object) -> Row:
        """Plan `shape` (its first file named `file`), below any GPU layer count that failed
        for memory here, with measured bytes and speeds where this machine has them."""
        cap = self.measurements.memory_cap(self.machine, file, self.n_ctx)
        chosen = plan(shape, self.hw, self.n_ctx, self.cache_type, self.cache_type,
                      tensor_split=self.tensor_split, max_gpu_layers=cap)
        loaded = self.measurements.loaded(self.machine, file, self.n_ctx, chosen.n_gpu_layers)
        if loaded is not None and chosen.verdict is not Verdict.NO_FIT:
            chosen = replace(chosen, ram_bytes=loaded.ram_bytes + RAM_MARGIN,
                             gpu_bytes=loaded.gpu_bytes + GPU_MARGIN * len(chosen.cards)
                             if chosen.cards else 0)
        return Row(shape=shape, plan=chosen, size=size, speed=self._speed(shape, chosen, file),
                   memory_measured=loaded is not None, **fields)  # type: ignore[arg-type]

    def _speed(self, shape: ModelShape, chosen: Plan, file: str) -> Speed:
        if chosen.verdict is Verdict.NO_FIT:
            return Speed(None, False, None, False)
        seen = self.measurements.speed(self.machine, file, chosen.n_gpu_layers)
        where = placement(shape, chosen)
        decode = seen.decode_tps if seen and seen.decode_tps else None
        prompt = seen.prompt_tps if seen and seen.prompt_tps else None
        return Speed(
            decode or decode_bound(where, self.ram_bandwidth if where.ram_bytes else None),
            decode is not None,
            prompt or prompt_estimate(shape.active_params, self.measurements.prompt_speeds(
                self.machine, where.kind)),
            prompt is not None)


def _hub_shape(entry: CatalogModel, quant: Quant) -> ModelShape:
    """Exact sizes from the headers of the quant's files on the hub (range requests)."""
    from huggingface_hub.utils import build_hf_headers

    headers = [fetch(resolve_url(entry.repo, f), f"{entry.repo}/{f}", build_hf_headers())
               for f in quant.files]
    return shape_from_headers(headers, quant.files[0])


def fit_rows(hw: Hardware, n_ctx: int, cache_type: str = "f16",
             from_hub: Collection[str] = (), notes: list[str] | None = None,
             planner: Planner | None = None) -> list[Row]:
    """A row for every catalog quant but the drafts'. For models in `from_hub`, quants not
    on disk are planned from their headers on the hub; if the hub cannot be read, from the
    catalog's numbers, and `notes` says so."""
    planner = planner or Planner(hw, n_ctx, cache_type)
    rows: list[Row] = []
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    for entry in load_catalog().models:
        if entry.role == "draft" and entry.id not in from_hub:
            continue  # listed to draft for the others (`models ID` plans it)
        model_rows = []
        hub_failed = False  # the hub could not be reached: the other quants are not asked for
        for quant in entry.quants:
            files = downloaded_files(entry, quant)
            shape, source = None, "file" if files else "catalog"
            if files:
                shape = shape_from_gguf(files)
            elif entry.id in from_hub and not offline and not hub_failed:
                try:
                    shape, source = _hub_shape(entry, quant), "hub"
                except (HeaderError, httpx.HTTPError, OSError) as exc:
                    # no connection: the other quants would fail the same way, so say it once
                    hub_failed = isinstance(exc, (httpx.TransportError, OSError))
                    what = "its quants' headers" if hub_failed else f"{quant.name}'s header"
                    if notes is not None:
                        notes.append(f"{entry.id}: could not read {what} from the hub "
                                     f"({exc}); sizes are the catalog's")
            if shape is None:
                shape = shape_from_catalog(entry.arch, quant.size)
            size = sum(f.stat().st_size for f in files) if files else quant.size
            model_rows.append(planner.row(
                shape, Path(quant.files[0]).name, size, group=entry.name, group_key=entry.id,
                quant_name=quant.name, source=source, downloaded=files is not None,
                path=files[0] if files else None, model=entry, quant=quant))
        recommend(model_rows)
        rows += model_rows
    return rows


def local_rows(hw: Hardware, n_ctx: int, found: list[LocalModel] | None = None,
               notes: list[str] | None = None, planner: Planner | None = None) -> list[Row]:
    """A row for every GGUF other tools downloaded, planned from its own header; files that
    belong to the catalog are left to `fit_rows`."""
    planner = planner or Planner(hw, n_ctx)
    catalog_files = {(m.repo, Path(q.files[0]).name) for m in load_catalog().models
                     for q in m.quants}
    groups: dict[str, list[Row]] = {}
    for local in find_local_models() if found is None else found:
        if local.source == "Hugging Face cache" and \
                (local.model, local.path.name) in catalog_files:
            continue
        try:
            shape = shape_from_gguf(shard_paths(local.path))
        except (HeaderError, EngineError, OSError, ValueError) as exc:
            if notes is not None:
                notes.append(f"{local.path}: {exc}")
            continue
        key = f"local:{local.source}:{local.model}"
        groups.setdefault(key, []).append(planner.row(
            shape, local.path.name, local.size, group=f"{local.model} ({local.source})",
            group_key=key, quant_name=local.name, source="file", downloaded=True,
            path=local.path))
    rows: list[Row] = []
    for group in groups.values():
        recommend(group)
        rows += group
    return rows
