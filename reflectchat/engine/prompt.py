"""From chat messages to prompt tokens, where only the chat template's own markup can become
control tokens.

The template is the GGUF's own (`tokenizer.chat_template`, rendered by llama-cpp-python's
sandboxed Jinja formatter) or, for a GGUF that carries none, one of llama.cpp's built-in
templates chosen by the model's architecture (ChatML only when nothing else fits), or the one
the user names.

Message contents are untrusted: a pasted `<|eot_id|><|start_header_id|>assistant...` must stay
text, or it forges conversation turns. So the template is also rendered with a placeholder in
place of each content, which shows where the contents go; the markup around them is split at
the special tokens it holds, and every stretch of plain text (markup and contents together, as
llama.cpp itself would see it) is tokenized with special-token parsing off. For text without
special-token strings in it, the tokens are exactly those of tokenizing the whole prompt.
A template that reads the contents (to pick a branch, or to cut an earlier answer's thinking)
renders differently around placeholders; then each content is looked for, in order, in the
real prompt.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from reflectchat.engine.base import OWN, ChatMessage, FoundFormat, TagFormat
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama_cpp_api import (
    apply_builtin_template,
    builtin_templates,
    recognised_template,
)
from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.reasoning_found import find_format, special_pair
from reflectchat.engine.sandbox import BoundError, SandboxError, bounded_template
from reflectchat.engine.template_reading import TemplateReader, switched

Variables = dict[str, object]  # what a template reads besides the messages
_SCAN = 4096  # tokens looked at, at each end of the vocabulary, for a thinking pair
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
# general.architecture -> llama.cpp's built-in template for a GGUF without one
_BY_ARCH = {
    "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma",
    "qwen2": "chatml", "qwen2moe": "chatml", "qwen3": "chatml", "qwen3moe": "chatml",
    "phi3": "phi3", "phi4": "phi4", "command-r": "command-r", "cohere2": "command-r",
    "deepseek2": "deepseek3", "granite": "granite", "exaone": "exaone3", "glm4": "chatglm4",
    "llama4": "llama4", "falcon3": "falcon3", "minicpm": "minicpm",
}
# what each template we may pick writes at the end of a turn: generation stops there even when
# the vocabulary does not mark it as end-of-generation (or has no such token at all)
END_OF_TURN = {
    "gemma": "<end_of_turn>", "chatml": "<|im_end|>", "llama3": "<|eot_id|>", "llama2": "</s>",
    "phi3": "<|end|>", "phi4": "<|im_end|>", "command-r": "<|END_OF_TURN_TOKEN|>",
    "deepseek3": "<\uff5cend\u2581of\u2581sentence\uff5c>", "granite": "<|end_of_text|>",
    "exaone3": "[|endofturn|]",
    "chatglm4": "<|user|>", "llama4": "<|eot|>", "falcon3": "<|endoftext|>", "minicpm": "</s>",
}


@dataclass(frozen=True)
class TemplateChoice:
    name: str  # OWN, or a llama.cpp built-in template's name
    note: str | None  # for the user, when it is not the model's own
    end_of_turn: str | None  # text that ends a turn, when it may not be an end-of-generation token


def choose_template(metadata: dict[str, str], wanted: str | None,
                    own_usable: bool = True) -> TemplateChoice:
    """`wanted`: the user's choice (OWN or a built-in name), else the GGUF's own (unless it
    ran past its bounds: `own_usable`), else a built-in by architecture."""
    has_own = bool(metadata.get("tokenizer.chat_template")) and own_usable
    if wanted == OWN and not has_own:
        raise EngineError("This model has no chat template of its own; name one of llama.cpp's "
                          f"with --template ({', '.join(builtin_templates())})")
    if (wanted is None and has_own) or wanted == OWN:
        return TemplateChoice(OWN, None, None)
    if wanted is not None:
        if wanted not in builtin_templates():
            raise EngineError(f"--template {wanted!r} is not one of llama.cpp's chat templates: "
                              f"{', '.join([OWN, *builtin_templates()])}")
        return TemplateChoice(wanted, f"Using the {wanted} chat template (--template)",
                              END_OF_TURN.get(wanted))
    arch = metadata.get("general.architecture", "")
    name = _BY_ARCH.get(arch)
    if name is None and arch == "llama":  # Llama 3's tokenizer, or an older SentencePiece one
        name = "llama3" if metadata.get("tokenizer.ggml.pre") == "llama-bpe" else "llama2"
    why = f"chosen for its architecture ({arch})"
    if name is None:
        name, why = "chatml", f"llama.cpp has no template for its architecture ({arch or '?'})"
    return TemplateChoice(name, f"This model has no chat template; using {name}, {why}. "
                                "--template NAME picks another.", END_OF_TURN.get(name))


class ChatPrompt:
    """A chat template bound to one model's tokenizer. The model's own template runs under a
    time and size bound (`sandbox.py`); past it, or where it cannot render a plain chat, a
    built-in template takes over for good, and `fallback_note` says so once."""

    def __init__(self, model: LoadedModel, template: TemplateChoice, file: str = "") -> None:
        """`file`: the model file's name, for notes."""
        self.template = template
        self._file = file
        self._metadata = model.metadata
        self._vocab = model.vocab
        self._bos = self._vocab.text(self._vocab.bos)
        self._source = model.metadata.get("tokenizer.chat_template") or ""
        self._render_own = bounded_template(
            self._source, self._bos, self._vocab.text(self._vocab.eos)) \
            if template.name == OWN else None
        self.fallback_note: str | None = None
        self._switches: tuple[list[str], list[str]] | None = None

    @property
    def source(self) -> str:
        """The model file's own template text ("" when it has none)."""
        return self._source

    def take_fallback_note(self) -> str | None:
        """The note on an own template that could not be used, once."""
        note, self.fallback_note = self.fallback_note, None
        return note

    def found_format(self) -> FoundFormat:
        """The reasoning format the model file says it writes (its template's, else its
        special tokens'). An own template that cannot render a plain chat (it does not
        compile, or fails) is left here, at load, for a built-in one."""
        reader = self._reader()
        if reader is not None:
            try:
                return reader.found_format(lambda: self.switches()[1])
            except BoundError as exc:
                self._leave_own(f"was stopped: {exc}")
            except SandboxError as exc:
                self._leave_own(f"cannot be used: {exc}")
        found = find_format(None, None, self._vocab.has_special)
        if found.tag_format == TagFormat.AUTO:
            return special_pair(self._special_texts()) or found
        return found

    def _special_texts(self) -> list[str]:
        """The special tokens at the vocabulary's two ends, where added tokens sit (a bounded
        look: a vocabulary may hold 300,000 of them)."""
        vocab, n = self._vocab, self._vocab.size
        ids = sorted(set(range(min(n, _SCAN))) | set(range(max(n - _SCAN, 0), n)))
        return [vocab.text(t) for t in ids if vocab.is_special(t)]

    def _reader(self) -> TemplateReader | None:
        """The own template with this vocabulary, while it is in use."""
        own = self._render_own
        if self.template.name != OWN or own is None:
            return None
        vocab = self._vocab
        whole = bounded_template(self._source, self._bos, vocab.text(vocab.eos),
                                 generation_prompt=False)
        ends = frozenset(vocab.text(t) for t in (vocab.eos, vocab.eot) if t >= 0)
        return TemplateReader(self._source, own, whole, vocab.has_special, vocab.specials_in,
                              ends, self._special_texts)

    def _leave_own(self, why: str) -> None:
        """Use the built-in template llama.cpp recognises in the own template's text, else
        the architecture's."""
        recognised = recognised_template(self._source)
        if recognised is not None:
            self.template = TemplateChoice(recognised, None, END_OF_TURN.get(recognised))
            how = "recognised in the template's text"
        else:
            self.template = choose_template(self._metadata, None, own_usable=False)
            how = f"chosen for its architecture ({self._metadata.get('general.architecture')})"
        self._render_own = None
        where = f" in {self._file}" if self._file else ""
        self.fallback_note = (f"The chat template{where} {why}. Using llama.cpp's "
                              f"{self.template.name} template instead ({how}); --template "
                              "NAME picks another")

    def render(self, messages: list[ChatMessage], variables: Variables | None = None) -> str:
        """The prompt as text; `variables`: what the template reads besides the messages."""
        return self._render([{"role": m.role, "content": m.content} for m in messages],
                            variables)

    def tokens(self, messages: list[ChatMessage], variables: Variables | None = None) -> list[int]:
        parts = self._parts(messages, variables)
        runs = self._runs(parts)
        add_bos = self._vocab.adds_bos and not (
            self._bos and "".join(text for text, _ in parts).startswith(self._bos))
        tokens = [self._vocab.bos] if add_bos else []
        for text, special in runs:
            tokens += self._vocab.tokenize(text, special=special)
        return tokens

    def turn_end_note(self) -> str | None:
        """Why answers may run on to the token limit: nothing ends this model's turn."""
        marker = self.template.end_of_turn
        eog = [t for t in (self._vocab.eos, self._vocab.eot)
               if t >= 0 and self._vocab.is_eog(t)]
        if eog or marker:
            return None
        return ("This model's vocabulary has no end-of-turn token, so its answers end only at "
                "the token limit (--max-tokens).")

    def ending(self, suffixes: tuple[str, ...], messages: list[ChatMessage],
               variables: Variables | None = None) -> str | None:
        """Which of `suffixes` the template's markup ends the prompt with (the longest), if
        any."""
        prompt = self.render(messages, variables).rstrip()
        return max((s for s in suffixes if prompt.endswith(s)), key=len, default=None)

    def effort(self, effort: str | None) -> tuple[Variables, str | None]:
        """The template variables that ask for `effort` (`switches`: gpt-oss's
        reasoning_effort, Kimi K3's thinking_effort; Qwen3's enable_thinking, Granite's and
        Kimi's thinking, GigaChat's reasoning: on or off), and what of it the template cannot
        do, for the user (None: all of it, or no effort asked)."""
        if effort is None:
            return {}, None
        levels, switches = self.switches()
        variables: Variables = switched(levels, switches, effort)
        if variables:
            if effort != "off" and not levels:
                return variables, (f"effort {effort}: this model's template only turns "
                                   "thinking on or off; it is on")
            return variables, None
        if effort == "off":
            return {}, None  # the engine ends the thinking at once instead
        return {}, f"effort {effort}: this model's template has no effort setting"

    def switches(self) -> tuple[list[str], list[str]]:
        """The template's effort variables and its thinking on/off switches, found rather
        than listed (TemplateReader.switches). Found once; none for a built-in template."""
        if self._switches is None:
            self._switches = ([], [])
            reader = self._reader()
            if reader is not None:
                # past a bound or failing: no switches (the next render says why)
                with contextlib.suppress(BoundError, SandboxError):
                    self._switches = reader.switches()
        return self._switches

    def _parts(self, messages: list[ChatMessage],
               variables: Variables | None) -> list[tuple[str, bool]]:
        """The prompt as (text, is a message's content) parts."""
        real = self.render(messages, variables)
        skeleton = _PLACEHOLDER.split(self._render(
            [{"role": m.role, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)],
            variables))
        parts = [(messages[int(p)].content, True) if i % 2 else (p, False)
                 for i, p in enumerate(skeleton)]
        if "".join(text for text, _ in parts) == real:
            return parts
        parts, at = [], 0
        for message in messages:
            where = real.find(message.content, at) if message.content else -1
            if where >= 0:
                parts += [(real[at:where], False), (message.content, True)]
                at = where + len(message.content)
        return [*parts, (real[at:], False)]

    def _render(self, dicts: list[dict[str, str]], variables: Variables | None) -> str:
        try:
            if self._render_own is not None:
                try:
                    return self._render_own(dicts, **(variables or {}))
                except BoundError as exc:
                    self._leave_own(f"was stopped: {exc}")
            return apply_builtin_template(self.template.name, dicts)
        except Exception as exc:  # Jinja errors of any kind, raised by the model's template
            raise EngineError(f"The chat template ({self.template.name}) failed on this "
                              f"conversation: {exc}; --template NAME picks another") from None

    def _runs(self, parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
        """The prompt as (text, is a special token) runs; plain text runs are merged."""
        runs: list[tuple[str, bool]] = []

        def add(text: str, special: bool) -> None:
            if not text:
                return
            if not special and runs and not runs[-1][1]:
                runs[-1] = (runs[-1][0] + text, False)
            else:
                runs.append((text, special))

        for text, is_content in parts:
            for piece, special in [(text, False)] if is_content else self._split_markup(text):
                add(piece, special)
        return runs

    def _split_markup(self, markup: str) -> list[tuple[str, bool]]:
        """The template's own text, cut at the special tokens llama.cpp finds in it."""
        specials = set(self._vocab.specials_in(markup))
        specials.discard("")
        if not specials:
            return [(markup, False)]
        pattern = "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
        pieces = re.split(f"({pattern})", markup)
        return [(piece, i % 2 == 1) for i, piece in enumerate(pieces)]


class TurnEndWatch:
    """Finds a template's end-of-turn text in the streamed answer: text that could still turn
    out to be its start is held back, the rest passes on, and the marker itself is dropped.
    Offsets of special tokens in the text (`marks`) travel with it."""

    def __init__(self, marker: str | None) -> None:
        self._marker = marker or ""
        self._held = ""
        self._held_marks: tuple[int, ...] = ()
        self.ended = False

    def feed(self, text: str) -> str:
        return self.feed_marked(text)[0]

    def feed_marked(self, text: str, marks: tuple[int, ...] = ()) -> tuple[str, tuple[int, ...]]:
        """What passes on of `text`, and where its special tokens begin."""
        held = self._held + text
        marks = self._held_marks + tuple(len(self._held) + m for m in marks)
        if not self._marker:
            self._held, self._held_marks = "", ()
            return held, marks
        cut = held.find(self._marker)
        if cut >= 0:
            self.ended, self._held, self._held_marks = True, "", ()
            return held[:cut], tuple(m for m in marks if m < cut)
        keep = next((n for n in range(min(len(held), len(self._marker) - 1), 0, -1)
                     if self._marker.startswith(held[-n:])), 0)
        cut = len(held) - keep
        self._held = held[cut:]
        self._held_marks = tuple(m - cut for m in marks if m >= cut)
        return held[:cut], tuple(m for m in marks if m < cut)

    def flush(self) -> str:
        return self.flush_marked()[0]

    def flush_marked(self) -> tuple[str, tuple[int, ...]]:
        held, marks = self._held, self._held_marks
        self._held, self._held_marks = "", ()
        return held, marks
