"""Learning curves: every reported value at its step; pruned trials end where they were cut."""

from __future__ import annotations

import optuna

from optuna_bigmodel.visualization import curves_data, plot_intermediate_values
from tests.visualization.studies import MAX_STEPS, OPTIMUM, in_memory_copy, trials_by_state


def test_curves_of_a_real_study(real_study: optuna.Study) -> None:
    data = curves_data(real_study)
    assert [c.number for c in data.curves] == [0, 1, 2, 3]
    for curve, trial in zip(data.curves, real_study.trials):
        assert curve.state == trial.state.name
        assert dict(zip(curve.steps, curve.values)) == trial.intermediate_values
        full = trial.params["offset"] == 0.0  # offset 5 is over the pruner's threshold at once
        assert curve.steps == ([2, 4, 6, 8] if full else [2])
    assert [c.number for c in data.cut()] == [
        t.number for t in trials_by_state(real_study, "PRUNED")
    ]
    assert len(data.cut()) == 2
    assert data.max_steps == MAX_STEPS and data.optimum == OPTIMUM and data.metric == "val_loss"


def test_running_trial_has_its_curve_so_far(real_study: optuna.Study) -> None:
    study = in_memory_copy(real_study)
    running = study.ask()
    running.report(0.9, step=2)
    data = curves_data(study)
    assert (data.curves[-1].number, data.curves[-1].state) == (running.number, "RUNNING")
    assert data.curves[-1].steps == [2] and data.curves[-1].values == [0.9]


def test_plot_marks_cut_trials(real_study: optuna.Study) -> None:
    figure = plot_intermediate_values(real_study)
    by_state: dict[str, list] = {}
    for trace in figure.data:
        by_state.setdefault(trace.name, []).append(trace)
    assert sorted(by_state) == ["complete", "pruned"]
    for trace in by_state["pruned"]:
        assert trace.line.dash == "dash" and trace.marker.symbol[-1] == "x"
    assert all(t.line.dash == "solid" for t in by_state["complete"])
    assert [t.showlegend for t in by_state["pruned"]] == [True, False]  # one legend entry a state
    assert figure.layout.shapes[0].x0 == MAX_STEPS  # the "full run" line
    assert "2 pruned trials cut short" in figure.layout.title.text
