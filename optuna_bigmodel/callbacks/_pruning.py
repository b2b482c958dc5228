"""Report the monitored metric to an Optuna trial after each validation and stop losing runs."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytorch_lightning as pl

from optuna_bigmodel._errors import BadInputError


class OptunaPruning(pl.Callback):
    """Lightning callback that reports `monitor` to `trial` and stops the run when it is pruned.

    The value is reported at the trainer's global step, so several validations per epoch each get a
    step of their own. When the trial's pruner says so the trainer stops; the step and reason are
    recorded in the trial's user attributes, and `pruned` tells the caller to raise
    `optuna.TrialPruned` once `fit` has returned (the launcher of this package does it).

    Example:
        .. code-block:: python

            callback = OptunaPruning(trial, monitor="val_loss")
            trainer = pl.Trainer(callbacks=[callback], max_steps=200)
            trainer.fit(module, datamodule=data)
            callback.check_pruned()  # raises optuna.TrialPruned if the pruner stopped the run

    Note:
        This version talks to the trial from the process it runs in; distributed training (DDP)
        support is the subject of its own work item.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise BadInputError(f"monitor: expected a metric name, got {monitor!r}")
        self.trial = trial
        self.monitor = monitor
        self.reported_steps: list[int] = []
        self.pruned_at_step: int | None = None

    @property
    def pruned(self) -> bool:
        return self.pruned_at_step is not None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._report(trainer)

    def check_pruned(self) -> None:
        """Raises `optuna.TrialPruned` if the pruner stopped the run."""
        if self.pruned:
            raise optuna.TrialPruned(f"pruned at step {self.pruned_at_step}")

    def state_dict(self) -> dict[str, Any]:
        return {"reported_steps": list(self.reported_steps), "pruned_at_step": self.pruned_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reported_steps = list(state_dict["reported_steps"])
        self.pruned_at_step = state_dict["pruned_at_step"]

    def _report(self, trainer: pl.Trainer) -> None:
        step = trainer.global_step
        if step in self.reported_steps:
            return  # a validation at the same step (e.g. the end of fit) was already reported
        value = self._monitored_value(trainer)
        self.trial.report(value, step)
        self.reported_steps.append(step)
        if self.trial.should_prune() or not math.isfinite(value):
            self._stop(trainer, step, "pruner" if math.isfinite(value) else "non-finite metric")

    def _monitored_value(self, trainer: pl.Trainer) -> float:
        metric = trainer.callback_metrics.get(self.monitor)
        if metric is None:
            available = sorted(trainer.callback_metrics) or ["none"]
            raise BadInputError(
                f"monitor: the metric {self.monitor!r} was not logged during validation; "
                f"logged metrics: {', '.join(available)}"
            )
        return float(metric)

    def _stop(self, trainer: pl.Trainer, step: int, reason: str) -> None:
        self.pruned_at_step = step
        self.trial.set_user_attr("pruned_at_step", step)
        self.trial.set_user_attr("pruned_reason", reason)
        trainer.should_stop = True
