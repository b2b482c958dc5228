"""Checks of single spec fields, shared by the file parser and by ``apply_overrides``.

Each check takes the :class:`Reader` (which knows the source and its lines), the key path of the
value and the value, and returns the value in its stored form.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import replace
import re
from typing import Any

from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs import KnobError
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import is_int
from optuna_bigmodel.spec._errors import KeyPath
from optuna_bigmodel.spec._model import BudgetSpec
from optuna_bigmodel.spec._model import PrunerSpec
from optuna_bigmodel.spec._model import SamplerSpec
from optuna_bigmodel.spec._reader import Reader


_STUDY_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
# Lightning's seed_everything takes seeds below 2**32.
_MAX_SEED = 2**32 - 1
_STORAGE = "null or a database URL such as sqlite:///study.db or postgresql://user@host/db"

# The study package imports the spec package, so the sampler and pruner checks are imported
# inside the functions below rather than here.
_Check = Callable[[str, Mapping[str, Any]], tuple[str, dict[str, Any]]]


def study_name(reader: Reader, value: Any, path: KeyPath) -> str:
    """A study name: letters, digits, ``_``, ``.`` and ``-`` (it also names the run folder)."""
    if not isinstance(value, str) or not _STUDY_NAME.fullmatch(value):
        raise reader.wrong(path, value, "a name made of letters, digits, '_', '.' and '-'")
    return value


def seed(reader: Reader, value: Any, path: KeyPath) -> int:
    """The study's base seed."""
    return reader.integer(value, path, minimum=0, maximum=_MAX_SEED)


def n_trials(reader: Reader, value: Any, path: KeyPath) -> int | None:
    """The number of trials, or ``None`` for no count."""
    return None if value is None else reader.integer(value, path, minimum=1)


def compute_steps(reader: Reader, value: Any, path: KeyPath) -> int | None:
    """The training steps the study may spend, or ``None`` for no limit."""
    return None if value is None else reader.integer(value, path, minimum=1)


def timeout(reader: Reader, value: Any, path: KeyPath) -> float | None:
    """The time limit in seconds, or ``None`` for none."""
    return None if value is None else reader.positive_number(value, path)


def max_steps(reader: Reader, value: Any, path: KeyPath, max_epochs: int | None) -> int:
    """Training steps per trial: > 0, or -1 (no step limit) when ``max_epochs`` ends the run."""
    if is_int(value) and value == -1:
        if max_epochs is None:
            detail = "got -1 (no step limit) and no trainer.max_epochs; expected an integer > 0"
            raise reader.error(path, detail + ", or -1 together with max_epochs")
        return -1
    return reader.integer(value, path, minimum=1)


def val_check_interval(reader: Reader, value: Any, path: KeyPath, max_steps: int) -> int:
    """Training steps between validations: at most ``max_steps``, or the metric is never logged."""
    interval = reader.integer(value, path, minimum=1)
    if max_steps > 0 and interval > max_steps:
        detail = f"got {interval}, more than trainer.max_steps ({max_steps}), so no validation"
        raise reader.error(path, detail + f" would run; expected an integer in [1, {max_steps}]")
    return interval


def run_dir(reader: Reader, value: Any, path: KeyPath) -> str:
    """The folder that holds the run folders of studies."""
    return reader.string(value, path, "a folder path")


def storage(reader: Reader, value: Any, path: KeyPath) -> str | None:
    """``None`` (a SQLite file in the run folder) or a SQLAlchemy database URL."""
    if value is None:
        return None
    url = reader.string(value, path, _STORAGE)
    # Imported here: only a spec that names a storage pays for importing SQLAlchemy.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        raise reader.wrong(path, value, _STORAGE) from None
    return url


def sampler(reader: Reader, value: Any, path: KeyPath) -> SamplerSpec:
    """A sampler name or ``{name, kwargs}``, checked against the Optuna sampler it names."""
    from optuna_bigmodel.study._samplers import check_sampler

    return SamplerSpec(*_component(reader, value, path, check_sampler))


def pruner(reader: Reader, value: Any, path: KeyPath) -> PrunerSpec:
    """A pruner name or ``{name, kwargs}``, checked against the Optuna pruner it names."""
    from optuna_bigmodel.study._pruners import check_pruner

    return PrunerSpec(*_component(reader, value, path, check_pruner))


def _component(
    reader: Reader, value: Any, path: KeyPath, check: _Check
) -> tuple[str, dict[str, Any]]:
    from optuna_bigmodel.study._samplers import OptionError

    by_name = isinstance(value, str)
    if by_name:
        name, kwargs = value, {}
    elif isinstance(value, Mapping):
        section = reader.section(value, path, ("name", "kwargs"), required=("name",))
        name = reader.string(section["name"], path + ("name",), "a name")
        raw = {} if section.get("kwargs") is None else section["kwargs"]
        raw = reader.mapping(raw, path + ("kwargs",), "a mapping of keyword arguments")
        kwargs = reader.plain(raw, path + ("kwargs",), mappings=True)
    else:
        raise reader.wrong(path, value, "a name, or a mapping with 'name' and 'kwargs'")
    try:
        return check(name, kwargs)
    except OptionError as err:
        # A name written as `sampler: tpee` has no "name" key to point at.
        at = err.key_path[1:] if by_name and err.key_path[:1] == ("name",) else err.key_path
        raise reader.error(path + at, err.detail) from None


def knobs(reader: Reader, value: Any, path: KeyPath) -> tuple[Knob, ...]:
    """The knob declarations, in file order."""
    expected = "a mapping from knob name to its declaration"
    declared = reader.mapping({} if value is None else value, path, expected)
    built = []
    for name, declaration in declared.items():
        try:
            built.append(Knob.from_mapping(name, declaration))
        except KnobError as err:
            raise reader.error(path + (name,) + err.field_path, err.detail) from None
    return tuple(built)


def complete_budget(
    reader: Reader,
    budget: BudgetSpec,
    sampler_spec: SamplerSpec,
    knob_list: tuple[Knob, ...],
    derived_knobs: bool = False,
) -> BudgetSpec:
    """Apply the rules that tie the budget to the sampler.

    An exhaustive sampler (grid, brute_force) runs as many trials as its space has points unless
    ``n_trials`` says otherwise; any other sampler needs ``n_trials``, ``timeout`` or
    ``compute_steps`` to stop.
    With ``derived_knobs`` (gate knobs that join at run time) an exhaustive space is sized by the
    runner, which stops when every point is done.
    """
    if derived_knobs and sampler_spec.name in ("grid", "brute_force"):
        return budget
    size = _exhaustive_size(reader, sampler_spec, knob_list)
    if budget.n_trials is None and size is not None:
        return replace(budget, n_trials=size)
    if budget.n_trials is None and budget.timeout is None and budget.compute_steps is None:
        detail = "got none of n_trials, timeout, compute_steps; expected at least one of them"
        raise reader.error(("budget",), detail + " (only grid and brute_force stop by themselves)")
    return budget


def _exhaustive_size(
    reader: Reader, sampler_spec: SamplerSpec, knob_list: tuple[Knob, ...]
) -> int | None:
    from optuna_bigmodel.study._samplers import brute_force_size
    from optuna_bigmodel.study._samplers import grid_size

    if sampler_spec.name == "grid":
        if not any(knob.is_sampled for knob in knob_list):
            expected = "at least one knob in sample mode to make a grid of"
            raise reader.error(("sampler",), got("grid", expected, with_kind=False))
        return grid_size(knob_list)
    if sampler_spec.name == "brute_force":
        try:
            return brute_force_size(knob_list)
        except KnobError as err:
            raise reader.error(("knobs", err.knob) + err.field_path, err.detail) from None
    return None
