"""The objective of a study: one trial = one real Lightning training run of the study's task."""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

import optuna
import pytorch_lightning as pl

from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.study._seeds import derived_seed

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec
    from optuna_bigmodel.tasks import Task, TaskBuild


class LightningObjective:
    """Builds the task with the trial's knob values, trains it and returns the monitored metric.

    Each trial gets its own seed, derived from the study seed and the trial number, recorded in the
    trial with the device it ran on and, where the task knows it, the best achievable value.
    """

    def __init__(self, spec: StudySpec, task: Task) -> None:
        self.spec = spec
        self.task = task

    def __call__(self, trial: optuna.Trial) -> float:
        seed = derived_seed(self.spec.seed, trial.number)
        params = params_for_trial(self.spec.knobs, trial)
        built = self._build(params, seed)
        pruning = OptunaPruning(trial, monitor=self.spec.metric)
        trainer = self._trainer(pruning)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("device", str(trainer.strategy.root_device))
        if built.optimum is not None:
            trial.set_user_attr("optimum", built.optimum)
        trainer.fit(built.module, datamodule=built.datamodule)
        pruning.check_pruned()
        return self._final_value(trainer)

    def _build(self, params: dict[str, Any], seed: int) -> TaskBuild:
        pl.seed_everything(seed, workers=True, verbose=False)
        return self.task.build(params, self.spec.task.model, self.spec.task.data, seed)

    def _trainer(self, pruning: OptunaPruning) -> pl.Trainer:
        settings = self.spec.trainer
        return pl.Trainer(
            max_steps=settings.max_steps,
            max_epochs=settings.max_epochs,
            val_check_interval=settings.val_check_interval,
            check_val_every_n_epoch=None,  # so val_check_interval counts steps across epochs
            devices=settings.devices,
            accelerator=settings.accelerator,
            precision=settings.precision,
            callbacks=[pruning],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=settings.progress_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            deterministic=True,
        )

    def _final_value(self, trainer: pl.Trainer) -> float:
        metric = trainer.callback_metrics.get(self.spec.metric)
        if metric is None:
            raise RuntimeError(f"the run ended without logging {self.spec.metric!r}")
        value = float(metric)
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.spec.metric} is {value}")
        return value


def quiet_lightning() -> None:
    """Lightning announces devices and seeds at every trial; keep its warnings, drop the chatter."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 warns about its own use of torch's pytree at every trial.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
