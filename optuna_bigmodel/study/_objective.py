"""The objective of a study: one trial = one real Lightning training run of the study's task."""

from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.study._ranks import train_on_ranks
from optuna_bigmodel.study._seeds import derived_seed
from optuna_bigmodel.study._training import (
    processes_per_trial,
    quiet_lightning,
    train_trial,
)

if TYPE_CHECKING:
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
    """

    def __init__(self, spec: StudySpec, task: Task) -> None:
        self.spec = spec
        self.task = task

    def __call__(self, trial: optuna.Trial) -> float:
        seed = derived_seed(self.spec.seed, trial.number)
        params = params_for_trial(self.spec.knobs, trial)
        trial.set_user_attr("seed", seed)
        settings = self.spec.trainer
        n_ranks = processes_per_trial(settings)
        if settings.strategy == "ddp_spawn":
            outcome = train_trial(self.spec, self.task, params, seed, trial, strategy="ddp_spawn")
        elif n_ranks > 1:
            outcome = train_on_ranks(self.spec, params, seed, trial, n_ranks)
        else:
            outcome = train_trial(self.spec, self.task, params, seed, trial, strategy="auto")
        return outcome.result()
