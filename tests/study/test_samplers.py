"""Samplers by name: the right class, checked kwargs, the study's seed, and exact grids."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs import KnobError
from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.spec import SamplerSpec
from optuna_bigmodel.study._samplers import brute_force_size
from optuna_bigmodel.study._samplers import check_sampler
from optuna_bigmodel.study._samplers import grid_points
from optuna_bigmodel.study._samplers import grid_size
from optuna_bigmodel.study._samplers import is_exhaustive
from optuna_bigmodel.study._samplers import make_sampler
from optuna_bigmodel.study._samplers import OptionError


pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)

KNOBS = [
    Knob("opt", "strategy", choices=["adam", "sgd"]),
    Knob("width", "structure", low=16, high=48, step=16),
    Knob("lr", "strategy", low=1e-3, high=1e-1, log=True, grid_points=3),
    Knob("drop", "strategy", mode="fixed", value=0.1),
]
SMALL_DISCRETE = [Knob("opt", "strategy", choices=["adam", "sgd"]), Knob("depth", "structure", low=1, high=3)]

CLASSES = {
    "grid": optuna.samplers.GridSampler,
    "brute_force": optuna.samplers.BruteForceSampler,
    "random": optuna.samplers.RandomSampler,
    "tpe": optuna.samplers.TPESampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "nsgaii": optuna.samplers.NSGAIISampler,
    "nsgaiii": optuna.samplers.NSGAIIISampler,
}


@pytest.mark.parametrize("name, cls", CLASSES.items(), ids=list(CLASSES))
def test_every_name_builds_its_class(name: str, cls: type) -> None:
    for spelling in (name, name.upper(), cls.__name__, SamplerSpec(name)):
        assert type(make_sampler(spelling, SMALL_DISCRETE, 0)) is cls


def test_object_passes_through_untouched() -> None:
    sampler = optuna.samplers.RandomSampler(seed=3)
    assert make_sampler(sampler, KNOBS, 0) is sampler


def _draws(sampler: optuna.samplers.BaseSampler) -> list[float]:
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=5)
    return [t.params["x"] for t in study.trials]


def test_seed_is_injected_unless_kwargs_set_one() -> None:
    assert _draws(make_sampler("random", seed=3)) == _draws(optuna.samplers.RandomSampler(seed=3))
    assert _draws(make_sampler("random", seed=3)) != _draws(make_sampler("random", seed=4))
    own = make_sampler(SamplerSpec("random", {"seed": 5}), seed=3)
    assert _draws(own) == _draws(optuna.samplers.RandomSampler(seed=5))


def test_kwargs_are_forwarded() -> None:
    sampler = make_sampler(SamplerSpec("tpe", {"n_startup_trials": 7, "multivariate": True}), seed=0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 7 and sampler._multivariate


def test_unknown_kwarg_names_it_the_sampler_and_the_accepted_ones() -> None:
    with pytest.raises(OptionError) as info:
        make_sampler(SamplerSpec("tpe", {"n_startup": 3}))
    message = str(info.value)
    assert info.value.key_path == ("kwargs", "n_startup")
    for fragment in ("'tpe'", "'n_startup'", "did you mean 'n_startup_trials'", "n_ei_candidates", "seed"):
        assert fragment in message, message
    assert isinstance(info.value, BadInputError)


def test_unknown_name_lists_names_and_nearest() -> None:
    with pytest.raises(OptionError, match=r"got unknown sampler name 'randon' \(did you mean 'random'\?\); expected one of: grid, brute_force"):
        make_sampler("randon")


def test_grid_search_space_is_derived_not_given() -> None:
    with pytest.raises(OptionError, match=r"'grid': got unknown kwarg 'search_space'; expected one of: seed"):
        check_sampler("grid", {"search_space": {"x": [1]}})


def test_grid_needs_a_sampled_knob() -> None:
    with pytest.raises(BadInputError, match="needs at least one knob in sample mode"):
        make_sampler("grid", [Knob("drop", "strategy", mode="fixed", value=0.1)], 0)


def test_brute_force_refuses_continuous_knobs() -> None:
    with pytest.raises(KnobError, match=r"knob 'lr', step: .*discrete"):
        make_sampler("brute_force", [Knob("lr", "strategy", low=0.1, high=1.0)], 0)


def test_values_the_sampler_rejects_become_bad_input() -> None:
    with pytest.raises(BadInputError, match=r"sampler 'nsgaii' rejected its kwargs \{'population_size': 1"):
        make_sampler(SamplerSpec("nsgaii", {"population_size": 1}))


def test_check_sampler_normalises_name() -> None:
    assert check_sampler("BruteForceSampler", {"seed": 1}) == ("brute_force", {"seed": 1})
    assert check_sampler("brute-force", {}) == ("brute_force", {})


def test_is_exhaustive() -> None:
    assert is_exhaustive(make_sampler("grid", KNOBS, 0)) and is_exhaustive(make_sampler("brute_force"))
    assert not is_exhaustive(make_sampler("tpe")) and not is_exhaustive(make_sampler("random"))
    assert is_exhaustive(SamplerSpec("grid")) and is_exhaustive("BruteForceSampler") and not is_exhaustive("tpe")


def test_grid_points_is_the_ordered_cartesian_product() -> None:
    points = grid_points(KNOBS)
    assert len(points) == grid_size(KNOBS) == 2 * 3 * 3
    assert points[0] == {"opt": "adam", "width": 16, "lr": 1e-3}
    assert points[1]["lr"] == pytest.approx(1e-2)  # the last knob varies fastest
    assert points[-1] == {"opt": "sgd", "width": 48, "lr": 1e-1}
    assert len({tuple(p.values()) for p in points}) == len(points)
    assert grid_points(KNOBS) == points  # deterministic


def _visited(study: optuna.Study, knobs: list[Knob]) -> list[tuple[Any, ...]]:
    names = [k.name for k in knobs if k.is_sampled]
    return [tuple(t.params[n] for n in names) for t in study.trials]


def test_grid_study_visits_exactly_the_grid_points() -> None:
    study = optuna.create_study(sampler=make_sampler("grid", KNOBS, seed=0))
    seen_fixed = []

    def objective(trial: optuna.Trial) -> float:
        params = params_for_trial(KNOBS, trial)
        seen_fixed.append(params["drop"])
        return 0.0

    study.optimize(objective, n_trials=100)  # GridSampler stops the study when the grid is done
    visited = _visited(study, KNOBS)
    expected = [tuple(p.values()) for p in grid_points(KNOBS)]
    assert len(visited) == len(expected) and sorted(visited) == sorted(expected)
    assert seen_fixed == [0.1] * len(expected)


def test_brute_force_study_visits_every_combination_once() -> None:
    study = optuna.create_study(sampler=make_sampler("brute_force", SMALL_DISCRETE, seed=0))
    study.optimize(lambda trial: float(len(params_for_trial(SMALL_DISCRETE, trial))), n_trials=100)
    visited = _visited(study, SMALL_DISCRETE)
    assert len(visited) == len(set(visited)) == brute_force_size(SMALL_DISCRETE) == 2 * 3


def test_brute_force_size_counts_every_value() -> None:
    knobs = [
        Knob("a", "structure", low=1, high=200),
        Knob("b", "strategy", low=0.0, high=1.0, step=0.25),
        Knob("c", "strategy", choices=[1, 2, 3]),
        Knob("d", "strategy", mode="fixed", value=1),
    ]
    assert brute_force_size(knobs) == 200 * 5 * 3
