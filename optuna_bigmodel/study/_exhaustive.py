"""Exhaustive search over many workers: every grid point queued once, each claimed by one worker.

Optuna's `GridSampler` lets each worker pick an unvisited point itself, and two workers that look
at the same moment pick the same point (we saw 1-2 duplicates in a 100-point grid with 2 workers).
Here the launcher queues the whole grid as WAITING trials before any worker starts, and workers
only claim queued trials (see `_loop.claim_queued_trial`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def queue_grid(study: optuna.Study, points: Sequence[dict[str, Any]]) -> int:
    """Queues each grid point not yet queued, running or evaluated; returns how many were queued.

    A point whose trials all failed is queued again, so running a study again completes its grid.
    """
    states = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=states)
    seen = {_key(t.params or _fixed_params(t)) for t in trials}
    added = 0
    for point in points:
        if _key(point) not in seen:
            study.enqueue_trial(point)
            seen.add(_key(point))
            added += 1
    return added


def _fixed_params(trial: FrozenTrial) -> dict[str, Any]:
    return trial.system_attrs.get("fixed_params", {})


def _key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


class QueueOnlySampler(BaseSampler):
    """Wraps a grid sampler for trials that all come from the queue.

    Everything is delegated except `after_trial`: Optuna's grid samplers call `study.stop()` there
    when the grid is exhausted, which only works inside `Study.optimize`; our loop stops by itself
    when the queue is empty.
    """

    def __init__(self, sampler: BaseSampler) -> None:
        self.inner = sampler

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None
