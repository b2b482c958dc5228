"""The objective of a study: one trial = one real Lightning training run of the study's task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import optuna

from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.study._checkpoints import (
    Resume,
    checkpoints_root,
    find_resume,
    record_resume,
    removed_when_done,
    retried_trials,
)
from optuna_bigmodel.study._ranks import train_on_ranks
from optuna_bigmodel.study._seeds import derived_seed
from optuna_bigmodel.study._training import (
    TrialOutcome,
    processes_per_trial,
    quiet_lightning,
    train_trial,
)

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from optuna_bigmodel.knobs import Knob
    from optuna_bigmodel.spec import StudySpec
    from optuna_bigmodel.tasks import Task

__all__ = ["LightningObjective", "quiet_lightning"]


class LightningObjective:
    """Builds the task with the trial's knob values, trains it and returns the monitored metric.

    Each trial gets its own seed, derived from the study seed and the trial number, recorded in the
    trial with the device it ran on and, where the task knows it, the best achievable value.

    The parameters are sampled once, here, in the process that owns the trial. A trial on several
    devices (``trainer.devices`` > 1) runs DDP: with ``trainer.strategy`` ``auto`` or ``ddp`` this
    process starts one rank process per device and alone talks to the storage (see
    ``optuna_bigmodel.study._ranks``); with ``ddp_spawn`` Lightning spawns the ranks and rank 0
    reports through its own connection to the storage. Either way a pruned trial raises
    `optuna.TrialPruned` here, and a failed one `TrialFailure` (``oom``, ``nonfinite``).

    A retry of an interrupted or dead worker's trial resumes from the newest checkpoint of the
    trial(s) it retries, with that trial's seed (see ``optuna_bigmodel.study._checkpoints``).

    Note:
        A trial on several rank processes (``devices`` > 1 without ``ddp_spawn``) saves
        checkpoints but its retries train from scratch: the rank processes are not given the
        checkpoint yet.
    """

    def __init__(
        self, spec: StudySpec, task: Task, knobs: Sequence[Knob] | None = None
    ) -> None:
        self.spec = spec
        self.task = task
        # The declared knobs plus any derived from the model (see inner.study_knobs).
        self.knobs = tuple(spec.knobs if knobs is None else knobs)

    def __call__(self, trial: optuna.Trial) -> float:
        params = params_for_trial(self.knobs, trial)
        retried = retried_trials(trial)
        resume = self._resume(trial, retried)
        seed = derived_seed(self.spec.seed, trial.number)
        if resume is not None and resume.seed is not None:
            seed = resume.seed  # it continues that run: same seed, same data order
        trial.set_user_attr("seed", seed)
        numbers = [trial.number, *(t.number for t in retried)]
        with removed_when_done(self.spec.run_dir, self.spec.name, numbers):
            outcome = self._train(trial, params, seed, resume)
        return outcome.result()

    def _resume(self, trial: optuna.Trial, retried: list[FrozenTrial]) -> Resume | None:
        """Where a retry resumes (None: from scratch, or not a retry), recorded in the trial."""
        if not retried:
            return None
        resume = find_resume(self.spec.run_dir, self.spec.name, retried)
        numbers = ", ".join(str(t.number) for t in retried)
        where = checkpoints_root(self.spec.run_dir, self.spec.name)
        record_resume(trial, retried, resume, f"no checkpoint of trial(s) {numbers} in {where}")
        return resume

    def _train(
        self, trial: optuna.Trial, params: Mapping[str, Any], seed: int, resume: Resume | None
    ) -> TrialOutcome:
        ckpt_path = None if resume is None else resume.path
        if self.spec.trainer.strategy == "ddp_spawn":
            strategy = "ddp_spawn"
        elif self._on_rank_processes():
            n_ranks = processes_per_trial(self.spec.trainer)
            return train_on_ranks(self.spec, params, seed, trial, n_ranks, ckpt_path)
        else:
            strategy = "auto"
        return train_trial(
            self.spec, self.task, params, seed, trial, strategy=strategy, ckpt_path=ckpt_path
        )

    def _on_rank_processes(self) -> bool:
        settings = self.spec.trainer
        return settings.strategy != "ddp_spawn" and processes_per_trial(settings) > 1
