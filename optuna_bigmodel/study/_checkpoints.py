"""Lightning checkpoints of trials, so that a retry resumes where the trial it retries stopped.

Each trial saves into ``<run_dir>/<study>/checkpoints/trial-<number>/step-<global step>.ckpt``,
keeping only its newest file: at each validation, and when the worker is asked to stop (SIGINT or
SIGTERM) at the next clean point, after the current step or between validation batches. The
checkpoint is Lightning's plain dict plus ``checkpoint["optuna_bigmodel"]`` with the trial number
and the step. A worker killed outright (``kill -9``) loses the steps since the last validation.

A retry is a new trial (a new number) that names the trial it retries: ``retry_of`` (user attr) when
this package re-queued an interrupted trial, ``failed_trial`` / ``retry_history`` (system attrs)
when Optuna's `RetryHeartbeatStaleTrialCallback` re-queued a dead worker's trial. The chain is
followed back to the first trial; the newest checkpoint along it (highest step) is resumed.

When a trial ends for good (complete, pruned, or failed for a reason of its own) its folder and
those of the trials it retried are deleted: they are never resumed again. Set
``OPTUNA_BIGMODEL_KEEP_CHECKPOINTS=1`` to keep them (a complete trial's folder then holds the model
of its last validation).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from optuna_bigmodel.study._loop import interruption_for, stop_requested

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

_logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "optuna_bigmodel"
KEEP_ENV = "OPTUNA_BIGMODEL_KEEP_CHECKPOINTS"
_FILE = re.compile(r"^step-(\d+)\.ckpt$")


def checkpoints_root(run_dir: str, study_name: str) -> str:
    """The folder that holds one folder of checkpoints per trial of the study."""
    return os.path.abspath(os.path.join(run_dir, study_name, "checkpoints"))


def checkpoint_dir(run_dir: str, study_name: str, trial_number: int) -> str:
    """The folder of one trial's checkpoints."""
    return os.path.join(checkpoints_root(run_dir, study_name), f"trial-{trial_number}")


def latest_checkpoint(folder: str) -> tuple[int, str] | None:
    """The step and path of the newest checkpoint in `folder`, or None if it holds none."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return None
    steps = [(int(match[1]), name) for name in names if (match := _FILE.match(name))]
    if not steps:
        return None
    step, name = max(steps)
    return step, os.path.join(folder, name)


class TrialCheckpoint(Checkpoint):
    """Saves the trial's training state at each validation and before a requested stop.

    A `Checkpoint` subclass, so Lightning runs its hooks after every other callback's: the state it
    saves includes what the pruning callback reported at that validation.
    """

    def __init__(self, folder: str, trial_number: int) -> None:
        self.folder = folder
        self.trial_number = trial_number
        self.saved_step: int | None = None
        self.first_step = 0  # the step training started at: > 0 when resumed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.first_step = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A run that stops now (pruned, non-finite) ends its trial and is never resumed.
        if not trainer.sanity_checking and not trainer.should_stop:
            self._save(trainer)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        signum = stop_requested()
        if signum is not None:
            self._stop_cleanly(trainer, signum)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        signum = stop_requested()
        if signum is not None:
            self._stop_cleanly(trainer, signum)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning raises SIGTERMException only after a step or between validation batches, so the
        # state is clean (a validation stopped midway is not reported; the retry reports from the
        # next one on). Any other exception may have hit mid-step, and is not saved.
        if isinstance(exception, SIGTERMException):
            self._save(trainer)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "trial": self.trial_number,
            "global_step": trainer.global_step,
        }

    def _stop_cleanly(self, trainer: pl.Trainer, signum: int) -> None:
        """Stops the run where Lightning stops on SIGTERM: after this step or validation batch."""
        # Lightning raises SIGTERMException at its next clean point once this flag is set, and
        # `on_exception` saves there; a Ctrl-C takes the same path. Raising here instead would skip
        # the validation due at this step, and the retry's validations would fall one step late.
        connector = getattr(trainer, "_signal_connector", None)
        if hasattr(connector, "received_sigterm"):
            connector.received_sigterm = True
            return
        self._save(trainer)  # a Lightning without that flag: stop here
        raise interruption_for(signum)

    def _save(self, trainer: pl.Trainer) -> None:
        step = trainer.global_step
        if step == 0 or step == self.saved_step:
            return  # nothing trained yet, or this state is already on disk
        name = f"step-{step}.ckpt"
        trainer.save_checkpoint(os.path.join(self.folder, name))  # every rank: shards, barrier
        self.saved_step = step
        if trainer.is_global_zero:
            _remove_others(trainer, self.folder, keep=name)


def _remove_others(trainer: pl.Trainer, folder: str, keep: str) -> None:
    # Only after the new file is complete (Lightning writes it atomically), so a kill at any moment
    # leaves at least one whole checkpoint.
    for name in os.listdir(folder):
        if _FILE.match(name) and name != keep:
            trainer.strategy.remove_checkpoint(os.path.join(folder, name))


@dataclass(frozen=True)
class Resume:
    """Where a retried trial resumes: the checkpoint of `trial` at `step`, trained with `seed`."""

    trial: int
    step: int
    path: str
    seed: int | None


def retried_trials(trial: optuna.Trial) -> list[FrozenTrial]:
    """The earlier trials that `trial` retries, directly or through earlier retries; newest first.

    Only trials with the same parameters count: a checkpoint of another model is never resumed.
    """
    storage, study_id = trial.study._storage, trial.study._study_id
    current = storage.get_trial(trial._trial_id)
    found: dict[int, FrozenTrial] = {}
    pending = _retried_numbers(current)
    while pending:
        number = pending.pop()
        if number in found or number == current.number:
            continue
        earlier = _trial_by_number(storage, study_id, number)
        if earlier is not None:
            found[number] = earlier
            pending.extend(_retried_numbers(earlier))
    chain = [t for t in found.values() if t.params == current.params]
    return sorted(chain, key=lambda t: t.number, reverse=True)


def _retried_numbers(trial: FrozenTrial) -> list[int]:
    # Optuna's stale-trial retry copies user attrs, so a retry of a retry also carries `retry_of`
    # of the first; collecting every link still gives the whole chain.
    links = [trial.user_attrs.get("retry_of"), trial.system_attrs.get("failed_trial")]
    links += list(trial.system_attrs.get("retry_history") or [])
    return [n for n in links if isinstance(n, int) and not isinstance(n, bool)]


def _trial_by_number(
    storage: optuna.storages.BaseStorage, study_id: int, number: int
) -> FrozenTrial | None:
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    except KeyError:
        return None
    return storage.get_trial(trial_id)


def find_resume(run_dir: str, study_name: str, chain: Sequence[FrozenTrial]) -> Resume | None:
    """The newest checkpoint of the trials in `chain`: highest step; on a tie, the newest trial."""
    best: Resume | None = None
    for earlier in chain:  # newest first, so a tie keeps the newer trial
        found = latest_checkpoint(checkpoint_dir(run_dir, study_name, earlier.number))
        if found is not None and (best is None or found[0] > best.step):
            seed = earlier.user_attrs.get("seed")
            best = Resume(
                earlier.number, found[0], found[1], seed if isinstance(seed, int) else None
            )
    return best


def record_resume(
    trial: optuna.Trial, chain: Sequence[FrozenTrial], resume: Resume | None, why_not: str
) -> None:
    """Records in a retry where it starts, and gives it the values reported up to that step.

    `why_not` says why a retry without `resume` trains from scratch. All three attrs are always
    set: Optuna's stale-trial retry copies the user attrs of the trial it retries, so one left
    unset could be an earlier trial's.
    """
    if resume is None:
        note = f"{why_not}; trained from scratch"
        _logger.warning("Trial %d, a retry of trial %d: %s", trial.number, chain[-1].number, note)
    else:
        note = f"resumed from the checkpoint of trial {resume.trial} at step {resume.step}"
        _copy_values(trial, next(t for t in chain if t.number == resume.trial), resume.step)
    trial.set_user_attr("resumed_from_trial", None if resume is None else resume.trial)
    trial.set_user_attr("resumed_at_step", 0 if resume is None else resume.step)
    trial.set_user_attr("resume_note", note)


def _copy_values(trial: optuna.Trial, source: FrozenTrial, up_to_step: int) -> None:
    # The resumed run reports only steps after the checkpoint (the pruning callback's restored state
    # lists the earlier ones); without these the trial's curve and the pruner would miss its start.
    for step, value in sorted(source.intermediate_values.items()):
        if step <= up_to_step:
            trial.report(value, step)


@contextmanager
def removed_when_done(run_dir: str, study_name: str, numbers: Sequence[int]) -> Iterator[None]:
    """Deletes the trials' checkpoint folders after the block, unless it was interrupted.

    An interruption (Ctrl-C, SIGTERM) re-queues the trial, and its retry needs the checkpoint.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        remove_checkpoints(run_dir, study_name, numbers)
        raise
    remove_checkpoints(run_dir, study_name, numbers)


def remove_checkpoints(run_dir: str, study_name: str, numbers: Sequence[int]) -> None:
    """Deletes the checkpoint folders of these trials (kept if `KEEP_ENV` is set to 1)."""
    if os.environ.get(KEEP_ENV) == "1":
        return
    for number in numbers:
        shutil.rmtree(checkpoint_dir(run_dir, study_name, number), ignore_errors=True)
