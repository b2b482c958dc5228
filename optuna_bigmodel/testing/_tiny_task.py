"""A task that trains in well under a second, for tests of the study machinery.

Its knobs: `lr` (learning rate of plain SGD), `offset` (added to the reported val_loss, so a test
knows which configuration must win), `width` (hidden units, 0 = linear), `fail` (raise inside
training when true, to exercise failure handling) and `step_sleep` (seconds to sleep in each
training step, so a test can stop a worker in the middle of a trial). Any other knob is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_bigmodel.tasks import Task, TaskBuild


class TinyRegression(pl.LightningModule):
    """y = 2x - 1 + noise, fitted by a linear model or a one-hidden-layer MLP."""

    def __init__(
        self, lr: float, offset: float, width: int, fail: bool, step_sleep: float = 0.0
    ) -> None:
        super().__init__()
        self.lr, self.offset, self.fail, self.step_sleep = lr, offset, fail, step_sleep
        hidden = [nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1)] if width else [nn.Linear(1, 1)]
        self.net = nn.Sequential(*hidden)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("this trial was asked to fail")
        time.sleep(self.step_sleep)
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y) + self.offset
        self.log("val_loss", loss, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TinyData(pl.LightningDataModule):
    def __init__(self, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(1234)  # same data for every trial
        x = torch.rand(256, 1, generator=generator) * 2 - 1
        y = 2 * x - 1 + 0.1 * torch.randn(256, 1, generator=generator)
        self.train_set = TensorDataset(x[:192], y[:192])
        self.val_set = TensorDataset(x[192:], y[192:])
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        # Made here, not kept: ddp_spawn pickles the datamodule, and a torch.Generator cannot be.
        shuffle = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=16, shuffle=True, generator=shuffle)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=64)


def build_tiny(
    params: Mapping[str, Any], model: Mapping[str, Any], data: Mapping[str, Any], seed: int
) -> TaskBuild:
    settings = {**model, **params}
    torch.manual_seed(seed)
    module = TinyRegression(
        lr=float(settings.get("lr", 0.1)),
        offset=float(settings.get("offset", 0.0)),
        width=int(settings.get("width", 0)),
        fail=bool(settings.get("fail", False)),
        step_sleep=float(settings.get("step_sleep", 0.0)),
    )
    optimum = data.get("optimum")  # a test may pretend to know the best achievable value
    return TaskBuild(module, TinyData(seed), None if optimum is None else float(optimum))


tiny_task = Task(name="tiny", build=build_tiny, description="linear regression, for tests")
