"""Optuna's own views of a study, drawn only where they have something to show.

Optuna's plot functions draw an empty figure (and log a warning) when a study lacks what they need;
a report instead says in words why a view is missing: no complete trial yet, one knob only, ...
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
import plotly.graph_objects as go
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel.visualization import _trials
from optuna_bigmodel.visualization._page import View


def varied_knobs(study: optuna.Study) -> list[str]:
    """Knobs sampled in every complete trial that took more than one value: what views can vary."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    space = optuna.search_space.intersection_search_space(complete) if complete else {}
    return [name for name in space if len({repr(t.params[name]) for t in complete}) > 1]


def importance_note(study: optuna.Study, objective: int = 0) -> str | None:
    """Why knob importances cannot be computed yet, or None when they can."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"needs at least 2 complete trials; the study has {len(complete)}"
    if not varied_knobs(study):
        return "no sampled knob took more than one value in the complete trials"
    if len({t.values[objective] for t in complete}) < 2:
        return "every complete trial has the same value, so no knob made a difference"
    return None


def knob_importances(study: optuna.Study, objective: int = 0) -> dict[str, float]:
    """How much each sampled knob mattered (fANOVA, seeded: the same study, the same answer).

    Empty when they cannot be computed yet (`importance_note` says why).
    """
    if importance_note(study, objective) is not None:
        return {}
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), params=varied_knobs(study),
            target=_target(study, objective),
        )  # fmt: skip
    except RuntimeError:  # fANOVA found no variance to explain in any of its trees
        return {}


def optuna_views(study: optuna.Study) -> list[View]:
    """Parameter importances, parallel coordinates and slice per objective, and the Pareto front."""
    n = len(study.directions)
    views = [_pareto(study)] if n > 1 else []
    views.append(_importances(study))
    for index in range(n):
        suffix, where = (
            ("", "") if n == 1 else (f"_{index}", f" ({_trials.objective_name(study, index)})")
        )
        for name, title, plot in _PER_OBJECTIVE:
            views.append(_view(study, index, name + suffix, title + where, plot))
    return views


def _importances(study: optuna.Study) -> View:
    title = "Knob importances (fANOVA)"
    note = importance_note(study)
    if note is None and not knob_importances(study):
        note = "fANOVA found no variance to explain"
    if note is not None:
        return View("param_importances", title, None, note)
    figure = optuna.visualization.plot_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=0), params=varied_knobs(study),
        target=None, target_name=_trials.objective_name(study, 0),
    )  # fmt: skip
    return View("param_importances", title, figure)


def _view(
    study: optuna.Study, index: int, name: str, title: str, plot: Callable[..., go.Figure]
) -> View:
    knobs = varied_knobs(study)
    if not knobs:
        return View(name, title, None, _no_knob_note(study))
    figure = plot(
        study, params=knobs, target=_target(study, index),
        target_name=_trials.objective_name(study, index),
    )  # fmt: skip
    return View(name, title, figure)


def _pareto(study: optuna.Study) -> View:
    title = "Pareto front"
    n = len(study.directions)
    if n > 3:
        return View("pareto_front", title, None, f"drawn for 2 or 3 objectives; the study has {n}")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return View("pareto_front", title, None, "no complete trial yet")
    names = [_trials.objective_name(study, i) for i in range(n)]
    return View(
        "pareto_front", title, optuna.visualization.plot_pareto_front(study, target_names=names)
    )


def _target(study: optuna.Study, index: int) -> Callable[[FrozenTrial], float] | None:
    if len(study.directions) == 1:
        return None
    return lambda trial: trial.values[index]


def _no_knob_note(study: optuna.Study) -> str:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return "no complete trial yet"
    return "no sampled knob took more than one value in the complete trials"


_PER_OBJECTIVE: list[tuple[str, str, Callable[..., go.Figure]]] = [
    ("parallel_coordinate", "Parallel coordinates", optuna.visualization.plot_parallel_coordinate),
    ("slice", "Slice: the objective against each knob", optuna.visualization.plot_slice),
]
