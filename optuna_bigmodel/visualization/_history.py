"""The optimisation history: each trial's value, the best so far and, if known, the optimum."""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from optuna_bigmodel.visualization import _trials


@dataclass(frozen=True)
class HistoryData:
    """What the history plot draws, computed from a study without plotting anything."""

    numbers: list[int]  # trial numbers of complete and pruned trials, in order
    values: list[float]  # their values (a pruned trial's last reported value)
    states: list[str]
    best_so_far: list[float]  # best complete value among trials up to and including this one
    optimum: float | None  # best achievable value, when the task knows it
    direction: str
    n_failed: int
    metric: str = "objective value"
    n_running: int = 0


def history_data(study: optuna.Study, objective: int | None = None) -> HistoryData:
    """Computes the data of the history plot.

    Args:
        study: Any Optuna study; running, pruned and failed trials are allowed.
        objective: Which objective of a multi-objective study (0, 1, ...); leave it out for a study
            with one objective.

    Example:
        .. code-block:: python

            data = history_data(study)
            print(data.best_so_far[-1], data.optimum)
    """
    index = _trials.objective_index(study, objective, "history")
    minimize = _trials.is_minimize(study, index)
    all_trials = study.get_trials(deepcopy=False)
    scored = [(t, v) for t in all_trials if (v := _trials.trial_value(t, index)) is not None]
    best: list[float] = []
    best_value: float | None = None
    for trial, value in scored:
        if trial.state == TrialState.COMPLETE:
            best_value = _trials.better(best_value, value, minimize)
        best.append(math.nan if best_value is None else best_value)
    return HistoryData(
        numbers=[t.number for t, _ in scored],
        values=[v for _, v in scored],
        states=[t.state.name for t, _ in scored],
        best_so_far=best,
        optimum=_trials.optimum(study),
        direction="minimize" if minimize else "maximize",
        n_failed=sum(t.state == TrialState.FAIL for t in all_trials),
        metric=_trials.objective_name(study, index),
        n_running=sum(t.state == TrialState.RUNNING for t in all_trials),
    )


def plot_history(study: optuna.Study, objective: int | None = None) -> go.Figure:
    """The optimisation history as a plotly figure (see `history_data`)."""
    data = history_data(study, objective)
    figure = go.Figure()
    for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x")):
        points = [(n, v) for n, v, s in zip(data.numbers, data.values, data.states) if s == state]
        if points:
            x, y = zip(*points)
            figure.add_scatter(x=x, y=y, mode="markers", name=state.lower(), marker_symbol=symbol)
    figure.add_scatter(x=data.numbers, y=data.best_so_far, mode="lines", name="best so far")
    if data.optimum is not None:
        figure.add_hline(y=data.optimum, line_dash="dot", annotation_text="best achievable")
    figure.update_layout(
        title=_title(study, data), xaxis=_trials.trial_axis(data.numbers), yaxis_title=data.metric
    )
    return figure


def _title(study: optuna.Study, data: HistoryData) -> str:
    title = f"Optimisation history of {study.study_name}"
    failed = "1 failed trial" if data.n_failed == 1 else f"{data.n_failed} failed trials"
    notes = [f"{failed} not shown"] if data.n_failed else []
    notes += [f"{data.n_running} still running"] if data.n_running else []
    return f"{title} ({'; '.join(notes)})" if notes else title
