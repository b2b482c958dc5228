"""What every figure reads from a study: trial values, training steps spent, the spec's settings.

Trials written by our runner carry user attributes (`optimum`, `compute_steps`, `learned`,
`structure`); a study made some other way lacks some of them, and each reader then says "unknown"
(None) instead of failing, so a report can be drawn from any Optuna study.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study._compute import trial_compute_steps

SPEC_ATTR = "optuna_bigmodel.spec"  # where the runner keeps the study file, as a dict
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def objective_index(study: optuna.Study, objective: int | None, figure: str) -> int:
    """The objective a figure draws: the only one, or the one the caller named."""
    n = len(study.directions)
    if objective is None:
        if n != 1:
            raise BadInputError(
                f"{figure}: objective: this plot shows one objective and the study has several "
                f"({n}); pass objective=0..{n - 1}"
            )
        return 0
    if isinstance(objective, bool) or not isinstance(objective, int) or not 0 <= objective < n:
        raise BadInputError(
            f"{figure}: objective: expected an integer from 0 to {n - 1}, got {objective!r}"
        )
    return objective


def is_minimize(study: optuna.Study, index: int) -> bool:
    return study.directions[index] == StudyDirection.MINIMIZE


def objective_name(study: optuna.Study, index: int) -> str:
    """The metric's name: Optuna's metric names, else the spec's metric, else "objective i"."""
    names = study.metric_names
    if names is not None:
        return names[index]
    metric = spec_dict(study).get("metric")
    if len(study.directions) == 1 and isinstance(metric, str):
        return metric
    return "objective value" if len(study.directions) == 1 else f"objective {index}"


def trial_value(trial: FrozenTrial, index: int = 0) -> float | None:
    """A complete trial's value, or a pruned trial's last reported value; else None."""
    if trial.state == TrialState.COMPLETE and trial.values is not None:
        return float(trial.values[index])
    if trial.state == TrialState.PRUNED and trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def better(a: float | None, b: float | None, minimize: bool) -> float | None:
    """The better of two values, either of which may be missing."""
    if a is None or b is None:
        return b if a is None else a
    return min(a, b) if minimize else max(a, b)


def best_complete(study: optuna.Study, index: int = 0) -> FrozenTrial | None:
    """The complete trial with the best value of objective `index` (first on a tie), or None."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scored = [
        (v, t) for t in complete if (v := trial_value(t, index)) is not None and not math.isnan(v)
    ]
    if not scored:
        return None
    pick = min if is_minimize(study, index) else max
    return pick(scored, key=lambda value_trial: value_trial[0])[1]


def compute_steps(trial: FrozenTrial) -> int:
    """Training steps a trial spent: its `compute_steps` record, else its last reported step."""
    return trial_compute_steps(trial)


def in_finish_order(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Trials ordered by when they finished (workers in parallel finish out of number order)."""
    return sorted(
        trials, key=lambda t: (t.datetime_complete is None, t.datetime_complete, t.number)
    )


def optimum(study: optuna.Study) -> float | None:
    """The best achievable value of the metric, when the task knows it (single objective only)."""
    if len(study.directions) != 1:
        return None
    for trial in study.get_trials(deepcopy=False):
        value = trial.user_attrs.get("optimum")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def spec_dict(study: optuna.Study) -> dict[str, Any]:
    """The study file the runner stored in the study, or {} for a study made some other way."""
    spec = study.user_attrs.get(SPEC_ATTR)
    return spec if isinstance(spec, dict) else {}


def max_steps(study: optuna.Study) -> int | None:
    """Training steps of a full trial (the spec's trainer.max_steps), when known."""
    trainer = spec_dict(study).get("trainer")
    steps = trainer.get("max_steps") if isinstance(trainer, dict) else None
    return steps if isinstance(steps, int) and steps > 0 else None


def points(raw: Any) -> tuple[list[int], list[float]]:
    """Splits a recorded trajectory `[[step, value], ...]` into steps and values, in step order.

    Points that are not a pair of finite numbers are skipped: one bad record must not stop a report.
    """
    pairs = sorted(
        (int(p[0]), float(p[1]))
        for p in (raw if isinstance(raw, list) else [])
        if isinstance(p, (list, tuple)) and len(p) == 2 and _number(p[0]) and _number(p[1])
    )
    return [s for s, _ in pairs], [v for _, v in pairs]


def trial_axis(numbers: Sequence[int]) -> dict[str, Any]:
    """An x axis of trial numbers: whole numbers only, about ten ticks."""
    return {"title": {"text": "trial"}, "tick0": 0, "dtick": max(1, math.ceil(len(numbers) / 10))}


def fixed_knobs(study: optuna.Study) -> dict[str, Any]:
    """Knobs the spec fixed to one value (the study's sampler never sees them)."""
    knobs = spec_dict(study).get("knobs")
    return {
        name: knob.get("value")
        for name, knob in (knobs if isinstance(knobs, dict) else {}).items()
        if isinstance(knob, dict) and knob.get("mode") == "fixed"
    }


def number_or_none(value: Any) -> float | None:
    return float(value) if _number(value) else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
