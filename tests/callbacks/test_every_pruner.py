"""Every Optuna pruner a study file can name drives OptunaPruning in real (tiny) training runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from optuna.trial import TrialState

from optuna_bigmodel import run_study

PRUNERS = {
    "median": {"n_startup_trials": 1},
    "percentile": {"percentile": 50.0, "n_startup_trials": 1},
    "successive_halving": {"min_resource": 4},
    "hyperband": {"min_resource": 4, "max_resource": 12},
    "threshold": {"upper": 2.5},
    "patient": {"patience": 0, "wrapped": {"name": "median", "kwargs": {"n_startup_trials": 1}}},
    "wilcoxon": {"p_threshold": 0.5},
}


@pytest.mark.parametrize("name", PRUNERS)
def test_the_pruner_named_in_the_study_file_sees_every_validation(
    write_spec: Callable[..., Path], name: str
) -> None:
    path = write_spec(
        knobs={"offset": {"axis": "structure", "choices": [0.0, 5.0]}},  # 5.0: clearly worse
        pruner={"name": name, "kwargs": PRUNERS[name]},
        trainer={
            "max_steps": 12, "val_check_interval": 4, "accelerator": "cpu", "progress_bar": False,
        },
        budget={"n_trials": 5},
    )
    study = run_study(path, progress=False)
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in study.trials:
        steps = list(trial.intermediate_values)
        assert steps == [4, 8, 12][: len(steps)] and steps  # one value per validation, none twice
        if trial.state == TrialState.PRUNED:
            assert trial.user_attrs["pruned_at_step"] == steps[-1]
    if name == "threshold":  # the only one whose decision is known in advance
        worse = [t for t in study.trials if t.params["offset"] == 5.0]
        assert worse and all(t.state == TrialState.PRUNED for t in worse)
    if name != "patient":  # runs that keep improving never run out of patience
        assert any(t.state == TrialState.PRUNED for t in study.trials)
