"""Distance to the known optimum: how close tuning got, where the task knows the best achievable
value (the synthetic language's entropy rate, for example)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from optuna_bigmodel.visualization import _trials


@dataclass(frozen=True)
class OptimumGapData:
    """How far each complete trial's value is from the optimum, in the metric's own units."""

    optimum: float | None  # None: the task does not know it; then the lists are empty
    numbers: list[int]  # complete trials, in trial order
    gaps: list[float]  # value - optimum when minimising, optimum - value when maximising
    best_gaps: list[float]  # the smallest gap so far
    metric: str


def optimum_gap_data(study: optuna.Study) -> OptimumGapData:
    """Computes each complete trial's distance to the best achievable value.

    A gap is positive when the trial is worse than the optimum; a small negative gap means the
    validation estimate happened to beat it (finite-sample noise).

    Example:
        .. code-block:: python

            data = optimum_gap_data(study)
            if data.optimum is not None:
                print(f"best trial is {data.best_gaps[-1]:.4f} from the best achievable value")
    """
    optimum = _trials.optimum(study)
    metric = _trials.objective_name(study, 0) if len(study.directions) == 1 else "objective"
    if optimum is None:
        return OptimumGapData(None, [], [], [], metric)
    sign = 1.0 if _trials.is_minimize(study, 0) else -1.0
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    gaps = [sign * (float(t.values[0]) - optimum) for t in trials]
    best = list(itertools.accumulate(gaps, min))
    return OptimumGapData(optimum, [t.number for t in trials], gaps, best, metric)


def plot_optimum_gap(study: optuna.Study) -> go.Figure:
    """Distance to the optimum per trial and the best so far; log scale when every gap is > 0."""
    data = optimum_gap_data(study)
    figure = go.Figure()
    figure.add_scatter(x=data.numbers, y=data.gaps, mode="markers", name="trial")
    figure.add_scatter(x=data.numbers, y=data.best_gaps, mode="lines", name="best so far")
    positive = bool(data.gaps) and min(data.gaps) > 0
    title = "Distance to the best achievable value"
    if data.optimum is not None:
        title += f" ({data.metric} {data.optimum:.6g})"
    figure.update_layout(
        title=title,
        xaxis=_trials.trial_axis(data.numbers),
        yaxis_title=f"distance of {data.metric} from it",
        yaxis_type="log" if positive else "linear",
    )  # fmt: skip
    return figure
