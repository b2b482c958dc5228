"""Replacing a few fields of a checked spec from a command line or Python, checked as in a file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from optuna_bigmodel.knobs._messages import unknown
from optuna_bigmodel.spec import _fields
from optuna_bigmodel.spec._model import StudySpec
from optuna_bigmodel.spec._reader import Reader


def apply_overrides(spec: StudySpec, **overrides: Any) -> StudySpec:
    """Return ``spec`` with some fields replaced, each checked as it would be in a study file.

    Args:
        spec: A checked spec.
        **overrides: Any of ``storage``, ``n_trials``, ``timeout``, ``sampler`` (a name),
            ``pruner`` (a name), ``seed``, ``run_dir``, ``max_steps``. ``None`` leaves a field
            as it is, so that a command line can pass every option it defines.

    A new sampler or pruner name starts with no kwargs (the old ones belong to the old class);
    naming the one the spec already has keeps its kwargs. The budget rules are applied again, so
    switching to ``grid`` with no ``n_trials`` runs the whole grid.

    Example:

        .. code::

            spec = apply_overrides(spec, n_trials=4, sampler="random")

    Raises:
        SpecError: For an unknown override or a bad value; the source is ``<overrides>``.
    """
    reader = Reader("<overrides>")
    given = {key: value for key, value in overrides.items() if value is not None}
    for key in given:
        if key not in _OVERRIDES:
            raise reader.error((key,), unknown("override", key, _OVERRIDES))
    for key, value in given.items():
        spec = _OVERRIDES[key](reader, spec, value)
    budget = _fields.complete_budget(reader, spec.budget, spec.sampler, spec.knobs)
    return replace(spec, budget=budget)


def _storage(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    return replace(spec, storage=_fields.storage(reader, value, ("storage",)))


def _n_trials(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    n_trials = _fields.n_trials(reader, value, ("n_trials",))
    return replace(spec, budget=replace(spec.budget, n_trials=n_trials))


def _timeout(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    timeout = _fields.timeout(reader, value, ("timeout",))
    return replace(spec, budget=replace(spec.budget, timeout=timeout))


def _sampler(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    # Only a name: kwargs have no command-line form.
    name = reader.string(value, ("sampler",), "a sampler name")
    new = _fields.sampler(reader, name, ("sampler",))
    return spec if new.name == spec.sampler.name else replace(spec, sampler=new)


def _pruner(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    name = reader.string(value, ("pruner",), "a pruner name")
    new = _fields.pruner(reader, name, ("pruner",))
    return spec if new.name == spec.pruner.name else replace(spec, pruner=new)


def _seed(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    return replace(spec, seed=_fields.seed(reader, value, ("seed",)))


def _run_dir(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    return replace(spec, run_dir=_fields.run_dir(reader, value, ("run_dir",)))


def _max_steps(reader: Reader, spec: StudySpec, value: Any) -> StudySpec:
    steps = _fields.max_steps(reader, value, ("max_steps",), spec.trainer.max_epochs)
    path = ("trainer", "val_check_interval")
    _fields.val_check_interval(reader, spec.trainer.val_check_interval, path, steps)
    return replace(spec, trainer=replace(spec.trainer, max_steps=steps))


_OVERRIDES: dict[str, Callable[[Reader, StudySpec, Any], StudySpec]] = {
    "storage": _storage,
    "n_trials": _n_trials,
    "timeout": _timeout,
    "sampler": _sampler,
    "pruner": _pruner,
    "seed": _seed,
    "run_dir": _run_dir,
    "max_steps": _max_steps,
}
