"""Compute spent against the best value so far: what the study paid for its result, and what
pruning saved.

A trial's cost is the training steps it spent: its `compute_steps` record, else the last step it
reported. Pruned and failed trials cost what they spent before they stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from optuna_bigmodel.visualization import _trials


@dataclass(frozen=True)
class ComputeData:
    """What the compute plot draws; trials are in the order they finished."""

    numbers: list[int]  # finished trials: complete, pruned and failed
    states: list[str]
    steps: list[int]  # training steps each trial spent
    values: list[float | None]  # each trial's value (a pruned trial's last report; None if failed)
    cumulative: list[int]  # steps the study had spent when each trial finished
    best_so_far: list[float | None]  # best complete value at that point (None before the first)
    max_steps: int | None  # steps of a full trial, when the spec says it
    running_steps: int  # spent so far by trials still running
    direction: str
    metric: str

    @property
    def total_steps(self) -> int:
        """Training steps the study spent, running trials included."""
        return (self.cumulative[-1] if self.cumulative else 0) + self.running_steps

    @property
    def saved_by_pruning(self) -> int | None:
        """Steps that pruned trials did not run (a full trial's steps less those they spent)."""
        if self.max_steps is None:
            return None
        pruned = [s for s, state in zip(self.steps, self.states) if state == "PRUNED"]
        return sum(max(self.max_steps - s, 0) for s in pruned)


def compute_data(study: optuna.Study, objective: int | None = None) -> ComputeData:
    """Computes the compute-versus-best-value data of a study.

    Example:
        .. code-block:: python

            data = compute_data(study)
            print(f"{data.total_steps} steps spent, {data.saved_by_pruning} saved by pruning")
    """
    index = _trials.objective_index(study, objective, "compute")
    minimize = _trials.is_minimize(study, index)
    trials = _trials.in_finish_order(study.get_trials(deepcopy=False, states=_trials.FINISHED))
    steps = [_trials.compute_steps(t) for t in trials]
    cumulative, best, spent, best_value = [], [], 0, None
    for trial, cost in zip(trials, steps):
        spent += cost
        if trial.state == TrialState.COMPLETE:
            best_value = _trials.better(best_value, _trials.trial_value(trial, index), minimize)
        cumulative.append(spent)
        best.append(best_value)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return ComputeData(
        numbers=[t.number for t in trials],
        states=[t.state.name for t in trials],
        steps=steps,
        values=[_trials.trial_value(t, index) for t in trials],
        cumulative=cumulative,
        best_so_far=best,
        max_steps=_trials.max_steps(study),
        running_steps=sum(_trials.compute_steps(t) for t in running),
        direction="minimize" if minimize else "maximize",
        metric=_trials.objective_name(study, index),
    )


def plot_compute(study: optuna.Study, objective: int | None = None) -> go.Figure:
    """Best value so far against training steps spent, each trial marked where it finished."""
    data = compute_data(study, objective)
    figure = go.Figure()
    figure.add_scatter(
        x=data.cumulative, y=data.best_so_far, mode="lines", line_shape="hv", name="best so far"
    )
    for state, symbol in (("COMPLETE", "circle"), ("PRUNED", "x"), ("FAIL", "x-thin")):
        _add_trials(figure, data, state, symbol)
    figure.update_layout(
        title=f"Compute spent against best value so far: {_spent_text(data)}",
        xaxis_title="training steps spent by the study", yaxis_title=data.metric,
    )  # fmt: skip
    return figure


def _add_trials(figure: go.Figure, data: ComputeData, state: str, symbol: str) -> None:
    chosen = [i for i, s in enumerate(data.states) if s == state]
    if not chosen:
        return
    # A failed trial has no value: it sits on the best-so-far line, at the compute it used up.
    y = [data.values[i] if data.values[i] is not None else data.best_so_far[i] for i in chosen]
    figure.add_scatter(
        x=[data.cumulative[i] for i in chosen], y=y, mode="markers", name=state.lower(),
        marker_symbol=symbol, customdata=[[data.numbers[i], data.steps[i]] for i in chosen],
        hovertemplate="trial #%{customdata[0]}: %{customdata[1]} steps<br>"
        "value %{y:.4g}<extra></extra>",
    )  # fmt: skip


def _spent_text(data: ComputeData) -> str:
    text = f"{data.total_steps:,} steps"
    saved = data.saved_by_pruning
    if saved:
        text += f", pruning saved {saved:,} ({saved / (data.total_steps + saved):.0%})"
    return text
