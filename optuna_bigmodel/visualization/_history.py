"""The optimisation history: each trial's value, the best so far and, if known, the optimum."""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel._errors import BadInputError


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


def history_data(study: optuna.Study) -> HistoryData:
    """Computes the data of the history plot of a single-objective study."""
    if len(study.directions) != 1:
        raise BadInputError("history: this plot shows one objective; the study has several")
    minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
    trials = [t for t in study.get_trials(deepcopy=False) if _has_value(t)]
    best: list[float] = []
    for trial in trials:
        best.append(_better(best[-1] if best else math.nan, trial, minimize))
    return HistoryData(
        numbers=[t.number for t in trials],
        values=[float(_value(t)) for t in trials],
        states=[t.state.name for t in trials],
        best_so_far=best,
        optimum=_optimum(study),
        direction="minimize" if minimize else "maximize",
        n_failed=len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))),
    )


def plot_history(study: optuna.Study) -> go.Figure:
    """The optimisation history as a plotly figure (see `history_data`)."""
    data = history_data(study)
    figure = go.Figure()
    for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x")):
        points = [(n, v) for n, v, s in zip(data.numbers, data.values, data.states) if s == state]
        if points:
            x, y = zip(*points)
            figure.add_scatter(x=x, y=y, mode="markers", name=state.lower(), marker_symbol=symbol)
    figure.add_scatter(x=data.numbers, y=data.best_so_far, mode="lines", name="best so far")
    if data.optimum is not None:
        figure.add_hline(y=data.optimum, line_dash="dot", annotation_text="best achievable")
    title = f"Optimisation history of {study.study_name}"
    if data.n_failed:
        title += f" ({data.n_failed} failed trials not shown)"
    figure.update_layout(title=title, xaxis_title="trial", yaxis_title="objective value")
    return figure


def _has_value(trial: FrozenTrial) -> bool:
    return _value(trial) is not None


def _value(trial: FrozenTrial) -> float | None:
    if trial.state == TrialState.COMPLETE:
        return trial.value
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return trial.intermediate_values[max(trial.intermediate_values)]
    return None


def _better(best: float, trial: FrozenTrial, minimize: bool) -> float:
    if trial.state != TrialState.COMPLETE or trial.value is None:
        return best
    if math.isnan(best):
        return trial.value
    return min(best, trial.value) if minimize else max(best, trial.value)


def _optimum(study: optuna.Study) -> float | None:
    for trial in study.get_trials(deepcopy=False):
        if "optimum" in trial.user_attrs:
            return float(trial.user_attrs["optimum"])
    return None
