"""Trial checkpoints: saved at each validation and on a stop signal, found through retry chains,
resumed by the objective, deleted once a trial has ended for good.

The signal tests send real SIGINT / SIGTERM to this process inside a Lightning fit.
"""

from __future__ import annotations

import os
import signal
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import optuna
import pytest
import pytorch_lightning as pl
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.study import LightningObjective, run_trials
from optuna_bigmodel.study._checkpoints import (
    CHECKPOINT_KEY,
    KEEP_ENV,
    Resume,
    TrialCheckpoint,
    checkpoint_dir,
    find_resume,
    latest_checkpoint,
    record_resume,
    removed_when_done,
    retried_trials,
)
from optuna_bigmodel.study._loop import graceful_stop, sigterm_interrupts
from optuna_bigmodel.testing import build_tiny, tiny_task
from tests.conftest import tiny_spec

# Resuming mid-epoch restarts the epoch's data order; Lightning says so at every resume.
pytestmark = pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint")

PARAMS = {"lr": 0.1, "offset": 0.0}
DISTRIBUTIONS = {
    "lr": FloatDistribution(0.01, 0.5, log=True),
    "offset": CategoricalDistribution([0.0, 1.0, 2.0]),
}


class _Always(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


class _SignalAt(pl.Callback):
    """Sends `sig` to this process `times` times when training reaches `step`."""

    def __init__(self, step: int, sig: int, times: int = 1) -> None:
        self.step, self.sig, self.times = step, sig, times

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            for _ in range(self.times):
                os.kill(os.getpid(), self.sig)


def _fit(
    folder: Path, trial: optuna.trial.BaseTrial, *extra: pl.Callback, ckpt_path: str | None = None
) -> tuple[pl.Trainer, OptunaPruning, TrialCheckpoint]:
    built = build_tiny(PARAMS, {}, {}, seed=0)
    pruning = OptunaPruning(trial, "val_loss")
    saving = TrialCheckpoint(str(folder), trial.number)
    trainer = pl.Trainer(
        max_steps=24, val_check_interval=4, check_val_every_n_epoch=None,
        callbacks=[pruning, saving, *extra], logger=False, enable_checkpointing=True,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        accelerator="cpu",
    )  # fmt: skip
    with sigterm_interrupts(), graceful_stop():
        trainer.fit(built.module, datamodule=built.datamodule, ckpt_path=ckpt_path)
    return trainer, pruning, saving


def _meta(path: str) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)[CHECKPOINT_KEY]


def test_saves_at_each_validation_keeping_only_the_newest(tmp_path: Path) -> None:
    _fit(tmp_path, optuna.create_study().ask())
    assert os.listdir(tmp_path) == ["step-24.ckpt"]
    assert _meta(str(tmp_path / "step-24.ckpt")) == {"trial": 0, "global_step": 24}


def test_a_pruned_run_saves_nothing(tmp_path: Path) -> None:
    _fit(tmp_path, optuna.create_study(pruner=_Always()).ask())  # pruned at the first validation
    assert latest_checkpoint(str(tmp_path)) is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_after_the_step_with_a_checkpoint_and_resuming_continues(
    tmp_path: Path, sig: int
) -> None:
    study = optuna.create_study()
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException, for either signal
        _fit(tmp_path / "t0", study.ask(), _SignalAt(10, sig))
    found = latest_checkpoint(str(tmp_path / "t0"))
    assert found is not None and found[0] == 11  # the step under way when the signal came
    assert _meta(found[1]) == {"trial": 0, "global_step": 11}

    trainer, pruning, saving = _fit(tmp_path / "t1", study.ask(), ckpt_path=found[1])
    assert (saving.first_step, trainer.global_step) == (11, 24)  # only the remaining steps
    assert pruning.reported_steps == [4, 8, 12, 16, 20, 24]  # restored, then on schedule
    assert sorted(study.trials[1].intermediate_values) == [12, 16, 20, 24]  # none twice


def test_a_second_signal_stops_at_once_without_a_new_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        _fit(tmp_path, optuna.create_study().ask(), _SignalAt(10, signal.SIGINT, times=2))
    assert os.listdir(tmp_path) == ["step-8.ckpt"]  # the last validation's, nothing mid-step


def test_a_stop_asked_while_the_trial_finishes_ends_the_worker_after_telling() -> None:
    def objective(trial: optuna.Trial) -> float:
        with graceful_stop():
            os.kill(os.getpid(), signal.SIGINT)  # too late for the run to act on
        return 1.0

    study = optuna.create_study()
    with pytest.raises(KeyboardInterrupt):
        run_trials(study, objective, exhaustive=False, n_trials=3, timeout=None)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]  # told, not re-queued


def _failed(study: optuna.Study, **user_attrs: Any) -> optuna.trial.FrozenTrial:
    trial = optuna.create_trial(
        state=TrialState.FAIL, params=PARAMS, distributions=DISTRIBUTIONS, user_attrs=user_attrs
    )
    study.add_trial(trial)
    return study.trials[-1]


def _requeue(study: optuna.Study, of: optuna.trial.FrozenTrial) -> optuna.Trial:
    study.enqueue_trial(of.params, user_attrs={"retry_of": of.number})
    return study.ask(DISTRIBUTIONS)


def _numbers(trial: optuna.Trial) -> list[int]:
    return [t.number for t in retried_trials(trial)]


def test_a_retry_chain_is_followed_through_retry_of() -> None:
    study = optuna.create_study()
    first = _failed(study)
    second = _failed(study, retry_of=first.number)
    assert _numbers(_requeue(study, second)) == [1, 0]  # newest first
    assert _numbers(study.ask(DISTRIBUTIONS)) == []  # a fresh trial retries nothing


def test_a_retry_chain_is_followed_through_failed_trial_and_mixed_links() -> None:
    study = optuna.create_study()
    interrupted = _failed(study)  # 0: re-queued on SIGTERM as 1
    resumed = _failed(study, retry_of=interrupted.number)  # 1: its worker died
    RetryHeartbeatStaleTrialCallback()(study, resumed)  # 2: Optuna's retry of 1
    died_again = study.trials[2]
    assert died_again.system_attrs["failed_trial"] == 1
    assert died_again.user_attrs["retry_of"] == 0  # copied from 1 by Optuna
    study.tell(study.ask(), state=TrialState.FAIL)  # 2 claimed, and its worker died too
    RetryHeartbeatStaleTrialCallback()(study, study.trials[2])  # 3: keeps failed_trial=1
    assert _numbers(study.ask(DISTRIBUTIONS)) == [2, 1, 0]


def test_a_trial_with_other_parameters_is_not_part_of_the_chain() -> None:
    study = optuna.create_study()
    other = optuna.create_trial(
        state=TrialState.FAIL, params={**PARAMS, "lr": 0.2}, distributions=DISTRIBUTIONS
    )
    study.add_trial(other)
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0})
    assert _numbers(study.ask(DISTRIBUTIONS)) == []


def _touch(run_dir: Path, trial: int, step: int) -> str:
    folder = Path(checkpoint_dir(str(run_dir), "s", trial))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"step-{step}.ckpt").write_bytes(b"")
    return str(folder / f"step-{step}.ckpt")


def test_the_newest_checkpoint_along_the_chain_is_resumed(tmp_path: Path) -> None:
    study = optuna.create_study()
    chain = [_failed(study, seed=10), _failed(study, seed=11), _failed(study, seed=12)][::-1]
    assert find_resume(str(tmp_path), "s", chain) is None
    _touch(tmp_path, 0, 20)
    path = _touch(tmp_path, 1, 30)
    (Path(path).parent / "step-99.ckpt.tmp").write_bytes(b"")  # a half-written file is no step
    assert find_resume(str(tmp_path), "s", chain) == Resume(1, 30, path, 11)
    newer = _touch(tmp_path, 2, 30)  # a tie: the newer trial's
    assert find_resume(str(tmp_path), "s", chain) == Resume(2, 30, newer, 12)


def test_recording_a_resume_copies_the_values_up_to_its_step() -> None:
    study = optuna.create_study()
    source = optuna.create_trial(
        state=TrialState.FAIL, params=PARAMS, distributions=DISTRIBUTIONS,
        intermediate_values={4: 3.0, 8: 2.0, 12: 1.0},
    )  # fmt: skip
    study.add_trial(source)
    # Optuna's retry copies user attrs: what an earlier resume recorded must be overwritten.
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0, "resumed_at_step": 99})
    trial = study.ask(DISTRIBUTIONS)
    record_resume(trial, retried_trials(trial), Resume(0, 10, "x", None), "unused")
    frozen = study.trials[1]
    assert frozen.intermediate_values == {4: 3.0, 8: 2.0}
    assert frozen.user_attrs["resumed_from_trial"] == 0
    assert frozen.user_attrs["resumed_at_step"] == 10


def test_without_a_checkpoint_a_retry_records_that_it_starts_from_scratch() -> None:
    study = optuna.create_study()
    _failed(study)
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0, "resumed_from_trial": 5})
    trial = study.ask(DISTRIBUTIONS)
    record_resume(trial, retried_trials(trial), None, "no checkpoint of trial(s) 0 in /x")
    attrs = study.trials[1].user_attrs
    assert attrs["resumed_from_trial"] is None and attrs["resumed_at_step"] == 0
    assert attrs["resume_note"] == "no checkpoint of trial(s) 0 in /x; trained from scratch"


@pytest.mark.parametrize(
    "raised, kept",
    [(None, False), (ValueError, False), (KeyboardInterrupt, True), (SystemExit, True)],
)
def test_checkpoints_are_removed_unless_the_trial_was_interrupted(
    tmp_path: Path, raised: type[BaseException] | None, kept: bool
) -> None:
    paths = [_touch(tmp_path, 0, 4), _touch(tmp_path, 1, 8)]
    expected = pytest.raises(raised) if raised else nullcontext()
    with expected, removed_when_done(str(tmp_path), "s", [0, 1]):
        if raised:
            raise raised
    assert [os.path.exists(p) for p in paths] == [kept, kept]


def test_checkpoints_are_kept_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEEP_ENV, "1")
    path = _touch(tmp_path, 0, 4)
    with removed_when_done(str(tmp_path), "s", [0]):
        pass
    assert os.path.exists(path)


def _objective(tmp_path: Path) -> LightningObjective:
    return LightningObjective(parse_spec(tiny_spec(tmp_path)), tiny_task)


def test_the_objective_resumes_a_retry_from_the_checkpoint_of_the_trial_it_retries(
    tmp_path: Path,
) -> None:
    study = optuna.create_study()
    interrupted = optuna.create_trial(
        state=TrialState.FAIL, params=PARAMS, distributions=DISTRIBUTIONS,
        user_attrs={"seed": 123}, intermediate_values={4: 5.0},
    )  # fmt: skip
    study.add_trial(interrupted)
    folder = Path(checkpoint_dir(str(tmp_path / "runs"), "tiny", 0))
    with pytest.raises(SystemExit):  # trial 0's run (8 steps, val every 4) stopped at step 6
        _fit(folder, optuna.trial.FixedTrial(PARAMS, 0), _SignalAt(5, signal.SIGTERM))
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0})

    run_trials(study, _objective(tmp_path), exhaustive=False, n_trials=1, timeout=None)
    retry = study.trials[1]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["resumed_from_trial"] == 0 and retry.user_attrs["resumed_at_step"] == 6
    assert retry.user_attrs["trained_steps"] == 2 and retry.user_attrs["seed"] == 123
    assert retry.intermediate_values[4] == 5.0 and sorted(retry.intermediate_values) == [4, 8]
    assert not folder.exists()  # the chain has ended: its checkpoints are gone
    assert not Path(checkpoint_dir(str(tmp_path / "runs"), "tiny", 1)).exists()


def test_the_objective_trains_a_retry_without_checkpoint_from_scratch(tmp_path: Path) -> None:
    study = optuna.create_study()
    _failed(study)
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0})
    run_trials(study, _objective(tmp_path), exhaustive=False, n_trials=1, timeout=None)
    retry = study.trials[1]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["resumed_at_step"] == 0
    assert "no checkpoint of trial(s) 0" in retry.user_attrs["resume_note"]
    assert retry.user_attrs["resume_note"].endswith("trained from scratch")
    assert sorted(retry.intermediate_values) == [4, 8]
