"""What differs between two answers (final answers, the output's words), and the share of marks
per pair of setups with its interval."""

from __future__ import annotations

import pytest

from reflectchat.eval.compared import output_diff, pair_marks, same_final


@pytest.mark.parametrize(("a", "b", "same"), [
    ("The answer is 4.", "So we get **4**", True),
    ("\\boxed{1,000}", "The total is 1000 dollars.", True),
    ("The answer is 4.", "The answer is 5.", False),
    ("Paris.", "paris", True),
    ("Paris is the capital.", "Lyon is the capital.", False),
    ("", "", True),
    ("Long essays that end on a year. " * 10 + "It ended in 1945.",
     "Another essay altogether, on another subject. " * 5 + "It began in 1945.", False),
    ("Step by step. " * 20 + "#### 42", "Quick: \\boxed{42}", True),
    ("Step by step. " * 20 + "#### 42", "The answer is 42, I think.", True),
    ("\\boxed{x^2}", "\\boxed{x^2}.", True),
])
def test_final_answers_agree_by_their_number_else_their_text(a, b, same):
    assert same_final(a, b) is same


def test_the_output_diff_marks_the_words_each_side_has_alone():
    parts = output_diff("The answer is 4, since 2 + 2 = 4.", "The answer is 5, since 2 + 3 = 5.")
    assert "".join(w for op, w in parts if op != "+") == "The answer is 4, since 2 + 2 = 4."
    assert "".join(w for op, w in parts if op != "-") == "The answer is 5, since 2 + 3 = 5."
    assert ("-", "4, ") in parts and ("+", "5, ") in parts
    assert output_diff("same words", "same words") == [("=", "same words")]


def test_marks_per_pair_of_setups_count_a_side_the_same_whichever_was_asked_first():
    q8, q4, spec = "Q8_0", "Q4_K_M", "Q8_0 · spec off"
    marks = [(q8, q4, "a")] * 10 + [(q4, q8, "b")] * 4 + [(q4, q8, "a")] * 6 + \
        [(q8, q4, "tie")] * 2 + [(q8, spec, "tie")] + [(q8, q8, "a")]
    pairs = pair_marks(marks)
    assert [(p.first, p.second, p.first_wins, p.second_wins, p.ties) for p in pairs] == [
        (q4, q8, 6, 14, 2), (q8, spec, 0, 0, 1)]
    share = pairs[0].share()
    assert share is not None and share.value == pytest.approx(0.3)
    assert 0.1 < share.low < 0.3 < share.high < 0.55  # Wilson, 20 marks
    assert pairs[0].sentence() == ("Q8_0 preferred 14 of 20 (70%, 95% interval [48%, 85%]) "
                                   "over Q4_K_M (6); 2 ties")
    assert pairs[1].sentence() == "Q8_0 vs Q8_0 · spec off: 1 tie, no side preferred"
    even = pair_marks([(q8, q4, "a"), (q8, q4, "b")])[0]
    assert even.sentence() == ("Q4_K_M and Q8_0 preferred equally, 1 of 2 each (95% interval "
                               "[9%, 91%])")
