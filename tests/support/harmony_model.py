"""Generated GGUFs of the gpt-oss (harmony) family, shared by the engine and app tests: its
markers are CONTROL tokens, as in the real files, and its template writes reasoning as gpt-oss's
does. The scripted model writes the markers it uses twice in one answer (`<|channel|>`,
`<|message|>`) as the same CONTROL tokens both times (reflectchat/demo/scripted_model.py tells
their occurrences apart). Its generation prompt ends in `<|start|>assistant`, then the script's
trigger token."""

from __future__ import annotations

from reflectchat.demo.scripted_model import Control, Piece, Script

# gpt-oss: a system message with the effort, analysis then final; `thinking` carries reasoning
HARMONY_TEMPLATE = (
    "<|start|>system<|message|>You are a helpful assistant.\n"
    "Reasoning: {{ reasoning_effort | default('medium') }}<|end|>"
    "{% for m in messages %}{% if m.role == 'user' %}"
    "<|start|>user<|message|>{{ m.content }}<|end|>"
    "{% elif m.role == 'assistant' %}{% if m.thinking is defined %}"
    "<|start|>assistant<|channel|>analysis<|message|>{{ m.thinking }}<|end|>{% endif %}"
    "<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant"
    "{% if reasoning_effort == 'low' %}<|go_low|>{% else %}<|go|>{% endif %}{% endif %}"
)
HARMONY = Script("<|go|>", [
    Control("<|channel|>"), Piece("analysis"), Control("<|message|>"),
    "The user asks for 2+2. That is 4.", Control("<|end|>"), Control("<|start|>"),
    Piece("assistant"), Control("<|channel|>"), Piece("final"), Control("<|message|>"),
    "2 + 2 = 4.", Control("<|return|>"),
])
HARMONY_LOW = Script("<|go_low|>", ["Briefly: 4."])
# the other markers a gpt-oss vocabulary holds; with <|return|> and <|call|> in it, llama.cpp
# does not treat <|end|> as the end of the answer
HARMONY_REST = [Script(marker, [f"unused {i}"]) for i, marker in enumerate(
    ["<|call|>", "<|constrain|>"])]
