"""OptunaPruning in a single-process Lightning run, with the package's tiny task and with a plain
LightningModule written from scratch."""

from __future__ import annotations

import optuna
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.study import TrialFailure
from optuna_bigmodel.testing import build_tiny


class _Always(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def _trainer(callback: OptunaPruning, max_steps: int = 24) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps, val_check_interval=4, check_val_every_n_epoch=None,
        callbacks=[callback], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip


def _fit(
    trial: optuna.trial.BaseTrial, monitor: str = "val_loss", max_steps: int = 24, **options
) -> OptunaPruning:
    built = build_tiny({"lr": 0.1}, {}, {}, seed=0)
    callback = OptunaPruning(trial, monitor, **options)
    _trainer(callback, max_steps).fit(built.module, datamodule=built.datamodule)
    return callback


class Plain(pl.LightningModule):
    """A LightningModule from scratch: classifies the sign of x; fed plain DataLoaders."""

    def __init__(self, nan_from_step: int | None = None) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 2)
        self.nan_from_step = nan_from_step

    def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self.layer(batch[0]), batch[1])
        if self.nan_from_step is not None and self.global_step >= self.nan_from_step:
            loss = loss * float("nan")
        return loss

    def validation_step(self, batch: list[torch.Tensor], _: int) -> None:
        accuracy = (self.layer(batch[0]).argmax(-1) == batch[1]).float().mean()
        self.log("val_acc", accuracy)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit_plain(callback: OptunaPruning, module: Plain) -> None:
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8, shuffle=True)
    _trainer(callback, max_steps=16).fit(module, data, DataLoader(data.dataset, batch_size=64))


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
    assert callback.final_value() == stored[24]


def test_a_pruned_run_stops_at_the_first_validation_and_says_why() -> None:
    study = optuna.create_study(pruner=_Always())
    trial = study.ask()
    callback = _fit(trial)
    assert callback.pruned_at_step == 4 and callback.pruned_reason == "pruner"
    assert callback.reported_steps == [4]
    assert study.trials[0].user_attrs == {"pruned_at_step": 4, "pruned_reason": "pruner"}
    with pytest.raises(optuna.TrialPruned, match="step 4"):
        callback.check_pruned()
    with pytest.raises(optuna.TrialPruned):
        callback.final_value()


def test_a_plain_lightning_module_with_its_own_metric_and_direction() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    callback = OptunaPruning(study.ask(), "val_acc")
    _fit_plain(callback, Plain())
    assert callback.reported_steps == [4, 8, 12, 16]
    assert list(study.trials[0].intermediate_values) == [4, 8, 12, 16]
    assert callback.final_value() > 0.9


@pytest.mark.parametrize("policy", ["prune", "fail"])
def test_a_non_finite_loss_stops_the_run_at_that_step_as_configured(policy: str) -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    callback = OptunaPruning(study.ask(), "val_acc", on_nonfinite=policy)
    _fit_plain(callback, Plain(nan_from_step=6))
    # The loss of step index 6 is NaN; after it the global step is 7, the run stops there.
    assert callback.stopped_at_step == 7 and callback.reported_steps == [4]
    attrs = study.trials[0].user_attrs
    if policy == "prune":
        assert attrs == {"pruned_at_step": 7, "pruned_reason": "non-finite loss"}
        with pytest.raises(optuna.TrialPruned, match="non-finite loss"):
            callback.final_value()
    else:
        detail = "the training loss is not finite at step 7"
        assert attrs == {"fail_reason": "nonfinite", "fail_detail": detail}
        with pytest.raises(TrialFailure) as info:
            callback.final_value()
        assert info.value.reason == "nonfinite"


def test_a_non_finite_metric_is_not_reported_and_stops_the_run() -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    callback = OptunaPruning(study.ask(), "val_acc", check_loss_every_n_steps=0)
    _fit_plain(callback, Plain(nan_from_step=2))  # NaN weights; argmax still picks a class
    assert not callback.pruned  # val_acc stays finite, and the loss is not checked

    built = build_tiny({"lr": 1e6}, {}, {}, seed=0)  # diverges: val_loss inf or nan at step 4
    callback = OptunaPruning(study.ask(), "val_loss", check_loss_every_n_steps=0)
    _trainer(callback).fit(built.module, datamodule=built.datamodule)
    assert callback.pruned_at_step == 4 and callback.pruned_reason == "non-finite val_loss"
    assert study.trials[1].intermediate_values == {}


def test_missing_metric_is_a_clear_error() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(BadInputError, match="'val_acc' was not logged.*val_loss"):
        _fit(trial, monitor="val_acc")


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"on_nonfinite": "ignore"}, "on_nonfinite: expected 'prune' or 'fail', got 'ignore'"),
        ({"check_loss_every_n_steps": -1}, "check_loss_every_n_steps: expected an integer >= 0"),
    ],
)
def test_bad_options_name_the_option_and_what_is_allowed(options: dict, fragment: str) -> None:
    with pytest.raises(BadInputError, match=fragment):
        OptunaPruning(optuna.create_study().ask(), "val_loss", **options)
    with pytest.raises(BadInputError, match="monitor: expected a metric name"):
        OptunaPruning(optuna.create_study().ask(), "")


def test_state_dict_round_trip_resumes_without_reporting_a_step_twice() -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    callback = _fit(trial, max_steps=8)
    resumed = OptunaPruning(trial, "val_loss")
    resumed.load_state_dict(callback.state_dict())
    assert resumed.reported_steps == [4, 8] and resumed.pruned_at_step is None
    assert resumed.value == callback.value
    built = build_tiny({"lr": 0.1}, {}, {}, seed=0)
    _trainer(resumed, max_steps=8).fit(built.module, datamodule=built.datamodule)  # 4, 8 again
    assert resumed.reported_steps == [4, 8]
    assert sorted(study.trials[0].intermediate_values) == [4, 8]
