"""IFD and r-IFD of a (prompt, answer) pair, as Selective Reflection-Tuning defines them (Li et
al., arXiv 2402.10110; github.com/tianyi-lab/Reflection_Tuning), scored by the loaded model:

- loss = mean token cross-entropy over the target span only; ppl = exp(loss);
- IFD = ppl(A | template(Q)) / ppl(A): below 1, the instruction helps the model produce A;
- r-IFD = ppl(Q | template(reverse(A))) / ppl(Q): below 1, the answer points back to Q.

The template is the model's own chat template (the paper used Vicuna's; with a chat model its
own is the natural choice), so A is scored where the model's answer would begin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from reflectchat.engine.scoring import Scorer, SpanLoss

REVERSE_PROMPT = ("Below is the response to an instruction, please guess the corresponding "
                  "instruction for the given response.\n{answer}\nGenerate the instruction for "
                  "the above response.")


@dataclass(frozen=True)
class PairScores:
    ifd: float
    rifd: float
    answer_given_prompt: float  # the four mean losses, in nats per token
    answer_alone: float
    prompt_given_reverse: float
    prompt_alone: float
    tokens: int  # tokens scored over the four spans

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _ratio(conditioned: SpanLoss, alone: SpanLoss) -> float:
    """ppl(conditioned) / ppl(alone) = exp(loss difference)."""
    return math.exp(conditioned.loss - alone.loss)


def pair_tokens(scorer: Scorer, prompt: str, answer: str) -> int:
    """Tokens the four spans evaluate, prefixes included: what must fit the context."""
    q, a = scorer.text_tokens(prompt), scorer.text_tokens(answer)
    return max(len(scorer.chat_prefix(prompt)) + len(a),
               len(scorer.chat_prefix(REVERSE_PROMPT.format(answer=answer))) + len(q))


def score_pair(scorer: Scorer, prompt: str, answer: str) -> PairScores:
    """The four losses and the two ratios; TooLong when a span does not fit the context."""
    q, a = scorer.text_tokens(prompt), scorer.text_tokens(answer)
    answer_given = scorer.span_loss(scorer.chat_prefix(prompt), a)
    answer_alone = scorer.span_loss(scorer.start(), a)
    prompt_given = scorer.span_loss(scorer.chat_prefix(REVERSE_PROMPT.format(answer=answer)), q)
    prompt_alone = scorer.span_loss(scorer.start(), q)
    return PairScores(
        _ratio(answer_given, answer_alone), _ratio(prompt_given, prompt_alone),
        answer_given.loss, answer_alone.loss, prompt_given.loss, prompt_alone.loss,
        answer_given.tokens + answer_alone.tokens + prompt_given.tokens + prompt_alone.tokens)
