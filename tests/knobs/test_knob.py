"""Knob construction, checks, membership, distributions and suggestions inside real studies."""

from __future__ import annotations

import pickle
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs import KnobError
from optuna_bigmodel.knobs import search_space


optuna.logging.set_verbosity(optuna.logging.WARNING)

KNOBS = [
    Knob("lr", "strategy", low=1e-4, high=0.3, log=True),
    Knob("opt", "strategy", choices=["adam", "sgd", None, True]),
    Knob("d_model", "structure", low=16, high=64, step=16),
    Knob("heads", "structure", low=1, high=512, log=True),
    Knob("p", "strategy", low=0.0, high=0.5, step=0.1),
    Knob("wd", "strategy", low=0.0, high=0.01),
    Knob("depth", "structure", low=-3, high=3),
]


@pytest.mark.parametrize("knob", KNOBS, ids=lambda knob: knob.name)
def test_suggest_stays_in_space_and_records_distribution(knob: Knob) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        value = knob.suggest(trial)
        assert knob.contains(value), value
        study.tell(trial, 0.0)
    for frozen in study.trials:
        assert frozen.distributions == {knob.name: knob.distribution()}
        assert knob.contains(frozen.params[knob.name])


@pytest.mark.parametrize("knob", KNOBS, ids=lambda knob: knob.name)
def test_enqueued_grid_values_validate_against_distribution(knob: Knob) -> None:
    # Warm starts and grid queues enqueue values; they must pass Optuna's own check unchanged.
    study = optuna.create_study()
    for value in knob.grid_values():
        study.enqueue_trial({knob.name: value})
        trial = study.ask()
        assert knob.suggest(trial) == value
        study.tell(trial, 0.0)
        assert knob.distribution()._contains(knob.distribution().to_internal_repr(value))


def test_kinds_follow_bounds() -> None:
    assert Knob("a", "structure", low=1, high=4).distribution() == IntDistribution(1, 4)
    assert Knob("a", "structure", low=16, high=64, step=16).distribution() == IntDistribution(16, 64, step=16)
    assert Knob("a", "strategy", low=1, high=4.0).distribution() == FloatDistribution(1.0, 4.0)
    assert Knob("a", "strategy", low=0, high=1, step=0.25).distribution() == FloatDistribution(0.0, 1.0, step=0.25)
    assert Knob("a", "strategy", choices=[1, "x"]).distribution() == CategoricalDistribution([1, "x"])
    float_knob = Knob("a", "strategy", low=1, high=2.5)
    assert isinstance(float_knob.low, float) and not float_knob.is_int


def test_fixed_knob_returns_value_without_touching_trial() -> None:
    study = optuna.create_study()
    trial = study.ask()
    assert Knob("drop", "strategy", mode="fixed", value=0.1).suggest(trial) == 0.1
    assert Knob("sizes", "structure", mode="fixed", value=[1, 2]).suggest(trial) == [1, 2]
    assert trial.params == {}
    knob = Knob("drop", "strategy", mode="fixed", value=0.1)
    assert not knob.is_sampled and knob.grid_values() == [0.1]
    with pytest.raises(KnobError, match="fixed knob has no distribution"):
        knob.distribution()


def test_lists_are_stored_as_tuples_so_knobs_are_hashable() -> None:
    knob = Knob("opt", "strategy", choices=["a", "b"], grid=["a"])
    assert knob.choices == ("a", "b") and knob.grid == ("a",)
    assert hash(knob) == hash(Knob("opt", "strategy", choices=("a", "b"), grid=("a",)))


@pytest.mark.parametrize(
    "knob, inside, outside",
    [
        (Knob("a", "structure", low=16, high=64, step=16), [16, 48, 64], [17, 80, 0, 32.0, True, "32"]),
        (Knob("a", "strategy", low=0.0, high=0.5, step=0.1), [0.0, 0.3, 0.5, 0], [0.05, 0.6, -0.1, "0.1", None]),
        (Knob("a", "strategy", low=1e-4, high=0.3, log=True), [1e-4, 0.01, 0.3], [0.0, 0.31, float("nan")]),
        (Knob("a", "strategy", choices=[1, "x", None]), [1, "x", None], [True, 1.0, "y", 2]),
        (Knob("a", "strategy", mode="fixed", value="sgd"), ["sgd"], ["adam", None]),
    ],
    ids=["int_step", "float_step", "float_log", "choices", "fixed"],
)
def test_contains(knob: Knob, inside: list[Any], outside: list[Any]) -> None:
    assert all(knob.contains(value) for value in inside)
    assert not any(knob.contains(value) for value in outside)


@pytest.mark.parametrize(
    "fields, field_path, fragments",
    [
        ({"axis": "strategie", "low": 0.1, "high": 1.0}, ("axis",), ["'strategie'", "did you mean 'strategy'"]),
        ({"axis": "strategy", "mode": "learn", "low": 0.1, "high": 1.0}, ("mode",), ["cannot be learned by gradients", "'x'", "lr"]),
        ({"axis": "structure", "mode": "learn", "low": 1, "high": 3}, ("mode",), ["'structure:' section"]),
        ({"axis": "parameter", "mode": "learn", "low": 1, "high": 3}, ("mode",), ["only be sampled or fixed"]),
        ({"axis": "strategy", "mode": "random", "low": 0.1, "high": 1.0}, ("mode",), ["'random'", "'sample'"]),
        ({"axis": "strategy"}, (), ["'choices' or 'low' and 'high'"]),
        ({"axis": "strategy", "low": "a", "high": 1.0}, ("low",), ["'a'", "a finite number"]),
        ({"axis": "strategy", "low": 0, "high": True}, ("high",), ["True", "a finite number"]),
        ({"axis": "strategy", "low": 0.0, "high": float("inf")}, ("high",), ["inf", "a finite number"]),
        ({"axis": "strategy", "low": 1.0, "high": 1.0}, ("high",), ["high > low"]),
        ({"axis": "strategy", "low": -1.0, "high": 1.0, "log": True}, ("low",), ["got -1.0", "low > 0"]),
        ({"axis": "strategy", "low": 0.1, "high": 1.0, "log": "yes"}, ("log",), ["'yes'", "true or false"]),
        ({"axis": "strategy", "low": 0, "high": 1, "step": 0}, ("step",), ["got 0", "> 0"]),
        ({"axis": "strategy", "low": 0.0, "high": 1.0, "step": 0.3}, ("step",), ["step=0.3", "divides"]),
        ({"axis": "strategy", "low": 1, "high": 8, "step": 1, "log": True}, ("step",), ["log"]),
        ({"axis": "strategy", "choices": []}, ("choices",), ["got []", "non-empty list"]),
        ({"axis": "strategy", "choices": [[1, 2], 3]}, ("choices", 0), ["[1, 2]", "a string, number"]),
        ({"axis": "strategy", "choices": [1, True]}, ("choices", 1), ["True", "distinct"]),
        ({"axis": "strategy", "choices": [1, 2], "log": True}, ("log",), ["only applies to a low/high range"]),
        ({"axis": "strategy", "choices": [1, 2], "grid_points": 3}, ("grid_points",), ["only applies"]),
        ({"axis": "strategy", "choices": [1, 2], "grid": [3]}, ("grid", 0), ["got 3", "one of 1, 2"]),
        ({"axis": "strategy", "low": 1, "high": 5, "grid": [2.5]}, ("grid", 0), ["2.5", "an integer in [1, 5]"]),
        ({"axis": "strategy", "low": 1, "high": 5, "grid": [2, 2]}, ("grid", 1), ["twice"]),
        ({"axis": "strategy", "low": 1, "high": 5, "grid": [2], "grid_points": 3}, ("grid_points",), ["not both"]),
        ({"axis": "strategy", "low": 1, "high": 5, "grid_points": 1.5}, ("grid_points",), ["1.5", ">= 2"]),
        ({"axis": "strategy", "mode": "fixed"}, ("value",), ["missing"]),
        ({"axis": "strategy", "mode": "fixed", "value": 1, "choices": [1]}, ("choices",), ["only 'value'"]),
        ({"axis": "strategy", "mode": "fixed", "value": {"a": 1}}, ("value",), ["{'a': 1}", "a string, number"]),
    ],
)
def test_constructor_rejects_bad_fields(fields: dict[str, Any], field_path: tuple[Any, ...], fragments: list[str]) -> None:
    with pytest.raises(KnobError) as info:
        Knob("x", **fields)
    err = info.value
    assert isinstance(err, BadInputError)
    assert err.knob == "x" and err.field_path == field_path
    assert str(err).startswith("knob 'x'")
    for fragment in fragments:
        assert fragment in err.detail, err.detail


@pytest.mark.parametrize("name", ["", "has space", 3, None])
def test_bad_names(name: Any) -> None:
    with pytest.raises(KnobError, match="name"):
        Knob(name, "strategy", low=0, high=1)


def test_from_mapping_checks_what_the_constructor_cannot_see() -> None:
    with pytest.raises(KnobError, match=r"knob 'x', log: a fixed knob takes only 'value'"):
        Knob.from_mapping("x", {"axis": "strategy", "mode": "fixed", "value": 1, "log": False})
    with pytest.raises(KnobError, match=r"grid_points: only applies"):
        Knob.from_mapping("x", {"axis": "strategy", "choices": [1, 2], "grid_points": 5})
    with pytest.raises(KnobError, match=r"unknown field 'name'"):
        Knob.from_mapping("x", {"axis": "strategy", "name": "y", "low": 0, "high": 1})
    with pytest.raises(KnobError, match=r"missing required field 'axis'"):
        Knob.from_mapping("x", {"low": 0, "high": 1})
    with pytest.raises(KnobError, match=r"expected a mapping"):
        Knob.from_mapping("x", [1, 2])


@pytest.mark.parametrize("knob", KNOBS + [
    Knob("f", "strategy", mode="fixed", value=[1, "a"]),
    Knob("g", "parameter", low=0.0, high=1.0, grid_points=3),
    Knob("h", "parameter", low=1e-5, high=1e-1, log=True, grid=[1e-4, 1e-2]),
    Knob("i", "parameter", low=0, high=4, grid=[1, 3]),
], ids=lambda knob: knob.name)
def test_to_dict_round_trips(knob: Knob) -> None:
    assert Knob.from_mapping(knob.name, knob.to_dict()) == knob


def test_knob_error_survives_pickling() -> None:
    err = KnobError("lr", ("grid", 1), "got 2; expected a value")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == "knob 'lr', grid[1]: got 2; expected a value"
    assert again.field_path == ("grid", 1)


def test_a_learned_knob_starts_at_init_and_asks_the_trial_nothing() -> None:
    study = optuna.create_study()
    trial = study.ask()
    lr = Knob.from_mapping("lr", {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 1.0})
    decay = Knob("decay", axis="strategy", mode="learn", low=0.0, high=1.0)
    assert lr.suggest(trial) == pytest.approx(1e-2)  # geometric mean on a log scale
    assert decay.suggest(trial) == 0.5  # midpoint on a linear one
    assert trial.params == {} and not lr.is_sampled and lr.is_learned
    assert search_space([lr, decay]) == {}
    assert Knob.from_mapping("lr", lr.to_dict()) == lr
    assert lr.contains(0.5) and not lr.contains(2.0)
    with pytest.raises(KnobError, match="only applies to a knob in learn mode"):
        Knob("lr", axis="strategy", low=0.1, high=1.0, init=0.2)
