"""Settings of the built-in tasks: declared once, merged from study file and knobs, checked.

A built-in task declares each setting it reads (name, default, allowed values). One trial's values
come, in rising priority, from the declared default, the study file (``task.model`` or
``task.data``) and the trial's knobs. Every value is checked where it enters, and an error names
where it came from, so the user knows which line of which file to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import difflib
import math
import numbers
from typing import Any

from optuna_bigmodel._errors import BadInputError


@dataclass(frozen=True)
class Setting:
    """One setting a built-in task reads.

    Args:
        name: The name in the study file and of the knob that overrides it.
        default: The value when nobody sets it; ``None`` only where ``nullable``.
        kind: ``int``, ``float`` or ``str``; an ``int`` is accepted where a float is expected.
        allowed: Words for error messages, e.g. ``"an integer >= 1"``.
        check: Whether a value of the right kind is allowed.
        nullable: Whether ``None`` is allowed (it then means "derive from other settings").
    """

    name: str
    default: Any
    kind: type
    allowed: str
    check: Callable[[Any], bool] = lambda value: True
    nullable: bool = False


def int_setting(name: str, default: int | None, low: int, high: int | None = None) -> Setting:
    """An integer setting in ``[low, high]`` (``high=None``: no upper bound)."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if default is None:
        allowed += ", or null for the default"
    return Setting(
        name,
        default,
        int,
        allowed,
        lambda v: v >= low and (high is None or v <= high),
        nullable=default is None,
    )


def float_setting(
    name: str, default: float, low: float, high: float | None = None, *, low_open: bool = False
) -> Setting:
    """A float setting in ``[low, high)``, or ``(low, high)`` with ``low_open``; no upper bound
    when ``high`` is None."""
    left = f"> {low}" if low_open else f">= {low}"
    allowed = f"a number {left}" + ("" if high is None else f" and < {high}")
    return Setting(
        name,
        default,
        float,
        allowed,
        lambda v: (v > low if low_open else v >= low) and (high is None or v < high),
    )


def choice_setting(name: str, default: Any, choices: Sequence[Any]) -> Setting:
    """A setting that takes one of a few values."""
    kind = type(default)
    allowed = "one of " + ", ".join(repr(c) for c in choices)
    return Setting(name, default, kind, allowed, lambda v: v in choices)


@dataclass(frozen=True)
class ResolvedSettings:
    """The settings of one trial, and where each value came from (for error messages)."""

    task: str
    values: Mapping[str, Any]
    origins: Mapping[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def error(self, name: str, allowed: str) -> BadInputError:
        """An error saying the value of ``name`` is not allowed, for checks across settings."""
        return BadInputError(
            f"task {self.task!r}: {self.origins[name]} {name!r} = {self.values[name]!r} "
            f"is not allowed; expected {allowed}"
        )


def knob_names(model: Sequence[Setting], data: Sequence[Setting]) -> frozenset[str]:
    """The knob names a task accepts: every setting but the data seed.

    The data seed is no knob: all trials of a study must see the same data.
    """
    return frozenset(s.name for s in (*model, *data) if s.name != "seed")


def resolve_settings(
    task: str,
    params: Mapping[str, Any] | None,
    model_settings: Mapping[str, Any] | None,
    data_settings: Mapping[str, Any] | None,
    model: Sequence[Setting],
    data: Sequence[Setting],
) -> ResolvedSettings:
    """Merges defaults, study-file settings and knobs (in rising priority) and checks each value.

    Raises:
        BadInputError: A name is not a setting of the task, or a value is not allowed.
    """
    sources = [
        ("task.model setting", _checked_mapping(task, "task.model", model_settings), model),
        ("task.data setting", _checked_mapping(task, "task.data", data_settings), data),
        ("knob", _checked_mapping(task, "knobs", params), None),
    ]
    specs = {s.name: s for s in (*model, *data)}
    values = {name: spec.default for name, spec in specs.items()}
    origins = {name: "default" for name in specs}
    for origin, given, group in sources:
        accepted = sorted(knob_names(model, data) if group is None else (s.name for s in group))
        for name, value in given.items():
            _check_known(task, origin, name, accepted)
            values[name] = _checked_value(task, origin, specs[name], value)
            origins[name] = origin
    return ResolvedSettings(task, values, origins)


def checked_seed(task: str, seed: Any) -> int:
    """The trial seed as an int, checked: it seeds torch generators, which take 0..2**63-1."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
        raise BadInputError(
            f"task {task!r}: seed = {seed!r} is not allowed; expected an integer in [0, 2**63)"
        )
    return int(seed)


def _checked_mapping(task: str, where: str, given: Mapping[str, Any] | None) -> Mapping[str, Any]:
    # An empty section in YAML reads as None; it means "nothing set".
    if given is None:
        return {}
    if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
        raise BadInputError(
            f"task {task!r}: {where} must be a mapping from names to values, got {given!r}"
        )
    return given


def _check_known(task: str, origin: str, name: str, accepted: list[str]) -> None:
    if name in accepted:
        return
    near = difflib.get_close_matches(name, accepted, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise BadInputError(
        f"task {task!r}: unknown {origin} {name!r}{hint}; accepted: {', '.join(accepted)}"
    )


def _checked_value(task: str, origin: str, spec: Setting, value: Any) -> Any:
    if value is None and spec.nullable:
        return None
    converted = _converted(spec.kind, value)
    if converted is None or not spec.check(converted):
        raise BadInputError(
            f"task {task!r}: {origin} {spec.name!r} = {value!r} is not allowed; "
            f"expected {spec.allowed}"
        )
    return converted


def _converted(kind: type, value: Any) -> Any:
    """``value`` as ``kind``, or None if it is not of that kind (a bool is never a number)."""
    if isinstance(value, bool):
        return None
    if kind is int and isinstance(value, numbers.Integral):
        return int(value)
    if kind is float and isinstance(value, numbers.Real) and math.isfinite(value):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    return None
