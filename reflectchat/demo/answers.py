"""The demo model's recorded Reflection-style answers, and which prompt words pick each one.

Every answer carries its tags as CONTROL tokens, as real Reflection GGUFs do (the scripted
model tells each answer's tags apart by its trigger).
"""

from __future__ import annotations

import re

from reflectchat.demo.scripted_model import Bytes, Control, Piece, Script, Segment

_TAG = re.compile(r"(</?(?:thinking|reflection|output)>)")


def _tagged(text: str) -> list[Segment]:
    """`text` with each Reflection tag as its CONTROL token (the blank lines between tags, the
    same in every answer, as one shared token)."""
    return [Control(part) if _TAG.fullmatch(part) else Piece(part) if not part.strip()
            else part for part in _TAG.split(text) if part]


MATH = Script("<|demo_math|>", [
    Control("<thinking>"),
    "\nThis is a quadratic equation ax² + bx + c = 0 with a = 2, b = 5 and c = -3, so I can "
    "use the quadratic formula x = (-b ± ", Bytes("√"), "(b² - 4ac)) / 2a.\n\n"
    "First the discriminant: b² - 4ac = 5² - 4·2·(-3) = 25 - 24 = 1.\n",
    Control("<reflection>"),
    "\nI made a sign error there. The term -4·2·(-3) is +24, not -24, so the discriminant is "
    "25 + 24 = 49, not 1.\n",
    Control("</reflection>"),
    "\nWith the discriminant 49, its square root is 7:\n\n"
    "- x = (-5 + 7) / 4 = 2/4 = 1/2\n"
    "- x = (-5 - 7) / 4 = -12/4 = -3\n\n"
    "Check: 2·(1/2)² + 5·(1/2) - 3 = 0.5 + 2.5 - 3 = 0, and 2·9 - 15 - 3 = 0. Both work.\n",
    Control("</thinking>"),
    "\n\n",
    Control("<output>"),
    "\nThe equation 2x² + 5x − 3 = 0 has two solutions: **x = 1/2** and **x = −3**.\n\n"
    "With the quadratic formula (a = 2, b = 5, c = −3):\n\n"
    "- discriminant: b² − 4ac = 25 + 24 = 49, and √49 = 7\n"
    "- x = (−5 ± 7) / 4, which gives 2/4 = 1/2 and −12/4 = −3\n",
    Control("</output>"),
])

TRANSLATION = Script("<|demo_translate|>", _tagged(
    "<thinking>\nThe user wants the English sentence \"It's raining cats and dogs\" in French. "
    "A word-for-word translation gives \"Il pleut des chats et des chiens\".\n"
    "<reflection>\nThat literal version is wrong. The English sentence is an idiom for very "
    "heavy rain, and a French speaker would not read cats and dogs that way. French has idioms "
    "of its own for it: \"Il pleut des cordes\" (it's raining ropes) is the usual one, \"Il "
    "pleut à verse\" is common too, and in Belgium people say \"Il drache\".\n</reflection>\n"
    "So the translation should carry the meaning, not the animals: \"Il pleut des cordes\".\n"
    "</thinking>\n\n<output>\n**Il pleut des cordes.** (literally: \"it's raining ropes\")\n\n"
    "The English idiom means very heavy rain, so French uses its own idiom instead of the "
    "word-for-word *il pleut des chats et des chiens*, which would sound strange. Other ways to "
    "say it: *Il pleut à verse*, or in Belgium *Il drache*.\n</output>"))

DEBUG = Script("<|demo_debug|>", _tagged(
    "<thinking>\nThe function is meant to compute n!. Let me trace factorial(3): n == 0 is false, "
    "so it returns 3 * factorial(3), which should get closer to the base case...\n"
    "<reflection>\nNo, I assumed the recursive call makes n smaller, but it passes n unchanged. "
    "factorial(3) calls factorial(3) again, forever, until Python raises RecursionError. The "
    "call has to be factorial(n - 1).\n</reflection>\n"
    "With factorial(n - 1), factorial(3) = 3 * 2 * 1 * factorial(0) = 6. A negative n would "
    "still recurse forever, so the fix should reject it.\n</thinking>\n\n<output>\n"
    "The recursive call passes `n` unchanged, so `factorial(3)` calls `factorial(3)` again and "
    "again until Python stops with `RecursionError: maximum recursion depth exceeded`.\n\n"
    "```python\ndef factorial(n):\n    if n < 0:\n        raise ValueError(\"n must be >= 0\")\n"
    "    if n == 0:\n        return 1\n    return n * factorial(n - 1)\n```\n\n"
    "Now `factorial(3)` returns `6`, and a negative number gets a clear error instead of a "
    "crash.\n</output>"))

ABOUT = Script("<|demo_about|>", _tagged(
    "<thinking>\nThis question is not one of the demo's recorded answers. I should explain what "
    "I am and point to prompts I can answer.\n<reflection>\nI should not pretend to answer it "
    "either: the demo model cannot reason about new questions at all. It replays recorded "
    "answers through the real llama.cpp engine.\n</reflection>\nSo: say what the demo is, list "
    "the prompts it knows, and how to use a real model.\n</thinking>\n\n<output>\n"
    "I'm reflectchat's **demo model**: a tiny GGUF that replays recorded answers through the "
    "real llama.cpp engine, so you can see thinking, reflections and the output without "
    "downloading anything. Try one of these:\n\n"
    "- Solve the equation: 2x^2 + 5x - 3 = 0\n"
    "- Translate 'It's raining cats and dogs' to French\n"
    "- Debug this Python code: def factorial(n): return n * factorial(n)\n\n"
    "To ask a real reasoning model, pass its GGUF file: `reflectchat ask --model "
    "path/to/model.gguf \"your question\"`.\n</output>"))

SCRIPTS = [MATH, TRANSLATION, DEBUG, ABOUT]
KEYWORDS = [
    (("equation", "solve", "2x"), MATH.trigger),
    (("translate", "french", "raining"), TRANSLATION.trigger),
    (("debug", "python", "factorial", "code"), DEBUG.trigger),
]
DEFAULT_TRIGGER = ABOUT.trigger
# What the app offers to ask the demo first: one prompt for each recorded answer.
STARTERS = [
    "Solve the equation: 2x^2 + 5x - 3 = 0",
    "Translate 'It's raining cats and dogs' to French",
    "Debug this Python code: def factorial(n): return n * factorial(n)",
]
