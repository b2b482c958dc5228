"""Which strategy knobs can be learned, and no LR scheduler on a learned learning rate."""

from __future__ import annotations

import pytest
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import KnobError
from optuna_bigmodel.strategy import check_learnable_strategy_knob
from optuna_bigmodel.strategy import check_no_external_scheduler
from optuna_bigmodel.strategy import is_learnable_strategy_knob
from optuna_bigmodel.strategy import LEARNABLE_STRATEGY_KNOBS


@pytest.mark.parametrize(
    "name", ["lr", "weight_decay", "warmup", "decay", "lr/1", "weight_decay/head"]
)
def test_learnable_strategy_knobs_pass(name: str) -> None:
    assert is_learnable_strategy_knob(name)
    check_learnable_strategy_knob(name)


@pytest.mark.parametrize("name", ["batch_size", "optimizer", "dropout", "warmup/1", "lrate"])
def test_other_strategy_knobs_cannot_be_learned(name: str) -> None:
    assert not is_learnable_strategy_knob(name)
    with pytest.raises(KnobError) as caught:
        check_learnable_strategy_knob(name)
    assert isinstance(caught.value, BadInputError)
    assert caught.value.knob == name and caught.value.field_path == ("mode",)
    message = str(caught.value)
    assert message.startswith(f"knob {name!r}, mode: got 'learn'")
    assert "decay, lr, warmup, weight_decay" in message and "'sample' or 'fixed'" in message


def test_the_learnable_set() -> None:
    assert LEARNABLE_STRATEGY_KNOBS == {"lr", "weight_decay", "warmup", "decay"}


def _optimizers() -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    model = torch.nn.Linear(2, 1)
    return torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.Adam(model.parameters())


def test_a_scheduler_on_a_learned_group_is_an_error() -> None:
    sgd, _ = _optimizers()
    scheduler = torch.optim.lr_scheduler.StepLR(sgd, step_size=10)
    with pytest.raises(BadInputError, match=r"schedulers\[0\]: StepLR drives parameter group 0 of "
                                            r"SGD, whose learning rate is learned"):
        check_no_external_scheduler(sgd, [scheduler], learned_groups=[0])


def test_lightning_scheduler_configs_and_dicts_are_understood() -> None:
    from pytorch_lightning.utilities.types import LRSchedulerConfig

    sgd, adam = _optimizers()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd)
    on_adam = torch.optim.lr_scheduler.StepLR(adam, step_size=10)
    check_no_external_scheduler(sgd, [LRSchedulerConfig(on_adam)], learned_groups=[0])
    check_no_external_scheduler(sgd, [plateau], learned_groups=[])
    check_no_external_scheduler(sgd, None, learned_groups=[0])
    with pytest.raises(BadInputError, match="ReduceLROnPlateau drives parameter group 0"):
        check_no_external_scheduler(sgd, [{"scheduler": plateau}], learned_groups=[0])
    with pytest.raises(BadInputError, match="ReduceLROnPlateau"):
        check_no_external_scheduler(sgd, LRSchedulerConfig(plateau), learned_groups=[0])


def test_something_that_is_no_scheduler_is_an_error() -> None:
    sgd, adam = _optimizers()
    on_adam = torch.optim.lr_scheduler.StepLR(adam, step_size=10)
    with pytest.raises(BadInputError, match=r"schedulers\[1\]: got 'cosine'; expected a torch LR"):
        check_no_external_scheduler(sgd, [on_adam, "cosine"], learned_groups=[0])
