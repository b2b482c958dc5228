"""The controller inside a Lightning module, called from the hooks the integration will use."""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy import check_no_external_scheduler
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule


def _data(seed: int, n: int = 256) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]))


class _Tuned(pl.LightningModule):
    def __init__(self, with_scheduler: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)
        self.with_scheduler = with_scheduler
        self.search = iter(DataLoader(_data(1, 4096), batch_size=32))
        self.weights_after_steps: list[torch.Tensor] = []

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=1.0, momentum=0.9)
        if not self.with_scheduler:
            return optimizer
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)]

    def on_train_start(self) -> None:
        schedule = LRSchedule(
            lr=LearnedValue(1e-3, 1e-5, 1.0), total_steps=self.trainer.max_steps,
            warmup=LearnedValue(3.5, 0.0, 10.0),
        )
        self.controller = HypergradientController(self.optimizers(), schedule, meta_lr=0.05)
        check_no_external_scheduler(
            self.optimizers(), self.trainer.lr_scheduler_configs, self.controller.groups
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.controller.before_train_step(self.global_step)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.controller.before_optimizer_step()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.controller.after_train_step(outputs["loss"])
        self.weights_after_steps.append(self.net.weight.detach().clone())
        x, y = (t.to(self.device) for t in next(self.search))
        self.controller.on_search_batch(F.mse_loss(self.net(x), y))
        # Weights never step on search batches.
        assert torch.equal(self.weights_after_steps[-1], self.net.weight)


def _fit(module: _Tuned, steps: int = 24) -> None:
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )
    trainer.fit(module, DataLoader(_data(0), batch_size=32, shuffle=True))


def test_a_lightning_module_learns_its_rate_from_the_hooks() -> None:
    module = _Tuned()
    _fit(module)
    record = module.controller.record()
    assert set(record) == {"lr", "warmup"}
    assert [step for step, _ in record["lr"]["trajectory"]] == list(range(24))
    assert record["lr"]["final"] > 2e-3  # started at 1e-3
    assert len(module.weights_after_steps) == 24


def test_a_scheduler_on_the_learned_rate_stops_the_run() -> None:
    with pytest.raises(BadInputError, match="StepLR drives parameter group 0 of SGD"):
        _fit(_Tuned(with_scheduler=True))
