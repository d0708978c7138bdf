"""A long scripted reasoning answer, for benchmarks and streaming tests: numbered steps with a
reflection every 60, then an output with a code block and a table arriving as single tokens."""

from __future__ import annotations

from reflectchat.demo.scripted_model import Control, Piece, Script

CODE_BLOCK = "```python\n" + "".join(f"total_{i} = {i} * ({i} + 1) // 2\n" for i in range(30)) \
    + "```\n"
TABLE = "| n | sum |\n|---|---|\n" + "".join(f"| {i} | {i * (i + 1) // 2} |\n"
                                               for i in range(1, 21))


def long_script(steps: int = 560, trigger: str = "<|go|>") -> Script:
    segments: list = [Control("<thinking>")]
    for i in range(1, steps + 1):
        segments.append(f"\nStep {i}: adding term {i} gives the running total {i * (i + 1) // 2}.")
        check = f"\nCheck {i}: total {i * (i + 1) // 2} equals {i}*{i + 1}/2, fine.\n"
        if i == 60:  # the first reflection with CONTROL tags, later ones as plain text
            segments += [Control("<reflection>"), check, Control("</reflection>")]
        elif i % 60 == 0:
            segments.append(f"\n<reflection>{check}</reflection>")
    segments += [Control("</thinking>"), Control("<output>"),
                 f"\nThe sum of 1..{steps} is **{steps * (steps + 1) // 2}**.\n\n",
                 Piece(CODE_BLOCK), "\n", Piece(TABLE), "\nDone.\n",
                 Control("</output>")]
    return Script(trigger, segments)
