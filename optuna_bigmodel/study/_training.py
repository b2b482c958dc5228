"""One trial's training run, here or as one rank of several: build, fit, say how it ended."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
import pytorch_lightning as pl
import torch

from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.inner import prepare_trial
from optuna_bigmodel.study._checkpoints import TrialCheckpoint, checkpoint_dir
from optuna_bigmodel.study._loop import TrialFailure, graceful_stop

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec, TrainerSpec
    from optuna_bigmodel.tasks import Task

OOM_REASON = "oom"


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial's training run ended: ``complete`` with a value, ``pruned``, or ``failed``.

    Plain data, so that a rank process can send it to the process that owns the trial.
    """

    state: str
    value: float | None = None
    reason: str = ""
    detail: str = ""

    def result(self) -> float:
        """The value, or the exception by which the study loop ends the trial."""
        if self.state == "pruned":
            raise optuna.TrialPruned(self.detail)
        if self.state == "failed":
            raise TrialFailure(self.reason, self.detail)
        assert self.value is not None, "a complete outcome carries its value"
        return self.value


def train_trial(
    spec: StudySpec,
    task: Task,
    params: Mapping[str, Any],
    seed: int,
    trial: optuna.trial.BaseTrial,
    *,
    rank_zero: bool = True,
    ckpt_path: str | None = None,
    **trainer_overrides: Any,
) -> TrialOutcome:
    """Trains one trial (or this rank's share of it) and says how it ended.

    A CUDA out-of-memory error ends it as failed with reason ``oom`` after the memory it held is
    given back, so the next trial in this process starts from an empty device. `rank_zero` says
    whether this process records the trial's device and optimum (only one rank does). With
    `ckpt_path` training resumes from that Lightning checkpoint (see `study._checkpoints`).
    """
    try:
        return _fit(spec, task, params, seed, trial, rank_zero, ckpt_path, trainer_overrides)
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        detail = _first_line(err)
    # Outside the except block: the traceback, and the model its frames hold, are gone by now.
    free_device_memory()
    return TrialOutcome("failed", reason=OOM_REASON, detail=detail)


def _fit(
    spec: StudySpec,
    task: Task,
    params: Mapping[str, Any],
    seed: int,
    trial: optuna.trial.BaseTrial,
    rank_zero: bool,
    ckpt_path: str | None,
    trainer_overrides: dict[str, Any],
) -> TrialOutcome:
    pl.seed_everything(seed, workers=True, verbose=False)
    # The trial's model and data, and its inner loop (learned knobs, gates, early stopping).
    try:
        prepared = prepare_trial(spec, task, params, seed, trial if rank_zero else None)
    except optuna.TrialPruned as err:  # a sampled structure over the size budget: nothing to train
        return TrialOutcome("pruned", detail=str(err))
    built = prepared.build
    pruning = OptunaPruning(trial, spec.metric, on_nonfinite=spec.trainer.on_nonfinite)
    folder = checkpoint_dir(spec.run_dir, spec.name, trial.number)
    checkpoint = TrialCheckpoint(folder, trial.number)
    callbacks = (checkpoint, *prepared.callbacks)
    trainer = make_trainer(spec.trainer, pruning, *callbacks, **trainer_overrides)
    if rank_zero:
        _record_run(trial, trainer, built.optimum)
    # A signal stops the run between steps, with a checkpoint, when it trains in this process only
    # (DDP ranks are stopped by their launcher; Lightning checkpoints them on SIGTERM).
    with graceful_stop(enabled=trainer.strategy.launcher is None):
        trainer.fit(built.module, datamodule=built.datamodule, ckpt_path=ckpt_path)
    if rank_zero and ckpt_path is not None:
        trial.set_user_attr("trained_steps", trainer.global_step - checkpoint.first_step)
    outcome = outcome_of(pruning)
    if outcome.state == "complete" and spec.trainer.test_at_end:
        _test(trainer, built, trial if rank_zero else None)
    return outcome


def _test(trainer: pl.Trainer, built: Any, trial: optuna.trial.BaseTrial | None) -> None:
    """Scores the trained model on the test split once, recorded as the trial's ``test`` attr.

    The study never looks at it: the sampler and pruner see validation values only, so the test
    numbers of the best trial stay an honest estimate.
    """
    results = trainer.test(built.module, datamodule=built.datamodule, verbose=False)
    if trial is not None and results:
        trial.set_user_attr("test", {name: float(value) for name, value in results[0].items()})


def _record_run(trial: optuna.trial.BaseTrial, trainer: pl.Trainer, optimum: float | None) -> None:
    trial.set_user_attr("device", str(trainer.strategy.root_device))
    if trainer.num_devices > 1:
        trial.set_user_attr("n_devices", trainer.num_devices)
    if optimum is not None:
        trial.set_user_attr("optimum", optimum)


def outcome_of(pruning: OptunaPruning) -> TrialOutcome:
    """What the pruning callback saw, as an outcome."""
    try:
        value = pruning.final_value()
    except optuna.TrialPruned as err:
        return TrialOutcome("pruned", detail=str(err))
    except TrialFailure as err:
        return TrialOutcome("failed", reason=err.reason, detail=err.detail)
    return TrialOutcome("complete", value)


def make_trainer(
    settings: TrainerSpec, pruning: OptunaPruning, *callbacks: pl.Callback, **overrides: Any
) -> pl.Trainer:
    """The Lightning trainer of a trial, from the study's trainer settings, with the pruning
    callback and any others."""
    kwargs: dict[str, Any] = {
        "max_steps": settings.max_steps,
        "max_epochs": settings.max_epochs,
        "val_check_interval": settings.val_check_interval,
        "check_val_every_n_epoch": None,  # so val_check_interval counts steps across epochs
        "devices": settings.devices,
        "accelerator": settings.accelerator,
        "precision": settings.precision,
        "callbacks": [pruning, *callbacks],
        "logger": False,
        "enable_checkpointing": True,  # TrialCheckpoint saves; Lightning adds no ModelCheckpoint
        "enable_progress_bar": settings.progress_bar,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "deterministic": True,
    }
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


def processes_per_trial(settings: TrainerSpec) -> int:
    """How many processes (one per device) a trial with these settings trains on."""
    if isinstance(settings.devices, int):
        return settings.devices
    if settings.accelerator in ("cpu", "mps") or not torch.cuda.is_available():
        return 1
    return max(1, torch.cuda.device_count())


def is_out_of_memory(err: BaseException) -> bool:
    # ddp_spawn re-raises a rank's error as a ProcessRaisedException that quotes it.
    return isinstance(err, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(err)


def free_device_memory() -> None:
    """Collects the garbage of a finished trial and returns the cached CUDA blocks to the device."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def quiet_lightning() -> None:
    """Lightning announces devices and seeds at every trial; keep its warnings, drop the chatter."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning 2.6 on torch 2.13 warns about its own use of torch's pytree at every trial.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if "out of memory" in line]
    return (lines or [type(err).__name__])[0].strip()
