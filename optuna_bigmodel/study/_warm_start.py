"""Warm start: seed a study with the best configurations of an earlier one, as queued trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel._errors import BadInputError

if TYPE_CHECKING:
    from optuna_bigmodel.knobs import Knob


def warm_start(
    study: optuna.Study, source: optuna.Study, knobs: Sequence[Knob], top_k: int = 3
) -> list[dict[str, Any]]:
    """Queues the `top_k` best complete trials of `source` in `study`; returns the queued params.

    The source may tune another model or another space: only values of knobs that this study
    samples, and that lie inside their declared space, are carried over; the sampler picks the
    rest. Configurations already queued or evaluated in `study` are not queued twice.
    """
    if top_k < 1:
        raise BadInputError(f"warm_start_top: expected an integer >= 1, got {top_k!r}")
    by_name = {knob.name: knob for knob in knobs if knob.is_sampled}
    queued = []
    for trial in best_trials(source, top_k):
        params = {k: v for k, v in trial.params.items() if k in by_name and by_name[k].contains(v)}
        if params:
            origin = {"warm_start_from": f"{source.study_name}#{trial.number}"}
            study.enqueue_trial(params, user_attrs=origin, skip_if_exists=True)
            queued.append(params)
    return queued


def best_trials(study: optuna.Study, top_k: int) -> list[FrozenTrial]:
    """The `top_k` complete trials of a single-objective study, best first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(complete, key=lambda t: t.value, reverse=reverse)[:top_k]
