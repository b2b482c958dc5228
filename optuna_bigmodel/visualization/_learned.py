"""Learned knobs over training: the learning rate (or any `learn`-mode knob) each trial learned.

A trial that learned knobs records them in its `learned` user attribute:
``{knob: {"final": value, "trajectory": [[step, value], ...]}}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optuna_bigmodel.visualization import _trials


@dataclass(frozen=True)
class Trajectory:
    """One knob's value over one trial's training."""

    number: int
    state: str
    steps: list[int]
    values: list[float]
    final: float | None  # the value the trial ended with (its record, else the last point)


@dataclass(frozen=True)
class LearnedData:
    """What the learned-knob plot draws: per knob, one trajectory per trial that learned it."""

    knobs: dict[str, list[Trajectory]]
    best_number: int | None  # the best complete trial, drawn on top
    log_scale: dict[str, bool]  # knobs whose declared space is logarithmic (e.g. the learning rate)


def learned_data(study: optuna.Study) -> LearnedData:
    """Collects the trajectories of learned knobs from every trial's `learned` record.

    Example:
        .. code-block:: python

            data = learned_data(study)
            for trajectory in data.knobs.get("lr", []):
                print(trajectory.number, trajectory.final)
    """
    knobs: dict[str, list[Trajectory]] = {}
    for trial in study.get_trials(deepcopy=False):
        record = trial.user_attrs.get("learned")
        for name, knob in (record if isinstance(record, dict) else {}).items():
            trajectory = _trajectory(trial, knob)
            if trajectory is not None:
                knobs.setdefault(str(name), []).append(trajectory)
    best = _trials.best_complete(study) if len(study.directions) == 1 else None
    return LearnedData(
        knobs=knobs,
        best_number=None if best is None else best.number,
        log_scale={name: _declared_log(study, name) for name in knobs},
    )


def plot_learned(study: optuna.Study) -> go.Figure:
    """Learned knobs over training as a plotly figure, one panel per knob (see `learned_data`)."""
    data = learned_data(study)
    names = list(data.knobs) or ["(no learned knob)"]
    figure = make_subplots(rows=len(names), cols=1, subplot_titles=names, shared_xaxes=True)
    for row, name in enumerate(data.knobs, start=1):
        for trajectory in data.knobs[name]:
            _add_trajectory(figure, trajectory, row, trajectory.number == data.best_number)
        if data.log_scale[name]:
            figure.update_yaxes(type="log", row=row, col=1)
    figure.update_xaxes(title_text="training step", row=len(names), col=1)
    figure.update_layout(
        title="Learned knobs over training (best trial bold)",
        height=max(350, 260 * len(names)), showlegend=False,
    )  # fmt: skip
    return figure


def _trajectory(trial: optuna.trial.FrozenTrial, knob: object) -> Trajectory | None:
    if not isinstance(knob, dict):
        return None
    steps, values = _trials.points(knob.get("trajectory"))
    final = _trials.number_or_none(knob.get("final"))
    if not steps and final is None:
        return None
    final = final if final is not None else values[-1]
    return Trajectory(trial.number, trial.state.name, steps, values, final)


def _declared_log(study: optuna.Study, name: str) -> bool:
    knobs = _trials.spec_dict(study).get("knobs")
    knob = knobs.get(name) if isinstance(knobs, dict) else None
    return bool(isinstance(knob, dict) and knob.get("log"))


def _add_trajectory(figure: go.Figure, trajectory: Trajectory, row: int, best: bool) -> None:
    figure.add_scatter(
        x=trajectory.steps, y=trajectory.values, mode="lines", row=row, col=1,
        name=f"trial #{trajectory.number}",
        line={"width": 3 if best else 1, "color": "#d62728" if best else None},
        opacity=1.0 if best else 0.55,
        hovertemplate=f"trial #{trajectory.number} ({trajectory.state.lower()})<br>"
        "step %{x}<br>value %{y:.4g}<extra></extra>",
    )  # fmt: skip
