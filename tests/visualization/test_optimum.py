"""Distance to the best achievable value, where the task knows it."""

from __future__ import annotations

import optuna
import pytest

from optuna_bigmodel.visualization import optimum_gap_data, plot_optimum_gap
from tests.visualization.studies import OPTIMUM


def test_gaps_of_a_real_study(real_study: optuna.Study) -> None:
    data = optimum_gap_data(real_study)
    complete = [t for t in real_study.trials if t.state.name == "COMPLETE"]
    assert data.optimum == OPTIMUM and data.numbers == [t.number for t in complete]
    assert data.gaps == pytest.approx([t.value - OPTIMUM for t in complete])
    assert data.best_gaps[-1] == pytest.approx(real_study.best_value - OPTIMUM)
    figure = plot_optimum_gap(real_study)
    assert figure.layout.yaxis.type == "log"  # every gap is positive
    assert list(figure.data[1].y) == data.best_gaps


def _study(direction: str, values: list[float], optimum: float | None) -> optuna.Study:
    study = optuna.create_study(direction=direction)
    for value in values:
        trial = study.ask()
        if optimum is not None:
            trial.set_user_attr("optimum", optimum)
        study.tell(trial, value)
    return study


def test_maximising_and_noise_below_the_optimum() -> None:
    data = optimum_gap_data(_study("maximize", [0.5, 0.9, 1.02], optimum=1.0))
    assert data.gaps == pytest.approx([0.5, 0.1, -0.02])  # the last beat it: noise, said so
    assert data.best_gaps == pytest.approx([0.5, 0.1, -0.02])
    assert plot_optimum_gap(_study("maximize", [0.5, 1.02], 1.0)).layout.yaxis.type == "linear"


def test_unknown_optimum_gives_no_gaps() -> None:
    data = optimum_gap_data(_study("minimize", [1.0, 2.0], optimum=None))
    assert (data.optimum, data.numbers, data.gaps) == (None, [], [])
