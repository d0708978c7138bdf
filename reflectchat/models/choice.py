"""Which GGUF to run, and with which tag format, system prompt and sampling defaults."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from reflectchat.engine.base import DEFAULT_CTX, Backend, Sampling, TagFormat
from reflectchat.engine.endpoints import Endpoint
from reflectchat.models.catalog import CatalogError, CatalogModel, Quant, load_catalog
from reflectchat.sizes import size_text

DEMO_PROMPT_FROM = "reflection-llama-3.1-70b"  # the demo plays this model's part


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    label: str
    tag_format: TagFormat
    system_prompt: str
    sampling: Sampling
    context_length: int | None = None  # None: unknown until loaded
    is_demo: bool = False
    model_id: str = ""  # the catalog id, the file for a GGUF given by path, or model @ host
    quant: str | None = None
    endpoint: Endpoint | None = None  # a remote server runs the model
    format_why: str = ""  # why tag_format ("from the catalog", "--format", ...; "": unknown)
    format_pinned: bool = False  # the user chose tag_format: what the model file says yields

    @property
    def reading(self) -> str:
        """How answers are read, for the status bar and `ask`'s stderr."""
        if self.tag_format == TagFormat.AUTO:
            return "reasoning: auto, an answer's first tag decides"
        return f"reasoning: {self.tag_format.label}, {self.format_why or 'as set'}"


def choose_model(model: str | None, quant: str | None, demo: bool) -> ModelChoice:
    """`--demo` or no model: the demo; an existing file or a .gguf path: that file;
    otherwise a catalog id, found in the Hugging Face cache."""
    if demo or not model:
        from reflectchat.demo import DEMO_CONTEXT, demo_model_path

        reflection = load_catalog().get(DEMO_PROMPT_FROM)
        return ModelChoice(demo_model_path(), "demo model (replays recorded answers)",
                           TagFormat.REFLECTION, reflection.system_prompt, reflection.sampling,
                           DEMO_CONTEXT, is_demo=True, model_id="demo",
                           format_why="from the catalog")
    path = Path(model).expanduser()
    if path.exists() or path.suffix == ".gguf":
        return ModelChoice(path, path.name, TagFormat.AUTO, "", Sampling(),
                           model_id=str(path.resolve()))
    entry = load_catalog().get(model)
    if quant:
        chosen = entry.quant(quant)
        path = _downloaded(entry, chosen) or _not_downloaded(entry, chosen)
    else:
        chosen, path = _first_downloaded(entry)
    return ModelChoice(path, f"{entry.name} {chosen.name}", entry.format, entry.system_prompt,
                       entry.sampling, entry.context_length, model_id=entry.id,
                       quant=chosen.name, format_why="from the catalog")


def endpoint_choice(endpoint: Endpoint) -> ModelChoice:
    """A model a server runs (a configured endpoint's, or a URL's)."""
    name = endpoint.model or "the server's model"
    return ModelChoice(Path(), f"{name} @ {endpoint.host}", endpoint.format or TagFormat.AUTO,
                       "", Sampling(), endpoint.context, model_id=f"{name} @ {endpoint.host}",
                       endpoint=endpoint,
                       format_why="from the endpoint's settings" if endpoint.format else "",
                       format_pinned=endpoint.format is not None)


def context_for(choice: ModelChoice, asked: int | None = None) -> int:
    """The context to run with: what the user asked for, else `DEFAULT_CTX` or the model's own
    context if smaller (a 128k context's KV cache alone can outgrow the machine)."""
    return asked or min(DEFAULT_CTX, choice.context_length or DEFAULT_CTX)


def settled_choice(choice: ModelChoice, engine: Backend) -> ModelChoice:
    """Once the model is loaded, read answers as its file says they are written (unless the
    user chose a format); once a server has answered, name the model it actually serves."""
    found = engine.found_format
    if found is not None and not choice.format_pinned and \
            (found.tag_format != TagFormat.AUTO or not choice.format_why):
        choice = replace(choice, tag_format=found.tag_format, format_why=found.why)
    model = engine.model
    if choice.endpoint is None or not model:
        return choice
    label = f"{model} @ {choice.endpoint.host}"
    return replace(choice, label=label, model_id=label,
                   endpoint=replace(choice.endpoint, model=model))


def download_hint(entry: CatalogModel, quant: Quant) -> str:
    folder = quant.files[0].rpartition("/")[0]
    what = f'--include "{folder}/*"' if folder else " ".join(quant.files)
    return (f"{entry.id} {quant.name} is not downloaded ({size_text(quant.size)}); "
            f"fetch it with: hf download {entry.repo} {what}")


def _cached_file(repo: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def downloaded_files(entry: CatalogModel, quant: Quant) -> list[Path] | None:
    """Every file of `quant` (all shards), when all of them are in the HF cache."""
    paths = [_cached_file(entry.repo, f) for f in quant.files]
    return [p for p in paths if p is not None] if all(paths) else None


def _downloaded(entry: CatalogModel, quant: Quant) -> Path | None:
    """The first file of `quant` when every one of its files is in the HF cache."""
    files = downloaded_files(entry, quant)
    return files[0] if files else None


def _not_downloaded(entry: CatalogModel, quant: Quant) -> NoReturn:
    raise CatalogError(download_hint(entry, quant))


def _first_downloaded(entry: CatalogModel) -> tuple[Quant, Path]:
    for quant in entry.quants:
        path = _downloaded(entry, quant)
        if path:
            return quant, path
    raise CatalogError(f"No quant of {entry.id} is downloaded yet; choose one with --quant "
                       f"({', '.join(q.name for q in entry.quants)})")
