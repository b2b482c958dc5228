"""Report the monitored metric to an Optuna trial after each validation and stop losing runs."""

from __future__ import annotations

import atexit
import math
from dataclasses import dataclass
from typing import Any

import optuna
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies.launchers.multiprocessing import (
    _MultiProcessingLauncher,
)

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks._ranks import (
    destroy_process_group,
    gather_from_ranks,
    on_rank_zero,
)

NONFINITE_POLICIES = ("prune", "fail")
# The `fail_reason` a non-finite loss gives a failed trial (the study loop stores it).
NONFINITE_REASON = "nonfinite"


@dataclass(frozen=True)
class _Decision:
    """What global rank 0 decided after asking the trial; broadcast so every rank applies it."""

    action: str = "continue"  # "continue", "prune" or "fail"
    reason: str = ""
    detail: str = ""


class OptunaPruning(pl.Callback):
    """Reports `monitor` to `trial` after each validation and stops the run when it is pruned.

    Drop-in for optuna-integration's ``PyTorchLightningPruningCallback(trial, monitor)`` that works
    with the standalone ``pytorch_lightning`` package and under DDP:

    - The value is reported at the trainer's global step, so several validations per epoch each get
      a step of their own, and no step is reported twice (also after a resume).
    - Under DDP every rank takes part in each exchange, even a rank that did not log `monitor`: the
      reported value is the mean over ranks, only global rank 0 talks to the trial, and its decision
      is broadcast, so all ranks stop at the same step. A metric missing on some rank is an error on
      every rank (naming the ranks) instead of a hang.
    - A non-finite metric or training loss stops the run as pruned or failed (`on_nonfinite`).
    - The step and reason of a stop are stored in the trial's user attributes (``pruned_at_step``
      and ``pruned_reason``, or ``fail_reason`` and ``fail_detail``).

    `final_value()` after `fit` gives the value the trial ends with, or raises `optuna.TrialPruned`
    (or `optuna_bigmodel.study.TrialFailure` for a non-finite loss with ``on_nonfinite="fail"``).
    The study runner of this package calls it for you.

    Example:
        .. code-block:: python

            def objective(trial):
                module = MyModule(lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True))
                pruning = OptunaPruning(trial, monitor="val_loss")
                trainer = pl.Trainer(max_steps=500, val_check_interval=50, callbacks=[pruning])
                trainer.fit(module, datamodule=data)
                return pruning.final_value()  # raises optuna.TrialPruned if the run was pruned

    Args:
        trial: The trial to report to. Under DDP only global rank 0 uses it; other ranks may pass
            the stand-in `optuna_bigmodel.study.ask_on_rank_zero` gives them.
        monitor: The name of a metric logged during validation (``self.log(monitor, ...)``).
        on_nonfinite: ``"prune"`` or ``"fail"``: how a trial whose metric or loss becomes NaN or
            infinite ends.
        check_loss_every_n_steps: How often the training loss is checked for non-finite values
            (a device sync, and under DDP one tiny all-reduce, per check); 0 checks the monitored
            metric only.

    Note:
        With ``strategy="ddp_spawn"`` the callback runs in copies made in the spawned processes:
        the trial must live in a storage every process can reach (SQLite file, database, journal
        file); an in-memory study is refused. `final_value()` and `check_pruned()` in the parent
        then read the outcome back from the storage.
    """

    def __init__(
        self,
        trial: optuna.trial.BaseTrial,
        monitor: str,
        *,
        on_nonfinite: str = "prune",
        check_loss_every_n_steps: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise BadInputError(f"monitor: expected a metric name, got {monitor!r}")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise BadInputError(f"on_nonfinite: expected 'prune' or 'fail', got {on_nonfinite!r}")
        if not _is_count(check_loss_every_n_steps):
            raise BadInputError(
                "check_loss_every_n_steps: expected an integer >= 0, "
                f"got {check_loss_every_n_steps!r}"
            )
        self.trial = trial
        self.monitor = monitor
        self.on_nonfinite = on_nonfinite
        self.check_loss_every_n_steps = check_loss_every_n_steps
        self.reported_steps: list[int] = []
        self.value: float | None = None  # the last reported value (the mean over ranks)
        self.stopped_at_step: int | None = None
        self.stop = _Decision()
        self._fitted_here = False

    @property
    def pruned(self) -> bool:
        return self.stop.action == "prune"

    @property
    def failed(self) -> bool:
        return self.stop.action == "fail"

    @property
    def pruned_at_step(self) -> int | None:
        return self.stopped_at_step if self.pruned else None

    @property
    def pruned_reason(self) -> str | None:
        return self.stop.reason if self.pruned else None

    def check_pruned(self) -> None:
        """Raises `optuna.TrialPruned` if the run was pruned (`TrialFailure` if it failed)."""
        if not self._fitted_here:
            self._load_outcome()
        if self.pruned:
            raise optuna.TrialPruned(f"pruned at step {self.stopped_at_step}: {self.stop.reason}")
        if self.failed:
            # Imported here: the study package imports this one.
            from optuna_bigmodel.study._loop import TrialFailure

            raise TrialFailure(NONFINITE_REASON, self.stop.detail)

    def final_value(self) -> float:
        """The value the trial ends with: the last reported one, the mean over ranks.

        Raises:
            optuna.TrialPruned: The pruner (or a non-finite value) stopped the run.
            TrialFailure: A non-finite value stopped the run and `on_nonfinite` is ``"fail"``.
            RuntimeError: No validation reported a value.
        """
        self.check_pruned()
        if self.value is None:
            raise RuntimeError(f"the run ended without reporting {self.monitor!r} to the trial")
        return self.value

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Under ddp_spawn / ddp_fork these hooks run in copies in other processes.
        if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher):
            _refuse_in_memory(self.trial)
        if trainer.world_size > 1:
            # A gloo group still alive when the interpreter exits sometimes aborts the process
            # ("terminate called without an active exception"); ddp_spawn then fails the fit and
            # Lightning's ddp launcher kills rank 0. Destroying it first avoids that.
            atexit.unregister(destroy_process_group)
            atexit.register(destroy_process_group)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fitted_here = True

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or self.stop.action != "continue" or step in self.reported_steps:
            return
        value = self._value_over_ranks(trainer)
        decision = on_rank_zero(trainer, self._report, value, step)
        if math.isfinite(value):  # a non-finite value stops the run without being reported
            self.reported_steps.append(step)
            self.value = value
        self._apply(trainer, step, decision)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        every = self.check_loss_every_n_steps
        if every == 0 or self.stop.action != "continue" or trainer.global_step % every:
            return
        if not _any_rank(trainer, _loss_is_nonfinite(outputs)):
            return
        step = trainer.global_step
        detail = f"the training loss is not finite at step {step}"
        stop = self._stop_on_rank_zero
        decision = on_rank_zero(trainer, stop, self.on_nonfinite, "non-finite loss", step, detail)
        self._apply(trainer, step, decision)

    def state_dict(self) -> dict[str, Any]:
        return {
            "reported_steps": list(self.reported_steps),
            "value": self.value,
            "stopped_at_step": self.stopped_at_step,
            "stop": (self.stop.action, self.stop.reason, self.stop.detail),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reported_steps = list(state_dict["reported_steps"])
        self.value = state_dict["value"]
        self.stopped_at_step = state_dict["stopped_at_step"]
        self.stop = _Decision(*state_dict["stop"])

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the trainer with its callbacks into each process it starts.
        _refuse_in_memory(self.trial)
        return self.__dict__.copy()

    def _value_over_ranks(self, trainer: pl.Trainer) -> float:
        metric = trainer.callback_metrics.get(self.monitor)
        values = gather_from_ranks(trainer, None if metric is None else float(metric))
        missing = [rank for rank, value in enumerate(values) if value is None]
        if missing:
            raise self._missing_metric(trainer, missing)
        return math.fsum(values) / len(values)  # type: ignore[arg-type]

    def _missing_metric(self, trainer: pl.Trainer, ranks: list[int]) -> BadInputError:
        available = ", ".join(sorted(trainer.callback_metrics)) or "none"
        where = ""
        if trainer.world_size > 1:
            where = f" on global rank(s) {', '.join(map(str, ranks))} of {trainer.world_size}"
        return BadInputError(
            f"monitor: the metric {self.monitor!r} was not logged during validation{where}; "
            f"logged metrics on rank {trainer.global_rank}: {available}"
        )

    def _report(self, value: float, step: int) -> _Decision:
        """Global rank 0 only: reports the value and asks the pruner."""
        if not math.isfinite(value):
            detail = f"{self.monitor} is {value} at step {step}"
            reason = f"non-finite {self.monitor}"
            return self._stop_on_rank_zero(self.on_nonfinite, reason, step, detail)
        self.trial.report(value, step)
        if self.trial.should_prune():
            return self._stop_on_rank_zero("prune", "pruner", step, "")
        return _Decision()

    def _stop_on_rank_zero(self, action: str, reason: str, step: int, detail: str) -> _Decision:
        if action == "prune":
            self.trial.set_user_attr("pruned_at_step", step)
            self.trial.set_user_attr("pruned_reason", reason)
        else:
            self.trial.set_user_attr("fail_reason", NONFINITE_REASON)
            self.trial.set_user_attr("fail_detail", detail)
        return _Decision(action, reason, detail)

    def _apply(self, trainer: pl.Trainer, step: int, decision: _Decision) -> None:
        if decision.action == "continue":
            return
        self.stop = decision
        self.stopped_at_step = step
        trainer.should_stop = True

    def _load_outcome(self) -> None:
        """Reads what the ranks stored, for a callback whose hooks ran in other processes."""
        storage = getattr(self.trial, "storage", None)
        trial_id = getattr(self.trial, "_trial_id", None)
        if storage is None or trial_id is None:
            return
        frozen = storage.get_trial(trial_id)
        if frozen.intermediate_values:
            self.reported_steps = sorted(frozen.intermediate_values)
            self.value = frozen.intermediate_values[self.reported_steps[-1]]
        attrs = frozen.user_attrs
        if "pruned_at_step" in attrs:
            self.stopped_at_step = attrs["pruned_at_step"]
            self.stop = _Decision("prune", attrs.get("pruned_reason", ""))
        elif attrs.get("fail_reason") == NONFINITE_REASON:
            self.stop = _Decision("fail", "non-finite", attrs.get("fail_detail", ""))


def _loss_is_nonfinite(outputs: Any) -> bool:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if not isinstance(loss, torch.Tensor):
        return False  # manual optimisation returns nothing to check
    return not bool(torch.isfinite(loss.detach()).all())


def _any_rank(trainer: pl.Trainer, flag: bool) -> bool:
    if trainer.world_size == 1:
        return flag
    return trainer.strategy.reduce_boolean_decision(flag, all=False)


def _refuse_in_memory(trial: Any) -> None:
    if isinstance(getattr(trial, "storage", None), optuna.storages.InMemoryStorage):
        raise BadInputError(
            "trial: its study is in memory, so the copies of the callback that ddp_spawn (or "
            "ddp_fork) runs in other processes cannot report to it; store the study in a file or "
            "database (e.g. storage='sqlite:///study.db', opened with "
            "optuna_bigmodel.study.open_storage), or use strategy='ddp'"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

