"""A tiny gated residual network and a Lightning module that learns its gates with a hand-written
bilevel step, for the StructurePruning tests (here and under DDP in tests/distributed).

The network: ``n_blocks`` residual blocks under a gate that owns them (``min_kept`` of them stay),
a gate over channel groups inside each block, and a choice of output activation. The bilevel
step: weights descend on the first half of each batch, gate logits (their own Adam) on the second
half plus ``penalty`` times the expected fraction of weights, which shuts gates over time.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optuna_bigmodel.structure import (
    ChoiceGate,
    UnitGate,
    count_weights,
    expected_fraction,
    set_gate_mode,
    structure_parameters,
    weight_parameters,
)

WIDTH = 8


class Block(nn.Module):
    """x + keep * (channel-gated tanh(fc(x))); counts how often it really runs."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.channels_gate = UnitGate(4, unit_size=width // 4, unit_params=(width + 1) * width // 4)
        self.calls = 0

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x + keep.to(x.dtype) * self.channels_gate(torch.tanh(self.fc(x)))  # (B, W)


class GatedNet(nn.Module):
    """(B, WIDTH) -> (B, 1) through gated residual blocks and a chosen activation."""

    def __init__(self, n_blocks: int = 4, min_kept: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(WIDTH) for _ in range(n_blocks))
        owns = [[block] for block in self.blocks]
        self.blocks_gate = UnitGate(n_blocks, owns=owns, min_kept=min_kept)
        candidates = {"tanh": nn.Tanh(), "relu": nn.ReLU(), "identity": nn.Identity()}
        self.activation = ChoiceGate(candidates)
        self.out = nn.Linear(WIDTH, 1)
        self.keeps: list[torch.Tensor] = []  # the block gate values of every training forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.blocks_gate.values()
        if keep is None:  # off: every block whole
            keep = self.blocks_gate.keep_probs()
        if self.training:
            self.keeps.append(keep.detach().clone())
        for index, block in enumerate(self.blocks):
            x = block(x, keep[index])
        return self.out(self.activation(x))  # (B, 1)


class Bilevel(pl.LightningModule):
    """Learns GatedNet's weights and gates, on alternate halves of each batch."""

    def __init__(self, penalty: float = 3.0, gate_lr: float = 0.3, min_kept: int = 2) -> None:
        super().__init__()
        self.automatic_optimization = False
        torch.manual_seed(0)
        self.net = GatedNet(min_kept=min_kept)
        set_gate_mode(self.net, "learn", init_keep=0.6)
        self.total = count_weights(self.net)
        self.penalty, self.gate_lr = penalty, gate_lr

    def configure_optimizers(self) -> Any:
        weights = torch.optim.SGD(weight_parameters(self.net), lr=0.05)
        gates = torch.optim.Adam(structure_parameters(self.net), lr=self.gate_lr)
        return [weights, gates]

    def training_step(self, batch: list[torch.Tensor], _: int) -> None:
        weights, gates = self.optimizers()
        x, y = batch
        half = len(x) // 2
        loss = F.mse_loss(self.net(x[:half]), y[:half])
        weights.zero_grad()
        self.manual_backward(loss)
        weights.step()
        size = expected_fraction(self.net, self.total).to(x.dtype)
        search = F.mse_loss(self.net(x[half:]), y[half:]) + self.penalty * size
        gates.zero_grad()
        self.manual_backward(search)
        gates.step()


def data(n: int = 512) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, WIDTH, generator=generator)
    y = x[:, :1] - 0.5 * x[:, 1:2]
    return DataLoader(TensorDataset(x, y), batch_size=32)


def trainer(callbacks: list[pl.Callback], max_steps: int, **options: Any) -> pl.Trainer:
    """A quiet CPU trainer; ``max_steps`` counts optimiser steps, two per batch here."""
    return pl.Trainer(
        max_steps=max_steps, callbacks=callbacks, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
        limit_val_batches=0, **options,
    )  # fmt: skip
