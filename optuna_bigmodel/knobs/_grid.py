"""How a low/high range becomes a finite list of grid values for exhaustive search."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar


_T = TypeVar("_T")

# An integer range with at most this many values is enumerated whole; beyond it the grid samples
# `grid_points` of them, since a grid of hundreds of values per knob multiplies out of reach.
MAX_FULL_INT_GRID = 100


def int_grid(low: int, high: int, step: int, log: bool, points: int) -> list[int]:
    """Every integer of the range by ``step`` if there are few, else ``points`` spread over it."""
    count = (high - low) // step + 1
    if count <= MAX_FULL_INT_GRID:
        return list(range(low, high + 1, step))
    if log:
        return _distinct(round(value) for value in _log_spaced(low, high, points))
    return [low + index * step for index in _spread_indices(count, points)]


def float_grid(low: float, high: float, step: float | None, log: bool, points: int) -> list[float]:
    """``points`` values over the range: log-spaced if ``log``, on the step lattice if any."""
    if step is not None:
        count = round((high - low) / step) + 1
        # Decimal arithmetic keeps lattice points as written (0.3, not 0.30000000000000004).
        d_low, d_step = Decimal(str(low)), Decimal(str(step))
        return [float(d_low + index * d_step) for index in _spread_indices(count, points)]
    if log:
        return _log_spaced(low, high, points)
    values = [low + (high - low) * index / (points - 1) for index in range(points)]
    return _with_exact_ends(values, low, high)


def _spread_indices(count: int, points: int) -> list[int]:
    # Evenly spaced indices into a lattice of `count` values, both ends included.
    if points >= count:
        return list(range(count))
    return _distinct(round(index * (count - 1) / (points - 1)) for index in range(points))


def _log_spaced(low: float, high: float, points: int) -> list[float]:
    ratio = high / low
    values = [low * ratio ** (index / (points - 1)) for index in range(points)]
    return _with_exact_ends(values, low, high)


def _with_exact_ends(values: list[float], low: float, high: float) -> list[float]:
    # Rounding can push an end a hair outside the range, which the distribution would reject.
    middle = [min(max(value, low), high) for value in values[1:-1]]
    return [low, *middle, high]


def _distinct(values: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(values))
