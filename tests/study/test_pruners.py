"""Pruners by name: the right class, checked kwargs, and ``patient`` wrapping another pruner."""

from __future__ import annotations

import optuna
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.spec import PrunerSpec
from optuna_bigmodel.study._pruners import check_pruner
from optuna_bigmodel.study._pruners import make_pruner
from optuna_bigmodel.study._samplers import OptionError


pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)

CASES = {
    "none": (optuna.pruners.NopPruner, {}),
    "nop": (optuna.pruners.NopPruner, {}),
    "median": (optuna.pruners.MedianPruner, {}),
    "percentile": (optuna.pruners.PercentilePruner, {"percentile": 25.0}),
    "successive_halving": (optuna.pruners.SuccessiveHalvingPruner, {}),
    "hyperband": (optuna.pruners.HyperbandPruner, {}),
    "threshold": (optuna.pruners.ThresholdPruner, {"upper": 1.0}),
    "patient": (optuna.pruners.PatientPruner, {"patience": 2}),
    "wilcoxon": (optuna.pruners.WilcoxonPruner, {}),
}


@pytest.mark.parametrize("name, case", CASES.items(), ids=list(CASES))
def test_every_name_builds_its_class(name: str, case: tuple[type, dict]) -> None:
    cls, kwargs = case
    for spelling in (name, name.upper(), cls.__name__):
        assert type(make_pruner(PrunerSpec(spelling, kwargs))) is cls
    if not kwargs:
        assert type(make_pruner(name)) is cls


def test_object_passes_through_untouched() -> None:
    pruner = optuna.pruners.MedianPruner()
    assert make_pruner(pruner) is pruner


def _pruned_at(pruner: optuna.pruners.BasePruner, step: int) -> bool:
    # Three finished trials with loss 1.0 at every step, then one much worse at `step`.
    study = optuna.create_study(pruner=pruner)
    for _ in range(3):
        trial = study.ask()
        for s in range(20):
            trial.report(1.0, s)
        study.tell(trial, 1.0)
    trial = study.ask()
    trial.report(100.0, step)
    return trial.should_prune()


def test_median_kwargs_are_forwarded() -> None:
    pruner = make_pruner(PrunerSpec("median", {"n_startup_trials": 1, "n_warmup_steps": 10}))
    assert not _pruned_at(pruner, 5)  # still warming up
    assert _pruned_at(pruner, 15)


def test_threshold_prunes_above_upper() -> None:
    pruner = make_pruner(PrunerSpec("threshold", {"upper": 50.0}))
    assert _pruned_at(pruner, 0)
    assert not _pruned_at(make_pruner(PrunerSpec("threshold", {"upper": 500.0})), 0)


def test_patient_wraps_median_by_default() -> None:
    pruner = make_pruner(PrunerSpec("patient", {"patience": 3, "min_delta": 0.5}))
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.MedianPruner)
    assert pruner._patience == 3 and pruner._min_delta == 0.5


def test_patient_wraps_the_named_pruner_with_its_kwargs() -> None:
    spec = PrunerSpec("patient", {"patience": 1, "wrapped": {"name": "percentile", "kwargs": {"percentile": 10.0}}})
    pruner = make_pruner(spec)
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.PercentilePruner)
    assert pruner._wrapped_pruner._percentile == 10.0


def test_patient_wrapping_none_prunes_on_patience_alone() -> None:
    assert make_pruner(PrunerSpec("patient", {"patience": 1, "wrapped": "none"}))._wrapped_pruner is None


def test_check_pruner_normalises_wrapped() -> None:
    assert check_pruner("PatientPruner", {"patience": 2, "wrapped": "MedianPruner"}) == (
        "patient", {"patience": 2, "wrapped": {"name": "median", "kwargs": {}}},
    )
    assert check_pruner("nop", {}) == ("none", {})


@pytest.mark.parametrize(
    "name, kwargs, key_path, fragments",
    [
        ("medain", {}, ("name",), ["'medain'", "did you mean 'median'", "hyperband"]),
        ("median", {"warmup": 1}, ("kwargs", "warmup"), ["'median'", "'warmup'", "n_warmup_steps"]),
        ("none", {"x": 1}, ("kwargs", "x"), ["'none'", "'x'", "expected one of: none"]),
        ("percentile", {}, ("kwargs",), ["'percentile' needs the kwarg 'percentile'"]),
        ("threshold", {"n_warmup_steps": 1}, ("kwargs",), ["'lower' or 'upper'"]),
        ("patient", {}, ("kwargs",), ["'patient' needs the kwarg 'patience'"]),
        ("patient", {"patience": 1, "wrap": "median"}, ("kwargs", "wrap"), ["did you mean 'wrapped'"]),
        ("patient", {"patience": 1, "wrapped": "medianx"}, ("kwargs", "wrapped"), ["'medianx'"]),
        ("patient", {"patience": 1, "wrapped": {"name": "percentile"}}, ("kwargs", "wrapped", "kwargs"), ["'percentile'"]),
        ("patient", {"patience": 1, "wrapped": 3}, ("kwargs", "wrapped"), ["got 3", "a pruner name"]),
        (7, {}, ("name",), ["got 7", "a pruner name"]),
    ],
)
def test_bad_pruner_specs(name: object, kwargs: dict, key_path: tuple, fragments: list[str]) -> None:
    with pytest.raises(OptionError) as info:
        make_pruner(PrunerSpec(name, kwargs))  # type: ignore[arg-type]
    assert info.value.key_path == key_path
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_values_the_pruner_rejects_become_bad_input() -> None:
    with pytest.raises(BadInputError, match=r"pruner 'median' rejected its kwargs .*n_startup_trials"):
        make_pruner(PrunerSpec("median", {"n_startup_trials": -1}))
