"""The arithmetic and checking of `reflectchat eval`, against values worked out by hand."""

from __future__ import annotations

import json

import pytest

from reflectchat.eval.checking import Kind, check, final_number, gsm8k_reference, last_boxed
from reflectchat.eval.intervals import paired_difference, wilson
from reflectchat.eval.items import EvalError, Item, file_items, sample
from reflectchat.eval.report import rows
from reflectchat.eval.results import Result
from reflectchat.eval.runner import jobs
from reflectchat.eval.settings import parse_settings


def test_wilson_intervals_match_hand_computed_values():
    # 7 of 10: centre (0.7 + z²/20) / (1 + z²/10) = 0.644493, half-width 0.247715
    seven = wilson(7, 10)
    assert seven.value == 0.7
    assert seven.low == pytest.approx(0.396778, abs=1e-5)
    assert seven.high == pytest.approx(0.892208, abs=1e-5)
    # 0 of 10: the interval starts at 0 and reaches z²/(n + z²) = 0.27753
    none = wilson(0, 10)
    assert none.low == 0 and none.high == pytest.approx(0.27753, abs=1e-5)
    assert wilson(10, 10).high == 1.0 and wilson(10, 10).low == pytest.approx(0.72247, abs=1e-5)
    assert wilson(0, 0) is None


def test_paired_difference_uses_only_the_items_the_settings_disagree_on():
    # 10 items: 1 right only under A, 4 right only under B, 3 right under both, 2 under neither
    pairs = [(True, False)] + [(False, True)] * 4 + [(True, True)] * 3 + [(False, False)] * 2
    d = paired_difference(pairs)
    # (4 - 1) / 10 = 0.3; Agresti-Min: cells 1.5 and 4.5 of 12, centre 3/12 = 0.25,
    # SE = sqrt(6 - 9/12) / 12 = 0.190941; ±1.96 SE
    assert d.value == pytest.approx(0.3)
    assert d.low == pytest.approx(0.25 - 1.959964 * 0.190941, abs=1e-5)
    assert d.high == pytest.approx(0.25 + 1.959964 * 0.190941, abs=1e-5)
    # settings that agree on both items: no difference seen, but two items prove little
    # (the unadjusted interval was [0, 0]): 0 ± 1.96 * sqrt(1) / 4
    same = paired_difference([(True, True), (False, False)])
    assert same.value == 0 and same.high == pytest.approx(0.489991, abs=1e-5) == -same.low
    # all of many items right only under B: the interval stays within -1..1
    assert paired_difference([(False, True)] * 3).high == 1.0
    assert paired_difference([]) is None


@pytest.mark.parametrize(("text", "number"), [
    ("She sold 48 + 24 = 72 clips.\n\n\\boxed{72}", "72"),
    ("The total is $1,250.", "$1,250"),
    ("#### 18\nThat was 3 steps.", "18"),
    ("It drops by -4 degrees.", "-4"),
    ("\\boxed{\\text{12 apples}} and 13 more", "12"),
    ("no number here", None),
    ("put your final answer within \\boxed{}.\n5 apples\n5 apples", "5"),  # echoed, not boxed
])
def test_the_final_number_is_read_as_gsm8k_is_checked(text, number):
    assert final_number(text) == number


def test_numbers_compare_as_numbers_and_math_as_mathematics():
    assert check(Kind.NUMBER, gsm8k_reference("48 + 24 = 72\n#### 72"), "\\boxed{72.0}").correct
    assert check(Kind.NUMBER, "1250", "so $1,250.").correct
    assert not check(Kind.NUMBER, "72", "\\boxed{27}").correct
    assert not check(Kind.NUMBER, "72", "").correct
    assert check(Kind.MATH, "\\frac{14}{3}", "so \\boxed{\\dfrac{14}{3}}").correct
    assert check(Kind.MATH, "\\frac{1}{2}", "\\boxed{0.5}").correct
    assert check(Kind.MATH, "\\left( 3, \\frac{\\pi}{2} \\right)",
                 "\\boxed{(3, \\pi/2)}").correct
    assert not check(Kind.MATH, "\\frac{1}{2}", "\\boxed{\\frac{1}{3}}").correct
    assert not check(Kind.MATH, "5", "I could not solve it.").correct
    assert last_boxed("\\boxed{\\frac{a}{b}} then \\boxed{x^{2}}") == "x^{2}"


def test_a_users_file_says_which_line_is_wrong(tmp_path):
    good = tmp_path / "set.jsonl"
    good.write_text(json.dumps({"question": "2+2?", "answer": "#### 4"}) + "\n\n"
                    + json.dumps({"problem": "3+3?", "answer": 6, "id": "b"}) + "\n")
    assert file_items(good) == [Item("1", "2+2?", "4"), Item("b", "3+3?", "6")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "ok", "answer": "1"}) + "\n{torn\n")
    with pytest.raises(EvalError, match="line 2: not JSON"):
        file_items(bad)
    bad.write_text(json.dumps({"question": "no answer"}) + "\n")
    with pytest.raises(EvalError, match="line 1: an object with answer"):
        file_items(bad)
    with pytest.raises(EvalError, match="not a file"):
        file_items(tmp_path / "missing.jsonl")


def test_a_sample_is_the_same_on_every_run_and_differs_by_seed():
    items = [Item(str(n), f"q{n}", str(n)) for n in range(100)]
    assert sample(items, 10, 1) == sample(items, 10, 1)
    assert sample(items, 10, 1) != sample(items, 10, 2)
    assert sample(items, None, 1) == items and sample(items, 500, 1) == items


def test_settings_are_read_and_their_mistakes_named():
    settings = parse_settings("default,off,high+budget:512")
    assert [(s.name, s.effort, s.budget) for s in settings] == [
        ("default", None, None), ("off", "off", None), ("high+budget:512", "high", 512)]
    with pytest.raises(EvalError, match="unknown setting 'loud'"):
        parse_settings("default,loud")
    with pytest.raises(EvalError, match="twice"):
        parse_settings("off,off")


def result(item: str, setting: str, correct: bool, before: bool | None = None,
           error: str | None = None) -> Result:
    return Result(item, setting, correct, None, "1", int(before is not None), None, before,
                  10, 20, 1.0, 5.0, "stop", error, "", "reflection")


def test_the_table_counts_fixed_broken_and_unchanged_and_pairs_the_settings():
    results = [
        result("a", "on", True, before=False),  # fixed
        result("b", "on", False, before=True),  # broken
        result("c", "on", True, before=True),  # unchanged
        result("d", "on", True),
        result("e", "on", False, error="server gone"),  # failed: not scored
        result("a", "off", False), result("b", "off", True), result("c", "off", True),
        result("d", "off", False),
    ]
    on, off = rows(results, ["on", "off"])
    assert (on.items, on.correct, on.failed) == (4, 3, 1)
    assert (on.with_reflections, on.fixed, on.broken, on.unchanged) == (3, 1, 1, 1)
    assert off.paired_items == 4  # "e" failed under "on"
    assert off.against_first.value == pytest.approx((2 - 3) / 4)


def test_models_and_settings_are_interleaved_in_turned_order():
    items = [Item(str(n), f"q{n}", "1") for n in range(3)]
    a, b = parse_settings("default,off")
    order = [(j.model, j.item.id, j.setting.name) for j in jobs(items, [a, b], set(), 2)]
    assert order == [(0, "0", "default"), (0, "0", "off"), (1, "0", "default"),
                     (1, "0", "off"),
                     (1, "1", "off"), (1, "1", "default"), (0, "1", "off"),
                     (0, "1", "default"),
                     (0, "2", "default"), (0, "2", "off"), (1, "2", "default"),
                     (1, "2", "off")]
    # in blocks of two items (two models run here), skipping what is done
    done = {(0, "0", "default"), (1, "2", "default")}
    blocks = [(j.model, j.item.id) for j in jobs(items, [a], done, 2, turn=2)]
    assert blocks == [(0, "1"), (1, "0"), (1, "1"), (0, "2")]
