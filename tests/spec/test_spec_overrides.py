"""Overrides from the command line or Python replace fields, checked as strictly as a file."""

from __future__ import annotations

from typing import Any

import pytest

from optuna_bigmodel.spec import apply_overrides
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.spec import PrunerSpec
from optuna_bigmodel.spec import SamplerSpec
from optuna_bigmodel.spec import SpecError
from optuna_bigmodel.spec import StudySpec


def _spec(**fields: Any) -> StudySpec:
    data: dict[str, Any] = {
        "name": "demo",
        "task": {"name": "t"},
        "knobs": {
            "opt": {"axis": "strategy", "choices": ["adam", "sgd"]},
            "width": {"axis": "structure", "low": 8, "high": 32, "step": 8},
        },
        "sampler": {"name": "tpe", "kwargs": {"n_startup_trials": 2}},
        "pruner": {"name": "median", "kwargs": {"n_warmup_steps": 5}},
        "budget": {"n_trials": 10},
    }
    data.update(fields)
    return parse_spec(data, source="demo.yaml")


def test_each_override_replaces_its_field() -> None:
    spec = _spec()
    new = apply_overrides(
        spec, storage="sqlite:///x.db", n_trials=3, timeout=30, sampler="random", pruner="hyperband",
        seed=9, run_dir="elsewhere", max_steps=110,
    )
    assert new.storage == "sqlite:///x.db"
    assert (new.budget.n_trials, new.budget.timeout) == (3, 30.0)
    assert new.sampler == SamplerSpec("random", {}) and new.pruner == PrunerSpec("hyperband", {})
    assert (new.seed, new.run_dir, new.trainer.max_steps) == (9, "elsewhere", 110)
    # Everything else is untouched, including the original spec.
    assert new.knobs == spec.knobs and new.task == spec.task and new.trainer.val_check_interval == 50
    assert spec.budget.n_trials == 10 and spec.sampler.name == "tpe"
    assert new.source == "demo.yaml"


def test_none_leaves_fields_alone() -> None:
    spec = _spec()
    assert apply_overrides(spec, storage=None, n_trials=None, sampler=None, max_steps=None) == spec


def test_naming_the_current_sampler_or_pruner_keeps_kwargs() -> None:
    spec = _spec()
    new = apply_overrides(spec, sampler="TPESampler", pruner="MEDIAN")
    assert new.sampler == spec.sampler and new.pruner == spec.pruner


def test_switching_to_grid_runs_the_grid_when_no_count() -> None:
    spec = _spec(budget={"timeout": 60})
    new = apply_overrides(spec, sampler="grid")
    assert new.sampler.name == "grid"
    assert new.budget.n_trials == 2 * 4 and new.budget.timeout == 60.0


def test_result_round_trips() -> None:
    new = apply_overrides(_spec(), sampler="grid", n_trials=5, pruner="none")
    assert parse_spec(new.to_dict()) == new


@pytest.mark.parametrize(
    "overrides, key_path, fragments",
    [
        ({"n_trials": 0}, "n_trials", ["got 0", "an integer >= 1"]),
        ({"n_trials": "ten"}, "n_trials", ["'ten'", "an integer"]),
        ({"n_trials": True}, "n_trials", ["True", "a boolean"]),
        ({"timeout": -5}, "timeout", ["got -5", "a number > 0"]),
        ({"seed": -1}, "seed", ["got -1", "from 0"]),
        ({"seed": 1.5}, "seed", ["1.5", "an integer"]),
        ({"max_steps": 0}, "max_steps", ["got 0", ">= 1"]),
        ({"max_steps": -1}, "max_steps", ["-1", "max_epochs"]),
        ({"max_steps": 20}, "trainer.val_check_interval", ["got 50", "max_steps (20)"]),
        ({"sampler": "tpee"}, "sampler", ["'tpee'", "did you mean 'tpe'"]),
        ({"sampler": {"name": "tpe"}}, "sampler", ["{'name': 'tpe'}", "a sampler name"]),
        ({"pruner": "medain"}, "pruner", ["'medain'", "did you mean 'median'"]),
        ({"pruner": "percentile"}, "pruner.kwargs", ["'percentile'", "needs"]),
        ({"storage": "nonsense"}, "storage", ["'nonsense'", "database URL"]),
        ({"run_dir": ""}, "run_dir", ["''", "a folder path"]),
        ({"n_trial": 3}, "n_trial", ["'n_trial'", "did you mean 'n_trials'", "max_steps"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_bad_override_names_key_value_and_expectation(
    overrides: dict[str, Any], key_path: str, fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        apply_overrides(_spec(), **overrides)
    message = str(info.value)
    assert message.startswith(f"<overrides>: {key_path}: ") and info.value.line is None
    for fragment in fragments:
        assert fragment in message, message


def test_switching_to_brute_force_checks_the_knobs() -> None:
    spec = _spec(knobs={"lr": {"axis": "strategy", "low": 0.1, "high": 1.0}})
    with pytest.raises(SpecError, match=r"^<overrides>: knobs\.lr\.step: .*discrete"):
        apply_overrides(spec, sampler="brute_force")
