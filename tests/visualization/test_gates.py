"""Structure gates: keep-probabilities over training and the final structure of each trial."""

from __future__ import annotations

import optuna
import pytest

from optuna_bigmodel import BadInputError
from optuna_bigmodel.visualization import (
    gate_history_data,
    plot_gate_history,
    plot_structure,
    structure_data,
)
from tests.visualization.studies import GATES, structure_record


def _ranked_numbers(study: optuna.Study) -> list[int]:
    complete = sorted(
        (t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value
    )
    others = [t for t in study.trials if t.state.name != "COMPLETE"]
    return [t.number for t in complete + others]


def test_gate_history_of_a_real_study_best_first(real_study: optuna.Study) -> None:
    histories = gate_history_data(real_study)
    assert [h.number for h in histories] == _ranked_numbers(real_study)
    assert histories[0].number == real_study.best_trial.number
    for history in histories:
        record = structure_record(history.number)["gates"]
        assert history.gates == list(GATES) and history.steps == [0, 4, 8]
        for gate, row in zip(history.gates, history.keep):
            assert row == [v for _, v in record[gate]["trajectory"]]


def test_sparse_trajectories_hold_their_last_value() -> None:
    study = optuna.create_study()
    trial = study.ask()
    gates = {
        "a": {"final": 0.9, "kept": True, "trajectory": [[0, 0.5], [10, 0.9]]},
        "b": {"final": 0.1, "kept": False, "trajectory": [[5, 0.1]]},
    }
    trial.set_user_attr("structure", {"gates": gates})
    study.tell(trial, 1.0)
    (history,) = gate_history_data(study)
    assert history.steps == [0, 5, 10]
    assert history.keep == [[0.5, 0.5, 0.9], [None, 0.1, 0.1]]


def test_structure_data_of_a_real_study(real_study: optuna.Study) -> None:
    data = structure_data(real_study)
    assert data.numbers == [0, 1, 2, 3] and data.gates == list(GATES)
    for number, keep, kept, after in zip(data.numbers, data.keep, data.kept, data.params_after):
        record = structure_record(number)
        assert keep == [record["gates"][g]["final"] for g in GATES]
        assert kept == [record["gates"][g]["kept"] for g in GATES]
        assert after == record["params_after"] and after == 1000 * sum(kept)
    assert data.params_before == [3000] * 4


def test_gates_missing_from_some_trials_are_none() -> None:
    study = optuna.create_study()
    for gates in ({"a": {"final": 0.7, "kept": True}}, {"b": {"final": 0.2, "kept": False}}, None):
        trial = study.ask()
        if gates is not None:
            trial.set_user_attr("structure", {"gates": gates})
        study.tell(trial, 1.0)
    other = study.ask()  # kept unit indices per gate (Structure.to_dict()): no records to draw
    other.set_user_attr("structure", {"gates": {"a": [0, 1]}, "params_before": 9})
    study.tell(other, 1.0)
    data = structure_data(study)
    assert data.numbers == [0, 1] and data.gates == ["a", "b"]
    assert data.keep == [[0.7, None], [None, 0.2]] and data.kept == [[True, None], [None, False]]
    assert data.params_before == [None, None]


def test_plots(real_study: optuna.Study) -> None:
    figure = plot_gate_history(real_study)
    assert [trace.visible for trace in figure.data] == [True, False, False, False]
    buttons = figure.layout.updatemenus[0].buttons
    assert [b.label for b in buttons][0] == f"trial #{real_study.best_trial.number} (complete)"
    one = plot_gate_history(real_study, trial_number=1)
    assert len(one.data) == 1 and not one.layout.updatemenus and "trial #1" in one.layout.title.text
    with pytest.raises(BadInputError, match="trial 9 recorded no structure"):
        plot_gate_history(real_study, trial_number=9)
    structure = plot_structure(real_study).data[0]
    assert structure.y[0].startswith("#0: 3k → 1k params")
    assert list(structure.text[0]) == ["cut", "cut", "kept"]  # trial 0: 0, 0.25, 0.5
