"""OptunaPruning in a plain single-process Lightning run."""

from __future__ import annotations

import optuna
import pytest
import pytorch_lightning as pl

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.testing import build_tiny


class _Always(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def _fit(trial: optuna.Trial, monitor: str = "val_loss", max_steps: int = 24) -> OptunaPruning:
    built = build_tiny({"lr": 0.1}, {}, {}, seed=0)
    callback = OptunaPruning(trial, monitor)
    trainer = pl.Trainer(
        max_steps=max_steps, val_check_interval=4, check_val_every_n_epoch=None,
        callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(built.module, datamodule=built.datamodule)
    return callback


def test_reports_every_validation_at_its_global_step() -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    callback = _fit(trial)
    # 12 batches per epoch, validation every 4 steps: several validations per epoch, each its step.
    assert callback.reported_steps == [4, 8, 12, 16, 20, 24]
    stored = study.trials[0].intermediate_values
    assert sorted(stored) == [4, 8, 12, 16, 20, 24]
    assert stored[4] > stored[24]  # the regression learns
    assert not callback.pruned
    callback.check_pruned()  # does not raise


def test_a_pruned_run_stops_at_the_first_validation_and_says_why() -> None:
    study = optuna.create_study(pruner=_Always())
    trial = study.ask()
    callback = _fit(trial)
    assert callback.pruned_at_step == 4
    assert callback.reported_steps == [4]
    assert study.trials[0].user_attrs == {"pruned_at_step": 4, "pruned_reason": "pruner"}
    with pytest.raises(optuna.TrialPruned, match="step 4"):
        callback.check_pruned()


def test_missing_metric_is_a_clear_error() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(BadInputError, match="'val_acc' was not logged.*val_loss"):
        _fit(trial, monitor="val_acc")


def test_state_dict_round_trip_resumes_reported_steps() -> None:
    trial = optuna.create_study().ask()
    callback = _fit(trial, max_steps=8)
    resumed = OptunaPruning(trial, "val_loss")
    resumed.load_state_dict(callback.state_dict())
    assert resumed.reported_steps == [4, 8] and resumed.pruned_at_step is None
