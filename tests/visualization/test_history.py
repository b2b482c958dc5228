"""The history plot's data, checked against values computed by hand."""

from __future__ import annotations

import optuna
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.visualization import history_data, plot_history

VALUES = [3.0, 5.0, None, 2.0, "pruned", 4.0, 1.5]  # None = failed


def _study(direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for value in VALUES:
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("optimum", 1.25)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif value == "pruned":
            trial.report(9.0, step=3)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study


def test_history_data_minimize() -> None:
    data = history_data(_study())
    assert data.numbers == [0, 1, 3, 4, 5, 6]
    assert data.values == [3.0, 5.0, 2.0, 9.0, 4.0, 1.5]
    assert data.states == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "COMPLETE"]
    assert data.best_so_far == [3.0, 3.0, 2.0, 2.0, 2.0, 1.5]
    assert data.optimum == 1.25 and data.n_failed == 1 and data.direction == "minimize"


def test_history_data_maximize() -> None:
    data = history_data(_study("maximize"))
    assert data.best_so_far == [3.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_multi_objective_needs_an_objective_index() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    for a, b in ((3.0, 1.0), (1.0, 0.5), (2.0, 2.0)):
        trial = study.ask()
        study.tell(trial, (a, b))
    with pytest.raises(BadInputError, match="several"):
        history_data(study)
    assert history_data(study, objective=0).best_so_far == [3.0, 1.0, 1.0]
    second = history_data(study, objective=1)
    assert second.best_so_far == [1.0, 1.0, 2.0] and second.direction == "maximize"
    assert second.metric == "objective 1" and second.optimum is None


def test_running_trials_are_counted_not_drawn() -> None:
    study = _study()
    study.ask()
    data = history_data(study)
    assert data.n_running == 1 and data.numbers == [0, 1, 3, 4, 5, 6]
    assert "1 still running" in plot_history(study).layout.title.text


def test_plot_draws_the_data() -> None:
    study = _study()
    figure = plot_history(study)
    names = [trace.name for trace in figure.data]
    assert names == ["complete", "pruned", "best so far"]
    assert list(figure.data[2].y) == [3.0, 3.0, 2.0, 2.0, 2.0, 1.5]
    assert list(figure.data[1].x) == [4] and list(figure.data[1].y) == [9.0]
    assert figure.layout.shapes[0].y0 == 1.25  # the best achievable value
    assert "1 failed trial not shown" in figure.layout.title.text
