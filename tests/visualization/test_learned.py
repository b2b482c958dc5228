"""Learned knobs over training, read from each trial's `learned` record."""

from __future__ import annotations

import optuna
import pytest

from optuna_bigmodel.visualization import learned_data, plot_learned
from optuna_bigmodel.visualization._trials import SPEC_ATTR
from tests.visualization.studies import learned_record


def test_learned_data_of_a_real_study(real_study: optuna.Study) -> None:
    data = learned_data(real_study)
    assert list(data.knobs) == ["lr"]
    trajectories = data.knobs["lr"]
    assert [t.number for t in trajectories] == [0, 1, 2, 3]
    for trajectory, trial in zip(trajectories, real_study.trials):
        record = learned_record(trial.number)["lr"]
        assert trajectory.steps == [0, 2, 4, 6, 8]
        assert trajectory.values == [v for _, v in record["trajectory"]]
        assert trajectory.final == record["final"] == pytest.approx(0.18 + 0.01 * trial.number)
        assert trajectory.state == trial.state.name
    assert data.best_number == real_study.best_trial.number
    assert data.log_scale == {"lr": False}


def _study_with(records: list[object], spec: dict | None = None) -> optuna.Study:
    study = optuna.create_study()
    if spec is not None:
        study.set_user_attr(SPEC_ATTR, spec)
    for value, record in enumerate(records):
        trial = study.ask()
        trial.set_user_attr("learned", record)
        study.tell(trial, float(value))
    return study


def test_bad_records_are_skipped_and_final_falls_back_to_last_point() -> None:
    study = _study_with([
        {"lr": "junk", "wd": {"trajectory": [[0, "x"], [3, 0.5], [1, 0.25]]}},
        "not a dict",
        {"wd": {"final": 0.125}},
    ])  # fmt: skip
    data = learned_data(study)
    assert list(data.knobs) == ["wd"]
    first, last = data.knobs["wd"]
    assert (first.number, first.steps, first.values, first.final) == (0, [1, 3], [0.25, 0.5], 0.5)
    assert (last.number, last.steps, last.final) == (2, [], 0.125)


def test_log_space_knobs_are_drawn_on_a_log_axis() -> None:
    spec = {
        "knobs": {
            "lr": {"axis": "strategy", "mode": "learn", "low": 1e-4, "high": 1.0, "log": True}
        }
    }
    study = _study_with([learned_record(0), learned_record(1)], spec)
    data = learned_data(study)
    assert data.log_scale == {"lr": True} and data.best_number == 0
    figure = plot_learned(study)
    assert figure.layout.yaxis.type == "log"
    widths = [trace.line.width for trace in figure.data]
    assert widths == [3, 1]  # the best trial is drawn bold
