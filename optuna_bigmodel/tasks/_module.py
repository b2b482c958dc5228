"""The Lightning module of the built-in tasks: any network that outputs logits, trained on
cross-entropy, with the metrics the study runner reads."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
import torch.nn.functional as F

from optuna_bigmodel.structure import weight_parameters
from optuna_bigmodel.tasks._optim import make_optimizer


class CrossEntropyModule(pl.LightningModule):
    """Trains ``net`` to predict class ``y`` from input ``x`` with mean cross-entropy (nats).

    Batches are ``(x, y)``. ``net(x)`` gives logits of shape ``y.shape + (n_classes,)``: one
    prediction per sample (digits) or per token (language). It logs ``train_loss`` each step,
    and ``val_loss`` / ``val_acc`` and ``test_loss`` / ``test_acc`` as means over the whole split.

    Args:
        net: The network; reachable afterwards as ``module.net``.
        optimizer: One of ``"sgd"``, ``"momentum"``, ``"adam"``, ``"adamw"``.
        lr: The learning rate.
        weight_decay: The weight decay; ``make_optimizer`` says how each optimiser applies it.
        l1: The weight of an L1 penalty ``l1 * sum(|w|)`` over the weights (not the gates),
            added to the training loss only (``train_loss`` logs the data term).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: str = "adam",
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        l1: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = net
        # Recorded so a checkpoint says how it was trained; the net is rebuilt by its task.
        self.save_hyperparameters(ignore=["net"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        loss, _ = self._loss_and_accuracy(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        if self.hparams.l1:
            return loss + self.hparams.l1 * sum(p.abs().sum() for p in weight_parameters(self))
        return loss

    def search_loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The loss of a search batch, with its graph; nothing is logged."""
        loss, _ = self._loss_and_accuracy(batch)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_eval("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._log_eval("test", batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        # Gate logits step on search batches only, with an optimiser of their own.
        return make_optimizer(weight_parameters(self), hp.optimizer, hp.lr, hp.weight_decay)

    def _log_eval(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        # Weighting each batch mean by its sample count makes the epoch value the mean over the
        # split, also when the last batch is short; sync_dist does the same across DDP ranks.
        for name, value in (("loss", loss), ("acc", accuracy)):
            self.log(
                f"{split}_{name}",
                value,
                on_step=False,
                on_epoch=True,
                batch_size=len(batch[1]),
                sync_dist=True,
            )

    def _loss_and_accuracy(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)  # y.shape + (n_classes,)
        flat_logits = logits.reshape(-1, logits.shape[-1])
        loss = F.cross_entropy(flat_logits, y.reshape(-1))
        accuracy = (flat_logits.argmax(dim=-1) == y.reshape(-1)).float().mean()
        return loss, accuracy
