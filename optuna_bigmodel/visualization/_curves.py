"""Learning curves: the metric each trial reported over training; pruned trials stop where cut."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import plotly.graph_objects as go

from optuna_bigmodel.visualization import _trials

# How each state's curves look: (line dash, marker at the last point, colour).
_STYLE = {
    "COMPLETE": ("solid", "circle", "#1f77b4"),
    "PRUNED": ("dash", "x", "#d62728"),
    "RUNNING": ("dot", "triangle-right", "#2ca02c"),
    "FAIL": ("dashdot", "x-thin", "#7f7f7f"),
}


@dataclass(frozen=True)
class Curve:
    """One trial's reported values, at the training steps where it reported them."""

    number: int
    state: str
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class CurvesData:
    """What the learning-curve plot draws."""

    curves: list[Curve]  # trials that reported at least one value, in trial order
    max_steps: int | None  # the length of a full trial, when the spec says it
    optimum: float | None
    metric: str

    def cut(self) -> list[Curve]:
        """The pruned trials' curves: each ends at the step where the pruner stopped it."""
        return [c for c in self.curves if c.state == "PRUNED"]


def curves_data(study: optuna.Study) -> CurvesData:
    """Computes the learning curves of every trial that reported intermediate values.

    Example:
        .. code-block:: python

            data = curves_data(study)
            print({c.number: c.steps[-1] for c in data.cut()})  # where each pruned trial stopped
    """
    curves = [
        Curve(t.number, t.state.name, sorted(t.intermediate_values), [
            float(t.intermediate_values[s]) for s in sorted(t.intermediate_values)
        ])
        for t in study.get_trials(deepcopy=False)
        if t.intermediate_values and t.state.name in _STYLE
    ]  # fmt: skip
    return CurvesData(
        curves=curves,
        max_steps=_trials.max_steps(study),
        optimum=_trials.optimum(study),
        metric=_trials.objective_name(study, 0) if len(study.directions) == 1 else "reported value",
    )


def plot_intermediate_values(study: optuna.Study) -> go.Figure:
    """Learning curves as a plotly figure: complete trials solid, pruned ones dashed and cut."""
    data = curves_data(study)
    figure = go.Figure()
    shown: set[str] = set()
    for curve in data.curves:
        dash, symbol, colour = _STYLE[curve.state]
        figure.add_scatter(
            x=curve.steps, y=curve.values, mode="lines+markers", name=curve.state.lower(),
            legendgroup=curve.state, showlegend=curve.state not in shown,
            line={"dash": dash, "color": colour, "width": 1.5},
            marker=_end_marker(symbol, colour, len(curve.steps)),
            hovertemplate=f"trial #{curve.number} ({curve.state.lower()})<br>"
            "step %{x}<br>value %{y:.4g}<extra></extra>",
        )  # fmt: skip
        shown.add(curve.state)
    if data.max_steps is not None:
        figure.add_vline(x=data.max_steps, line_dash="dot", annotation_text="full run")
    if data.optimum is not None:
        figure.add_hline(y=data.optimum, line_dash="dot", annotation_text="best achievable")
    figure.update_layout(
        title=f"Learning curves of {study.study_name} ({len(data.cut())} pruned trials cut short)",
        xaxis_title="training step", yaxis_title=data.metric,
    )  # fmt: skip
    return figure


def _end_marker(symbol: str, colour: str, n: int) -> dict[str, object]:
    # A large marker only where the curve ends, so a cut shows without cluttering the lines.
    return {
        "symbol": ["circle"] * (n - 1) + [symbol],
        "size": [4] * (n - 1) + [11],
        "color": colour,
    }
