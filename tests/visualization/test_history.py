"""The history plot's data, checked against values computed by hand."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.visualization import history_data, plot_history, write_report

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


def test_multi_objective_is_refused_clearly() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(BadInputError, match="several"):
        history_data(study)


def test_plot_and_report_files(tmp_path: Path) -> None:
    study = _study()
    figure = plot_history(study)
    names = [trace.name for trace in figure.data]
    assert names == ["complete", "pruned", "best so far"]
    assert list(figure.data[2].y) == [3.0, 3.0, 2.0, 2.0, 2.0, 1.5]
    paths = write_report(study, str(tmp_path / "report"))
    assert [Path(p).name for p in paths] == ["history.html", "intermediate_values.html"]
    assert "plotly" in Path(paths[0]).read_text()[:100_000].lower()
