"""What a trial cost, in training steps: the unit of a study's compute budget and of its reports."""

from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial


def trial_compute_steps(trial: FrozenTrial) -> int:
    """Training steps a trial spent: its ``compute_steps`` record (training and search batches of
    a learned run), else its last reported step; 0 for a trial that never trained."""
    recorded = trial.user_attrs.get("compute_steps")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) and recorded >= 0:
        return int(recorded)
    return max(trial.intermediate_values, default=0)


def spent_compute_steps(trials: Iterable[FrozenTrial]) -> int:
    """The training steps of finished trials (complete, pruned or failed) together."""
    return sum(trial_compute_steps(t) for t in trials if t.state.is_finished())
