"""Compute spent against the best value so far, and what pruning saved."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from optuna_bigmodel import BadInputError
from optuna_bigmodel.visualization import compute_data, plot_compute
from optuna_bigmodel.visualization._trials import SPEC_ATTR
from tests.visualization.studies import MAX_STEPS


def test_compute_of_a_real_study(real_study: optuna.Study) -> None:
    data = compute_data(real_study)
    finish_order = sorted(real_study.trials, key=lambda t: t.datetime_complete)
    assert data.numbers == [t.number for t in finish_order]
    # No `compute_steps` records here: each trial's cost is its last reported step.
    assert data.steps == [max(t.intermediate_values) for t in finish_order]
    assert sorted(data.steps) == [2, 2, MAX_STEPS, MAX_STEPS]
    assert data.cumulative[-1] == data.total_steps == 2 * 2 + 2 * MAX_STEPS
    assert data.saved_by_pruning == 2 * (MAX_STEPS - 2)
    best, expected = None, []
    for trial in finish_order:
        if trial.state == TrialState.COMPLETE:
            best = trial.value if best is None else min(best, trial.value)
        expected.append(best)
    assert data.best_so_far == expected and data.best_so_far[-1] == real_study.best_value


def _hand_made() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(SPEC_ATTR, {"trainer": {"max_steps": 100}, "metric": "val_acc"})
    plan = [
        (TrialState.COMPLETE, 0.5, {"compute_steps": 100}),
        (TrialState.PRUNED, None, {"compute_steps": 30}),
        (TrialState.FAIL, None, {"compute_steps": 12}),
        (TrialState.FAIL, None, {}),  # failed before reporting anything: nothing known spent
        (TrialState.COMPLETE, 0.75, {"compute_steps": 90}),  # stopped early by its own rule
    ]
    for state, value, attrs in plan:
        trial = study.ask()
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        if state == TrialState.PRUNED:
            trial.report(0.25, step=20)  # the record (30 steps) wins over the last report (20)
        study.tell(trial, value, state=state)
    running = study.ask()
    running.report(0.1, step=40)
    return study


def test_records_failed_and_running_trials_count() -> None:
    data = compute_data(_hand_made())
    assert data.numbers == [0, 1, 2, 3, 4]
    assert data.states == ["COMPLETE", "PRUNED", "FAIL", "FAIL", "COMPLETE"]
    assert data.steps == [100, 30, 12, 0, 90]
    assert data.cumulative == [100, 130, 142, 142, 232]
    assert data.values == [0.5, 0.25, None, None, 0.75]
    assert data.best_so_far == [0.5, 0.5, 0.5, 0.5, 0.75]  # maximising
    assert data.running_steps == 40 and data.total_steps == 272
    assert data.saved_by_pruning == 70 and data.metric == "val_acc"


def test_multi_objective_needs_an_objective() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3)
    with pytest.raises(BadInputError, match="objective=0..1"):
        compute_data(study)
    with pytest.raises(BadInputError, match="from 0 to 1, got 2"):
        compute_data(study, objective=2)
    data = compute_data(study, objective=0)
    assert data.best_so_far[-1] == min(t.values[0] for t in study.trials)


def test_plot_title_tells_spent_and_saved(real_study: optuna.Study) -> None:
    figure = plot_compute(real_study)
    assert "20 steps, pruning saved 12 (38%)" in figure.layout.title.text
    assert [trace.name for trace in figure.data] == ["best so far", "complete", "pruned"]
    assert figure.data[0].line.shape == "hv"
