"""The arithmetic of an evaluation's table: a Wilson score interval for one accuracy, and the
interval of the difference between two settings answered on the same items.

Wilson (1927) stays inside 0..1 and keeps its coverage for small samples and accuracies near
0 or 1, where the textbook (Wald) interval does not. Two settings on the same items are paired:
only the items where they disagree carry the difference, and its standard error is the paired
one (Agresti, "Categorical Data Analysis", 3rd ed., section 11.1), with Agresti and Min's
adjustment (Statistics in Medicine 24:729-740, 2005): half an item added to each of the four
cells. Without it, settings that agree on every item got the interval [0, 0] however few the
items; with it, the interval keeps its coverage for small samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the two-sided 95% quantile of the normal distribution


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


def wilson(correct: int, items: int, z: float = Z95) -> Interval | None:
    """The accuracy `correct / items` with its Wilson score interval; None with no items."""
    if items <= 0:
        return None
    p = correct / items
    denominator = 1 + z * z / items
    centre = (p + z * z / (2 * items)) / denominator
    half = z * math.sqrt(p * (1 - p) / items + z * z / (4 * items * items)) / denominator
    # at 0 or all correct, the bound is exactly 0 or 1 (rounding would leave 0.9999999999999999)
    return Interval(p, 0.0 if correct == 0 else centre - half,
                    1.0 if correct == items else centre + half)


def paired_difference(pairs: list[tuple[bool, bool]], z: float = Z95) -> Interval | None:
    """Accuracy of B minus accuracy of A over items both answered, `pairs` of (A right,
    B right), with its adjusted paired interval (within -1..1); None with no items."""
    n = len(pairs)
    if n == 0:
        return None
    only_a = sum(a and not b for a, b in pairs)  # right under A, wrong under B
    only_b = sum(b and not a for a, b in pairs)
    a, b, m = only_a + 0.5, only_b + 0.5, n + 2  # half an item more in each cell
    centre = (b - a) / m
    spread = math.sqrt(max(0.0, (a + b) - (b - a) ** 2 / m)) / m
    return Interval((only_b - only_a) / n, max(-1.0, centre - z * spread),
                    min(1.0, centre + z * spread))
