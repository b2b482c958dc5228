"""The grid-value rules: which values each kind of knob contributes to an exhaustive search."""

from __future__ import annotations

import itertools
import math

import optuna
import pytest

from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.knobs import search_space
from optuna_bigmodel.knobs import KnobError


def test_choices_and_explicit_grid() -> None:
    assert Knob("a", "strategy", choices=["x", "y", "z"]).grid_values() == ["x", "y", "z"]
    assert Knob("a", "strategy", choices=["x", "y", "z"], grid=["z", "x"]).grid_values() == ["z", "x"]
    knob = Knob("wd", "strategy", low=1e-6, high=1e-2, log=True, grid=[1e-5, 1e-3])
    assert knob.grid_values() == [1e-5, 1e-3]
    assert Knob("a", "strategy", low=0.0, high=1.0, grid=[0, 1]).grid_values() == [0.0, 1.0]


def test_small_int_range_is_enumerated_whole() -> None:
    assert Knob("a", "structure", low=16, high=64, step=16).grid_values() == [16, 32, 48, 64]
    assert Knob("a", "structure", low=1, high=100).grid_values() == list(range(1, 101))
    assert Knob("a", "structure", low=1, high=64, log=True).grid_values() == list(range(1, 65))


def test_large_int_range_becomes_grid_points_on_the_lattice() -> None:
    values = Knob("a", "structure", low=0, high=1000, step=2, grid_points=6).grid_values()
    assert len(values) == 6 and values[0] == 0 and values[-1] == 1000
    assert all(v % 2 == 0 and isinstance(v, int) for v in values)
    gaps = [b - a for a, b in zip(values, values[1:])]
    assert max(gaps) - min(gaps) <= 2  # evenly spaced up to one lattice step
    assert Knob("a", "structure", low=1, high=101).grid_values() == [1, 26, 51, 76, 101]


def test_large_log_int_range_is_log_spaced() -> None:
    values = Knob("a", "structure", low=1, high=10_000, log=True).grid_values()
    assert values == [1, 10, 100, 1000, 10_000]


def test_float_range_linear_and_log() -> None:
    linear = Knob("a", "strategy", low=0.0, high=1.0).grid_values()
    assert linear == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0]) and linear[-1] == 1.0
    log = Knob("a", "strategy", low=1e-4, high=1.0, log=True, grid_points=5).grid_values()
    assert log == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert (log[0], log[-1]) == (1e-4, 1.0)  # exact ends, so the distribution accepts them
    ratios = [b / a for a, b in zip(log, log[1:])]
    assert ratios == pytest.approx([10.0] * 4)
    assert len(Knob("a", "strategy", low=0.5, high=0.9, grid_points=3).grid_values()) == 3


def test_stepped_float_range_stays_on_the_lattice() -> None:
    knob = Knob("a", "strategy", low=0.0, high=1.0, step=0.1)
    values = knob.grid_values()
    assert len(values) == 5 and values[0] == 0.0 and values[-1] == 1.0
    assert all(knob.contains(v) for v in values)
    assert all(round(v * 10) == pytest.approx(v * 10) for v in values)
    # Fewer lattice points than grid_points: every one of them.
    assert Knob("a", "strategy", low=0.0, high=0.3, step=0.1).grid_values() == [0.0, 0.1, 0.2, 0.3]


@pytest.mark.parametrize(
    "knob",
    [
        Knob("a", "structure", low=3, high=997, step=7),
        Knob("b", "structure", low=2, high=5000, log=True, grid_points=7),
        Knob("c", "strategy", low=-2.5, high=7.5, step=0.5, grid_points=4),
        Knob("d", "strategy", low=3e-7, high=2.0, log=True, grid_points=9),
    ],
    ids=lambda knob: knob.name,
)
def test_grid_values_are_distinct_and_in_space(knob: Knob) -> None:
    values = knob.grid_values()
    assert len(set(values)) == len(values) and len(values) >= 2
    assert all(knob.contains(v) for v in values)
    assert values == sorted(values)


def _declared_values(knob: Knob) -> list:
    # An independent enumeration of a small declared space, straight from the fields.
    if knob.choices is not None:
        return list(knob.choices)
    return list(range(knob.low, knob.high + 1, knob.step or 1))


def test_search_space_matches_brute_force_enumeration_of_declared_space() -> None:
    knobs = [
        Knob("opt", "strategy", choices=["adam", "sgd", "rmsprop"]),
        Knob("layers", "structure", low=1, high=4),
        Knob("width", "structure", low=16, high=64, step=16),
        Knob("drop", "strategy", mode="fixed", value=0.1),
    ]
    space = search_space(knobs)
    assert list(space) == ["opt", "layers", "width"]  # fixed knobs are left to the task
    expected = set(itertools.product(*(_declared_values(k) for k in knobs if k.is_sampled)))
    got = set(itertools.product(*space.values()))
    assert got == expected
    assert math.prod(len(v) for v in space.values()) == len(expected) == 3 * 4 * 4


def test_params_for_trial_suggests_sampled_and_passes_fixed() -> None:
    knobs = [
        Knob("opt", "strategy", choices=["adam", "sgd"]),
        Knob("lr", "strategy", low=1e-3, high=1.0, log=True),
        Knob("drop", "strategy", mode="fixed", value=0.1),
    ]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    params = params_for_trial(knobs, trial)
    assert set(params) == {"opt", "lr", "drop"} and params["drop"] == 0.1
    assert trial.params == {"opt": params["opt"], "lr": params["lr"]}
    assert all(k.contains(params[k.name]) for k in knobs)


def test_duplicate_knob_names_are_refused() -> None:
    knobs = [Knob("a", "strategy", choices=[1]), Knob("a", "strategy", choices=[2])]
    with pytest.raises(KnobError, match="knob 'a', name: declared twice"):
        search_space(knobs)
