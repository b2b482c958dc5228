"""A one-line-per-trial progress display for a study, printed beside Lightning's progress bar."""

from __future__ import annotations

import sys
from collections import Counter
from typing import TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState


class StudyProgress:
    """Trial callback that prints trials done, best so far, pruned and failed after each trial.

    Counts are kept from the trials this process sees finish, plus those already in the study at
    start, so the display never re-reads the whole study.
    """

    def __init__(self, study: optuna.Study, total: int | None, stream: TextIO | None = None) -> None:
        finished = study.get_trials(deepcopy=False, states=_FINISHED)
        self.counts = Counter(t.state for t in finished)
        self.name = study.study_name
        self.total = total
        self.stream = stream or sys.stderr
        self.best: FrozenTrial | None = _best(study)
        self.minimize = study.direction == optuna.study.StudyDirection.MINIMIZE

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.counts[trial.state] += 1
        if trial.state == TrialState.COMPLETE and self._is_better(trial):
            self.best = trial
        print(self.line(trial), file=self.stream, flush=True)

    def line(self, trial: FrozenTrial) -> str:
        done = sum(self.counts.values())
        total = f"/{self.total}" if self.total else ""
        value = "" if trial.value is None else f" {trial.value:.4f}"
        best = "none yet"
        if self.best is not None and self.best.value is not None:
            best = f"{self.best.value:.4f} (trial {self.best.number})"
        return (
            f"[{self.name}] trial {trial.number} {trial.state.name}{value} | "
            f"best {best} | {done}{total} done: {self.counts[TrialState.COMPLETE]} complete, "
            f"{self.counts[TrialState.PRUNED]} pruned, {self.counts[TrialState.FAIL]} failed"
        )

    def _is_better(self, trial: FrozenTrial) -> bool:
        if self.best is None or self.best.value is None:
            return True
        assert trial.value is not None
        return trial.value < self.best.value if self.minimize else trial.value > self.best.value


_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _best(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial if len(study.directions) == 1 else None
    except ValueError:
        return None
