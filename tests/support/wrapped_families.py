"""Templates written to behave as three families' do (not copied), and scripted answers for
the GGUFs behind them, which carry each family's markers as special tokens: Kimi K3 (thinking
and answer each wrapped in `<|open|>NAME<|sep|>` ... `<|close|>NAME<|sep|>` inside a message
wrapper, empty think blocks rendered, the thinking opened by the generation prompt), Gemma 4
(`<|channel>thought` ... `<channel|>`, reasoning never rendered in a plain turn; the generation
prompt writes an empty block when thinking is off) and Apriel 1.6 (the prompt pre-fills "Here
are my reasoning steps:" as text, "[BEGIN FINAL RESPONSE]" ends the thinking)."""

from __future__ import annotations

from reflectchat.demo.scripted_model import Control, Piece, Script

# -- Kimi K3's way: tags made of <|open|>/<|close|>, a name and <|sep|> -------------------------
KIMI_TEMPLATE = (
    "{%- if thinking is undefined %}{% set thinking = true %}{% endif -%}"
    "{%- for m in messages -%}<|open|>message role=\"{{ m.role }}\"<|sep|>"
    "{%- if m.role == 'assistant' -%}"
    "{%- if thinking %}<|open|>think<|sep|>{{ m.reasoning_content | default('') }}"
    "<|close|>think<|sep|>{% endif -%}"
    "<|open|>response<|sep|>{{ m.content }}<|close|>response<|sep|>"
    "{%- else %}{{ m.content }}{% endif -%}"
    "<|close|>message<|sep|><|end_of_msg|>{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|open|>message role=\"assistant\"<|sep|>"
    "<|open|>{{ 'think' if thinking else 'response' }}<|sep|>{%- endif -%}"
)
# the prompt ends in <|sep|>; the model writes <|sep|> and <|close|> again as the same special
# tokens (the scripted model tells their occurrences apart by a token first written since the
# one before: the newlines between the blocks, as models write them)
KIMI = [
    Script("<|sep|>", ["Two and two: four.", Control("<|close|>"), Piece("think"),
                       Control("<|sep|>"), Piece("\n"), Control("<|open|>"), Piece("response"),
                       Control("<|sep|>"), "It is 4.", Control("<|close|>"), Piece("response"),
                       Control("<|sep|>"), Piece("\n\n"), Control("<|close|>"), Piece("message"),
                       Control("<|sep|>"), Control("<|end_of_msg|>")]),
]

# -- Gemma 4's way: a channel opened by <|channel> and a name, closed by <channel|> ---------------
GEMMA_TEMPLATE = (
    "{{ bos_token }}{%- if enable_thinking is defined and enable_thinking -%}"
    "<|turn>system\n<|think|><turn|>\n{%- endif -%}"
    "{%- for m in messages -%}<|turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
    "{{ m.content }}<turn|>\n{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|turn>model\n"
    "{%- if not enable_thinking | default(false) %}<|channel>thought\n<channel|>{% endif -%}"
    "<|go|>{%- endif -%}"
)
GEMMA = [Script("<|go|>", [Control("<|channel>"), Piece("thought"), Piece("\n"),
                           "The sky scatters blue light.", Control("<channel|>"),
                           "Because of Rayleigh scattering."]),
         Script("<|think|>", ["unused"]), Script("<turn|>", ["unused too"])]

# -- Apriel 1.6's way: plain-text markers, the opener pre-filled by the prompt ------------------
APRIEL_TEMPLATE = (
    "<|begin_system|>\nThink step by step, then answer after [BEGIN FINAL RESPONSE].\n"
    "{%- for m in messages -%}"
    "{%- if m.role == 'user' %}<|begin_user|>\n{{ m.content }}"
    "{%- elif m.role == 'assistant' %}\n<|begin_assistant|>\n"
    "{%- if m.reasoning_content is defined and loop.last -%}"
    "{{ m.reasoning_content }}\n[BEGIN FINAL RESPONSE]\n{%- endif -%}{{ m.content }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}\n<|begin_assistant|>\nHere are my reasoning steps:"
    "{%- endif -%}"
)
# the prompt's last token, the colon, is a control token here: its one successor starts the
# script (there is no other colon in the prompt)
APRIEL = [Script(":", ["\n3 apples and 2 apples.", Piece("\n[BEGIN FINAL RESPONSE]\n"),
                       "5 apples."])]

# -- Apriel 1.5's way: its system prompt asks for the answer between [BEGIN FINAL RESPONSE] and
# [END FINAL RESPONSE]; the model writes its reasoning first, under a heading of its own; the
# generation prompt ends in a newline (the scripted model's trigger here)
APRIEL_15_TEMPLATE = (
    "<|system|>\nYou are a careful assistant. Analyze the problem step by step, then give the "
    "final solution in this format: [BEGIN FINAL RESPONSE] ... [END FINAL RESPONSE].\n<|end|>\n"
    "{%- for m in messages %}{% if m.role == 'user' %}<|user|>\n{{ m.content }}\n<|end|>\n"
    "{%- elif m.role == 'assistant' %}<|assistant|>\n{{ m.content }}\n<|end|>\n{% endif %}"
    "{%- endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
APRIEL_15_SCRIPTS = [Script("\n", [Piece("Here are my reasoning steps:"), " Ten minus three.",
                           Piece(" [BEGIN FINAL RESPONSE] "), "Seven.",
                           Piece(" [END FINAL RESPONSE]")]),
             *(Script(marker, [f"unused {marker}"]) for marker in
               ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"))]
