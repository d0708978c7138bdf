"""The table of an evaluation: per setting, accuracy with its Wilson interval, the items, mean
thinking tokens, mean time to output and speed; each setting against the first on the items
both answered, with the paired interval; and what the reflections did: fixed (the claim before
the first reflection wrong, the final answer right), broken (right, then wrong), unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean
from typing import Any

from reflectchat.eval.intervals import Interval, paired_difference, wilson
from reflectchat.eval.results import Result


@dataclass(frozen=True)
class Row:
    setting: str
    items: int  # scored
    correct: int
    accuracy: Interval | None
    failed: int  # answers that failed (not scored)
    thinking_tokens: float | None
    time_to_output_s: float | None
    tokens_per_second: float | None
    acceptance: float | None  # drafted tokens the model kept, over all its answers
    with_reflections: int
    fixed: int
    broken: int
    unchanged: int
    unclear: int  # reflected, but no answer readable in the claim before
    against_first: Interval | None  # accuracy minus the first setting's, paired
    paired_items: int


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rows(results: list[Result], settings: list[str]) -> list[Row]:
    by_setting = {s: {r.item: r for r in results if r.setting == s} for s in settings}
    first = by_setting[settings[0]] if settings else {}
    table = []
    for name in settings:
        mine = by_setting[name]
        scored = [r for r in mine.values() if r.scored]
        reflected = [r for r in scored if r.reflections]
        pairs = [(first[i].correct, r.correct) for i, r in mine.items()
                 if r.scored and i in first and first[i].scored]
        table.append(Row(
            setting=name, items=len(scored), correct=sum(r.correct for r in scored),
            accuracy=wilson(sum(r.correct for r in scored), len(scored)),
            failed=len(mine) - len(scored),
            thinking_tokens=_mean([r.thinking_tokens for r in scored]),
            time_to_output_s=_mean([r.time_to_output_s for r in scored]),
            tokens_per_second=_mean([r.tokens_per_second for r in scored]),
            acceptance=_share(sum(r.accepted or 0 for r in scored),
                              sum(r.drafted or 0 for r in scored)),
            with_reflections=len(reflected),
            fixed=sum(r.before_correct is False and r.correct for r in reflected),
            broken=sum(r.before_correct is True and not r.correct for r in reflected),
            unchanged=sum(r.before_correct is not None and r.before_correct == r.correct
                          for r in reflected),
            unclear=sum(r.before_correct is None for r in reflected),
            against_first=paired_difference(pairs) if name != settings[0] else None,
            paired_items=len(pairs)))
    return table


def _percent(i: Interval | None, signed: bool = False) -> str:
    if i is None:
        return "—"
    sign = "+" if signed else ""
    return f"{i.value:{sign}.1%} [{i.low:{sign}.1%}, {i.high:{sign}.1%}]"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


HEADERS = ["setting", "accuracy [95% CI]", "items", "thinking tok", "to output s", "tok/s",
           "spec kept", "vs first [95% CI]", "reflected", "fixed", "broken", "unchanged"]


def cells(row: Row) -> list[str]:
    return [row.setting, _percent(row.accuracy), f"{row.correct}/{row.items}"
            + (f" ({row.failed} failed)" if row.failed else ""),
            _number(row.thinking_tokens), _number(row.time_to_output_s, 2),
            _number(row.tokens_per_second, 1),
            "—" if row.acceptance is None else f"{row.acceptance:.0%}",
            _percent(row.against_first, signed=True) if row.against_first else "—",
            str(row.with_reflections), str(row.fixed), str(row.broken),
            f"{row.unchanged}" + (f" (+{row.unclear} unclear)" if row.unclear else "")]


def compact_cells(row: Row) -> list[str]:
    """What decides between configurations, for a narrow terminal: setting, accuracy,
    right of all, the difference with the first, fixed/broken by reflections."""
    return [row.setting, _percent(row.accuracy), f"{row.correct}/{row.items}",
            _percent(row.against_first, signed=True) if row.against_first else "—",
            f"{row.fixed}/{row.broken}"]


def markdown(title: str, table: list[Row]) -> str:
    escape = str.maketrans({"|": "\\|"})
    lines = [f"# {title}", "", "| " + " | ".join(HEADERS) + " |",
             "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.translate(escape) for c in cells(r)) + " |" for r in table]
    lines += ["", "Accuracy: Wilson 95% interval. \"vs first\": accuracy minus the first "
              "setting's on the items both answered, with the paired 95% interval. Fixed: the "
              "claim before the first reflection was wrong and the final answer right; broken: "
              "right, then wrong; unclear: no answer readable in the claim before.", ""]
    return "\n".join(lines)


def as_json(table: list[Row]) -> list[dict[str, Any]]:
    def interval(i: Interval | None) -> dict[str, float] | None:
        return None if i is None else {"value": i.value, "low": i.low, "high": i.high}

    return [{**{k: v for k, v in row.__dict__.items()
                if k not in ("accuracy", "against_first")},
             "accuracy": interval(row.accuracy), "against_first": interval(row.against_first)}
            for row in table]
