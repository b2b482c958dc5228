"""Strategy values: where each one starts, the range it is clipped to, and how it is stored.

A learning rate and a weight decay live on a log scale (``raw = log(value)``): hypergradients then
move them by ratios, and ``exp`` keeps them positive. Warm-up and decay live on their own scale.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Union

from optuna_bigmodel._errors import BadInputError


@dataclass(frozen=True)
class LearnedValue:
    """A strategy value learned by hypergradients: its start and its declared range.

    Every update is clipped into ``[low, high]``. A value that is not learned is a plain float.

    Example:

        .. code-block:: python

            from optuna_bigmodel.strategy import LearnedValue

            lr = LearnedValue(0.01, low=1e-4, high=1.0)

    Args:
        init: The starting value, on the natural scale (a learning rate, not its log).
        low: The smallest value, inclusive.
        high: The largest value, inclusive.

    Note:
        The value is checked by whoever uses it (the schedule or the controller), which knows its
        name and its scale.
    """

    init: float
    low: float
    high: float


Declared = Union[float, LearnedValue]


@dataclass
class StrategyValue:
    """One strategy value as the controller stores it (``raw`` is ``log(value)`` when ``log``).

    Args:
        name: The knob name in records: ``lr``, ``lr/1``, ``weight_decay``, ``warmup``, ``decay``.
        raw: The current value on the scale that hypergradients move.
        low: The smallest ``raw``.
        high: The largest ``raw``.
        log: Whether ``raw`` is the log of the value.
        learned: Whether hypergradients move it.
    """

    name: str
    raw: float
    low: float
    high: float
    log: bool
    learned: bool

    @property
    def value(self) -> float:
        """The value on the natural scale."""
        return math.exp(self.raw) if self.log else self.raw

    @property
    def meta_scale(self) -> float:
        """The unit the meta-optimiser steps in: 1 on a log scale (moves are ratios), the range's
        width on a linear one, so that one meta learning rate moves a warm-up of hundreds of
        steps as readily as a learning rate (a unit of one step would leave it where it began)."""
        return 1.0 if self.log or not self.learned else self.high - self.low

    def set_clipped(self, raw: float) -> None:
        """Sets ``raw``, clipped into the declared range."""
        self.raw = min(max(raw, self.low), self.high)


def strategy_value(
    name: str, declared: Declared, *, log: bool, low: float, high: float = math.inf
) -> StrategyValue:
    """Checks a declared value against the limits ``[low, high]`` of its kind and stores it.

    Example:

        .. code-block:: python

            v = strategy_value("lr", LearnedValue(0.01, 1e-4, 1.0), log=True, low=0.0)
            assert v.learned and abs(v.value - 0.01) < 1e-12

    Raises:
        BadInputError: A bound or start that is not a finite number, out of ``[low, high]`` (and
            not > 0 on a log scale), ``low >= high``, or ``init`` outside ``[low, high]``.
    """
    if not isinstance(declared, LearnedValue):
        fixed = _checked_number(name, "value", declared, log, low, high)
        raw = math.log(fixed) if log else fixed
        return StrategyValue(name, raw, raw, raw, log, learned=False)
    bounds = [
        _checked_number(name, field, getattr(declared, field), log, low, high)
        for field in ("init", "low", "high")
    ]
    init, lo, hi = (math.log(b) if log else b for b in bounds)
    if not lo < hi:
        raise BadInputError(
            f"strategy value {name!r}: got low={declared.low!r}, high={declared.high!r}; "
            "expected low < high"
        )
    if not lo <= init <= hi:
        raise BadInputError(
            f"strategy value {name!r}: init={declared.init!r} is outside "
            f"[{declared.low!r}, {declared.high!r}]; expected low <= init <= high"
        )
    return StrategyValue(name, init, lo, hi, log, learned=True)


def _checked_number(
    name: str, field: str, value: object, log: bool, low: float, high: float
) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and low <= value <= high and (value > 0 or not log)
    if not ok:
        allowed = f"a finite number in [{low}, {high}]" + (" and > 0 (log scale)" if log else "")
        raise BadInputError(f"strategy value {name!r}, {field}: got {value!r}; expected {allowed}")
    return float(value)
