"""The knob: one tunable quantity, declared once, with an axis, a space and a mode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import Any
from typing import TYPE_CHECKING

from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_bigmodel.knobs import _grid
from optuna_bigmodel.knobs import _validate
from optuna_bigmodel.knobs._errors import KnobError
from optuna_bigmodel.knobs import _messages


if TYPE_CHECKING:
    import optuna


# The fields a declaration may give; the name is the key the declaration sits under.
_DECLARED_FIELDS = (
    "axis", "mode", "choices", "low", "high", "log", "step", "value", "grid", "grid_points",
    "init",
)  # fmt: skip


@dataclass(frozen=True)
class Knob:
    """One tunable quantity of a study.

    A knob in ``sample`` mode is picked by the study's sampler for each trial, from either a list
    of ``choices`` or a ``low``/``high`` range (an integer range when ``low``, ``high`` and
    ``step`` are all integers, else a float range). A knob in ``fixed`` mode always takes
    ``value``. A strategy knob in ``learn`` mode (``lr``, ``weight_decay``, ``warmup``, ``decay``)
    starts at ``init`` and is learned inside each training run by hypergradients, clipped to
    ``[low, high]``; the sampler never sees it. Every field is checked on construction; a bad one
    raises :class:`KnobError`.

    Example:

        .. code::

            import optuna
            from optuna_bigmodel.knobs import Knob

            lr = Knob("lr", axis="strategy", low=1e-4, high=0.3, log=True)
            study = optuna.create_study()
            trial = study.ask()
            assert lr.contains(lr.suggest(trial))

    Args:
        name: The name the trial records the value under.
        axis: ``"parameter"``, ``"structure"`` or ``"strategy"``.
        mode: ``"sample"`` (default), ``"fixed"`` or ``"learn"``.
        choices: The values of a categorical knob.
        low: Lower end of a range, inclusive.
        high: Upper end of a range, inclusive.
        log: Sample the range on a log scale (``low`` must be > 0).
        step: Spacing of a discretised range; not with ``log``.
        value: The value of a fixed knob.
        grid: Explicit values for exhaustive (grid) search, each inside the space.
        grid_points: How many values a range contributes to a grid when ``grid`` is not given.
        init: Where a learned knob starts; default the geometric mean of ``low`` and ``high``
            for ``lr`` and ``weight_decay``, else their midpoint.

    Note:
        A fixed knob cannot have the value ``None``, which stands for "not given".
    """

    name: str
    axis: str
    mode: str = "sample"
    choices: tuple[Any, ...] | None = None
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    value: Any = None
    grid: tuple[Any, ...] | None = None
    grid_points: int = _validate.DEFAULT_GRID_POINTS
    init: float | None = None

    def __post_init__(self) -> None:
        _validate.check_identity(self)
        if self.mode == "learn":
            self._store(_validate.check_learned(self))
            return
        if self.mode == "fixed":
            self._store(_validate.check_fixed(self))
            return
        space = self.choices is not None
        self._store(_validate.check_choices(self) if space else _validate.check_range(self))
        # The grid is checked against the space, so only once the space is normalised.
        self._store(_validate.check_grid(self))

    def _store(self, fields: Mapping[str, Any]) -> None:
        for field, value in fields.items():
            object.__setattr__(self, field, value)

    @classmethod
    def from_mapping(cls, name: str, declaration: Any) -> Knob:
        """Build a knob from a declaration such as ``{axis: strategy, low: 1, high: 4}``.

        Raises:
            KnobError: For a declaration that is not a mapping, an unknown or missing field, a
                field that does not fit the mode, or any check of the constructor.
        """
        if not isinstance(declaration, Mapping):
            raise KnobError(name, (), _messages.got(declaration, "a mapping with at least 'axis'"))
        for key in declaration:
            if key not in _DECLARED_FIELDS:
                raise KnobError(name, str(key), _messages.unknown("field", key, _DECLARED_FIELDS))
        if "axis" not in declaration:
            expected = _messages.one_of(_validate.AXES)
            raise KnobError(name, (), f"missing required field 'axis'; expected {expected}")
        _check_declared_for_mode(name, declaration)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in declaration.items()}
        return cls(name=name, **fields)

    def to_dict(self) -> dict[str, Any]:
        """The declaration as a study file would write it; ``from_mapping`` rebuilds this knob."""
        out: dict[str, Any] = {"axis": self.axis, "mode": self.mode}
        if self.mode == "fixed":
            out["value"] = self._value_as_written()
            return out
        if self.mode == "learn":
            out.update(low=self.low, high=self.high, init=self.init)
            return out
        if self.choices is not None:
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high)
            out.update({"log": True} if self.log else {})
            out.update({"step": self.step} if self.step is not None else {})
        if self.grid is not None:
            out["grid"] = list(self.grid)
        elif self.grid_points != _validate.DEFAULT_GRID_POINTS:
            out["grid_points"] = self.grid_points
        return out

    @property
    def is_sampled(self) -> bool:
        """Whether the study's sampler picks this knob (as opposed to a fixed value)."""
        return self.mode == "sample"

    @property
    def is_learned(self) -> bool:
        """Whether this knob is learned by gradients inside each training run."""
        return self.mode == "learn"

    @property
    def is_int(self) -> bool:
        """Whether this is an integer range."""
        return self.choices is None and _messages.is_int(self.low) and _messages.is_int(self.high)

    def suggest(self, trial: optuna.Trial) -> Any:
        """Ask ``trial`` for this knob's value; a fixed knob returns its value and a learned one
        its starting value, and neither asks anything."""
        if self.mode == "fixed":
            return self._value_as_written()
        if self.mode == "learn":
            return self.init
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.is_int:
            step = self.step or 1
            return trial.suggest_int(self.name, self.low, self.high, step=step, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def distribution(self) -> BaseDistribution:
        """The Optuna distribution that :meth:`suggest` records for this knob.

        Raises:
            KnobError: For a fixed or learned knob, which the sampler never sees.
        """
        if self.mode != "sample":
            detail = f"a {self.mode} knob has no distribution; only sampled knobs do"
            raise KnobError(self.name, "mode", detail)
        if self.choices is not None:
            return CategoricalDistribution(self.choices)
        if self.is_int:
            return IntDistribution(self.low, self.high, log=self.log, step=self.step or 1)
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a value this knob can take (its space, not only its grid)."""
        if self.mode == "fixed":
            return _same(value, self._value_as_written())
        if self.mode == "learn":
            return _messages.is_number(value) and self.low <= value <= self.high
        if self.choices is not None:
            return any(_same(value, choice) for choice in self.choices)
        if not _messages.is_number(value):
            return False
        if self.is_int and not _messages.is_int(value):
            return False
        if not self.low <= value <= self.high:
            return False
        return self.step is None or _on_lattice(value - self.low, self.step)

    def grid_values(self) -> list[Any]:
        """The values this knob contributes to an exhaustive search.

        The explicit ``grid`` if given; else every choice; else for an integer range every value
        by ``step`` when there are at most 100, otherwise ``grid_points`` values spread evenly
        (log-spaced with ``log``); for a float range ``grid_points`` values, log-spaced with
        ``log``, on the step lattice with ``step``, else linear. A fixed knob gives ``[value]``,
        a learned one ``[init]``.
        """
        if self.mode == "fixed":
            return [self._value_as_written()]
        if self.mode == "learn":
            return [self.init]
        if self.grid is not None:
            return list(self.grid)
        if self.choices is not None:
            return list(self.choices)
        if self.is_int:
            return _grid.int_grid(self.low, self.high, self.step or 1, self.log, self.grid_points)
        return _grid.float_grid(self.low, self.high, self.step, self.log, self.grid_points)

    def _value_as_written(self) -> Any:
        # A list value is stored as a tuple to keep the knob hashable; users get their list back.
        return list(self.value) if isinstance(self.value, tuple) else self.value


def _check_declared_for_mode(name: str, declaration: Mapping[str, Any]) -> None:
    # The constructor cannot tell "log: false" or "grid_points: 5" from defaults, so the fields
    # that do not belong to the mode are rejected here, where we see what was written.
    mode = declaration.get("mode", "sample")
    if mode == "fixed":
        extra = [key for key in declaration if key not in ("axis", "mode", "value")]
        if extra:
            raise KnobError(name, extra[0], _validate.ONLY_VALUE)
    elif mode == "learn":
        extra = [key for key in declaration if key not in _validate.LEARN_FIELDS]
        if extra:
            raise KnobError(name, extra[0], _validate.ONLY_LEARN_FIELDS)
    elif "init" in declaration:
        raise KnobError(name, "init", "only applies to a knob in learn mode; remove this field")
    elif "choices" in declaration and "grid_points" in declaration:
        raise KnobError(name, "grid_points", _validate.RANGE_ONLY)


def _same(a: Any, b: Any) -> bool:
    # Type-strict: a stored 1 is not the choice True, nor 1.0 the choice 1.
    return type(a) is type(b) and a == b


def _on_lattice(offset: float, step: float) -> bool:
    k = offset / step
    # Same tolerance as Optuna's FloatDistribution, so both agree on what lies on the lattice.
    return math.isclose(k, round(k), abs_tol=1e-8)
