"""Checks on a knob declaration, run by ``Knob.__post_init__`` so that every knob is checked.

Each check raises :class:`KnobError` naming the field, the value and what is expected, and returns
the normalised form of the fields it owns (lists become tuples, the bounds of a float range become
floats), which the knob then stores.
"""

from __future__ import annotations

from decimal import Decimal
import math
import re
from typing import Any
from typing import TYPE_CHECKING

from optuna_bigmodel.knobs._errors import KnobError
from optuna_bigmodel.knobs._messages import did_you_mean
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import is_int
from optuna_bigmodel.knobs._messages import is_number
from optuna_bigmodel.knobs._messages import one_of
from optuna_bigmodel.knobs._messages import show


if TYPE_CHECKING:
    from optuna_bigmodel.knobs._knob import Knob


AXES = ("parameter", "structure", "strategy")
MODES = ("sample", "fixed", "learn")
LEARN_FIELDS = ("axis", "mode", "low", "high", "init")
DEFAULT_GRID_POINTS = 5

_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
# What Optuna can store as a categorical choice.
_SCALARS = (type(None), bool, int, float, str)
ONLY_VALUE = "a fixed knob takes only 'value'; remove this field"
RANGE_ONLY = "only applies to a low/high range; every choice is in the grid"
ONLY_LEARN_FIELDS = "a learned knob takes only 'low', 'high' and 'init'; remove this field"
# Learned on a log scale (hypergradients move them by ratios), so their range must be positive.
_LOG_SCALE_LEARNED = ("lr", "weight_decay")


def check_identity(knob: Knob) -> None:
    """Check the name, the axis and the mode."""
    if not isinstance(knob.name, str) or not _NAME.fullmatch(knob.name):
        expected = "a name made of letters, digits, _ . - /"
        raise KnobError(knob.name, "name", got(knob.name, expected))
    if knob.axis not in AXES:
        raise KnobError(knob.name, "axis", got(knob.axis, _one_of_near(AXES, knob.axis)))
    if knob.mode not in MODES:
        raise KnobError(knob.name, "mode", got(knob.mode, _one_of_near(MODES, knob.mode)))
    if knob.mode == "learn":
        _check_learnable(knob)
    elif knob.init is not None:
        raise KnobError(knob.name, "init", "only applies to a knob in learn mode; remove this field")


def _check_learnable(knob: Knob) -> None:
    if knob.axis == "structure":
        detail = (
            "got 'learn'; a learned structure is declared once for the whole model, in the "
            "study's 'structure:' section (mode: learn, budget: ...), not per knob"
        )
        raise KnobError(knob.name, "mode", detail)
    if knob.axis == "parameter":
        detail = (
            "got 'learn'; parameter-axis knobs (descent, ...) change the run discretely and can "
            "only be sampled or fixed"
        )
        raise KnobError(knob.name, "mode", detail)
    # Imported here: the strategy package imports knobs for its errors.
    from optuna_bigmodel.strategy._checks import check_learnable_strategy_knob

    check_learnable_strategy_knob(knob.name)


def check_learned(knob: Knob) -> dict[str, Any]:
    """A learned knob: a range ``low < high`` (positive for rates and decays) and a start in it."""
    for field in ("choices", "step", "grid", "value"):
        if getattr(knob, field) is not None:
            raise KnobError(knob.name, field, ONLY_LEARN_FIELDS)
    if knob.log or knob.grid_points != DEFAULT_GRID_POINTS:
        raise KnobError(knob.name, "log" if knob.log else "grid_points", ONLY_LEARN_FIELDS)
    _check_bounds(knob, "missing; a learned knob needs 'low' and 'high'")
    log_scale = knob.name.partition("/")[0] in _LOG_SCALE_LEARNED
    if knob.low < 0 or (log_scale and knob.low == 0):
        expected = "a number > 0 (learned on a log scale)" if log_scale else "a number >= 0"
        raise KnobError(knob.name, "low", got(knob.low, expected))
    low, high = float(knob.low), float(knob.high)
    init = knob.init
    if init is None:
        init = math.sqrt(low * high) if log_scale else (low + high) / 2
    if not _is_finite_number(init) or not low <= init <= high:
        raise KnobError(knob.name, "init", got(init, f"a number in [{show(low)}, {show(high)}]"))
    return {"low": low, "high": high, "init": float(init)}


def check_fixed(knob: Knob) -> dict[str, Any]:
    """A fixed knob has a value (a scalar or a list of scalars) and nothing else."""
    for field in ("choices", "low", "high", "step", "grid"):
        if getattr(knob, field) is not None:
            raise KnobError(knob.name, field, ONLY_VALUE)
    if knob.log or knob.grid_points != DEFAULT_GRID_POINTS:
        raise KnobError(knob.name, "log" if knob.log else "grid_points", ONLY_VALUE)
    if knob.value is None:
        raise KnobError(knob.name, "value", "missing; a fixed knob needs a 'value'")
    # A list is stored as a tuple so that the knob stays hashable; suggest() hands back a list.
    value = tuple(knob.value) if isinstance(knob.value, (list, tuple)) else knob.value
    items = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(item, _SCALARS) for item in items):
        expected = "a string, number, boolean or a list of them"
        raise KnobError(knob.name, "value", got(knob.value, expected))
    return {"value": value}


def check_choices(knob: Knob) -> dict[str, Any]:
    """Choices: a non-empty list of distinct scalars, with no range fields beside them."""
    if knob.low is not None or knob.high is not None:
        field = "low" if knob.low is not None else "high"
        raise KnobError(knob.name, field, "give either 'choices' or 'low' and 'high', not both")
    if knob.log or knob.step is not None or knob.grid_points != DEFAULT_GRID_POINTS:
        field = "log" if knob.log else "step" if knob.step is not None else "grid_points"
        raise KnobError(knob.name, field, RANGE_ONLY)
    return {"choices": _distinct_scalars(knob, "choices", knob.choices)}


def check_range(knob: Knob) -> dict[str, Any]:
    """A low/high range: numbers, low < high, log and step consistent; int if all bounds are."""
    if knob.low is None and knob.high is None:
        detail = "a knob in sample mode needs either 'choices' or 'low' and 'high'"
        raise KnobError(knob.name, (), detail)
    _check_bounds(knob, "missing; a range needs both 'low' and 'high'")
    _check_log(knob)
    _check_step(knob)
    if not is_int(knob.grid_points) or knob.grid_points < 2:
        raise KnobError(knob.name, "grid_points", got(knob.grid_points, "an integer >= 2"))
    return _normalised_range(knob)


def _check_bounds(knob: Knob, if_missing: str) -> None:
    """``low`` and ``high`` are finite numbers with ``low < high``."""
    for field in ("low", "high"):
        value = getattr(knob, field)
        if value is None:
            raise KnobError(knob.name, field, if_missing)
        if not _is_finite_number(value):
            raise KnobError(knob.name, field, got(value, "a finite number"))
    if not knob.low < knob.high:
        detail = f"got high={show(knob.high)} with low={show(knob.low)}; expected high > low"
        raise KnobError(knob.name, "high", detail)


def _check_log(knob: Knob) -> None:
    if not isinstance(knob.log, bool):
        raise KnobError(knob.name, "log", got(knob.log, "true or false"))
    if knob.log and knob.low <= 0:
        expected = "low > 0 because log is true"
        raise KnobError(knob.name, "low", got(knob.low, expected, with_kind=False))


def _check_step(knob: Knob) -> None:
    if knob.step is None:
        return
    if knob.log:
        raise KnobError(knob.name, "step", "cannot be used with log: true; drop one of them")
    if not _is_finite_number(knob.step) or knob.step <= 0:
        raise KnobError(knob.name, "step", got(knob.step, "a number > 0"))
    if not _divides(knob.step, knob.low, knob.high):
        span = f"[{show(knob.low)}, {show(knob.high)}]"
        detail = f"got step={show(knob.step)} for {span}; expected a step that divides high - low"
        raise KnobError(knob.name, "step", detail)


def _divides(step: float, low: float, high: float) -> bool:
    if all(is_int(v) for v in (step, low, high)):
        return (high - low) % step == 0
    # Decimal on the written digits, as Optuna does, so that 0.1 divides 1.0.
    return (Decimal(str(high)) - Decimal(str(low))) % Decimal(str(step)) == 0


def _normalised_range(knob: Knob) -> dict[str, Any]:
    bounds = [knob.low, knob.high] + ([] if knob.step is None else [knob.step])
    if all(is_int(v) for v in bounds):
        return {}
    step = None if knob.step is None else float(knob.step)
    return {"low": float(knob.low), "high": float(knob.high), "step": step}


def check_grid(knob: Knob) -> dict[str, Any]:
    """An explicit grid: distinct values, each inside the knob's (already normalised) space."""
    if knob.grid is None:
        return {}
    if knob.grid_points != DEFAULT_GRID_POINTS:
        raise KnobError(knob.name, "grid_points", "give either 'grid' or 'grid_points', not both")
    grid = _distinct_scalars(knob, "grid", knob.grid)
    for index, value in enumerate(grid):
        if not knob.contains(value):
            expected = f"a value of the knob's space ({describe_space(knob)})"
            raise KnobError(knob.name, ("grid", index), got(value, expected))
    if knob.choices is None and not knob.is_int:
        grid = tuple(float(value) for value in grid)
    return {"grid": grid}


def describe_space(knob: Knob) -> str:
    """Say in words which values a knob in sample mode takes."""
    if knob.choices is not None:
        return one_of(knob.choices)
    kind = "an integer" if knob.is_int else "a number"
    extra = ", log scale" if knob.log else ""
    extra += f", in steps of {knob.step} from {knob.low}" if knob.step is not None else ""
    return f"{kind} in [{knob.low}, {knob.high}]{extra}"


def _distinct_scalars(knob: Knob, field: str, values: Any) -> tuple[Any, ...]:
    if not isinstance(values, (list, tuple)) or len(values) == 0:
        raise KnobError(knob.name, field, got(values, "a non-empty list of values"))
    for index, value in enumerate(values):
        if not isinstance(value, _SCALARS):
            expected = "a string, number, boolean or null"
            raise KnobError(knob.name, (field, index), got(value, expected))
        # == rather than identity: Optuna finds a choice by ==, so 1 and True would be confused.
        if value in values[:index]:
            detail = f"got {show(value)} twice; expected distinct values"
            raise KnobError(knob.name, (field, index), detail)
    return tuple(values)


def _is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _one_of_near(options: tuple[str, ...], value: Any) -> str:
    return one_of(options) + did_you_mean(value, options)
