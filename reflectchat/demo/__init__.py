"""The built-in demo model: a tiny GGUF generated on first use, replayed by the real llama.cpp."""

from __future__ import annotations

import hashlib
from pathlib import Path

from reflectchat import paths
from reflectchat.demo.answers import DEFAULT_TRIGGER, KEYWORDS, SCRIPTS
from reflectchat.demo.scripted_model import chat_template, write_scripted_gguf

DEMO_CONTEXT = 4096
# The app replays the demo at a 70B's pace on a good GPU, so the panes can be watched filling
# (and Esc tried); unpaced, an answer would appear at once.
DEMO_TOKENS_PER_SECOND = 40.0


def demo_model_path(cache_dir: Path | None = None) -> Path:
    """The demo GGUF, written once per version of the recorded answers."""
    template = chat_template(KEYWORDS, DEFAULT_TRIGGER)
    recipe = repr([(s.trigger, list(s.segments)) for s in SCRIPTS]) + template
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    path = (cache_dir or paths.cache_dir()) / f"demo-{digest}.gguf"
    if not path.exists():
        write_scripted_gguf(path, SCRIPTS, template, DEMO_CONTEXT, name="reflectchat demo")
    return path
