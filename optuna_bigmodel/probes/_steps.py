"""One training step of a Lightning module outside a Trainer: its batches, loss and optimiser."""

from __future__ import annotations

from collections.abc import Iterator
import itertools
from typing import Any
import warnings

from lightning_utilities.core.apply_func import apply_to_collection
import pytorch_lightning as pl
import torch


def probe_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; ``None`` means the GPU when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: expected 'cpu', 'cuda', 'cuda:1', ..., got {device!r}") from err
    if where.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but torch sees no CUDA device here")
    return where


def training_batches(datamodule: pl.LightningDataModule) -> Iterator[Any]:
    """The training batches, epoch after epoch, as the Trainer would draw them."""
    # What Trainer.fit does before its first batch; both are no-ops when already done.
    datamodule.prepare_data()
    datamodule.setup("fit")
    while True:
        epoch = iter(datamodule.train_dataloader())
        first = next(epoch, None)
        if first is None:
            raise ValueError("datamodule: train_dataloader() yields no batch")
        yield from itertools.chain([first], epoch)


def step_loss(module: pl.LightningModule, batch: Any, device: torch.device) -> torch.Tensor:
    """The loss ``module.training_step`` returns for ``batch`` (moved to ``device`` first)."""
    batch = module.transfer_batch_to_device(batch, device, 0)
    with warnings.catch_warnings():
        # Lightning warns that self.log() goes nowhere without a Trainer; here that is intended.
        warnings.filterwarnings("ignore", message=r".*self\.log\(\)")
        out = module.training_step(batch, 0)
    loss = out.get("loss") if isinstance(out, dict) else out
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"{type(module).__name__}.training_step must return the loss (a scalar tensor, or a "
            f"dict with 'loss'); got {type(out).__name__}"
        )
    return loss.reshape(())


def only_optimizer(module: pl.LightningModule) -> torch.optim.Optimizer:
    """The one optimiser ``configure_optimizers`` builds; its schedulers are dropped."""
    if not module.automatic_optimization:
        raise ValueError(f"{type(module).__name__} uses manual optimisation; probes need automatic")
    found = _optimizers(module.configure_optimizers())
    if len(found) != 1:
        raise ValueError(
            f"{type(module).__name__}.configure_optimizers must give exactly one optimiser "
            f"for a probe, got {len(found)}"
        )
    return found[0]


def _optimizers(config: Any) -> list[torch.optim.Optimizer]:
    # The shapes Lightning accepts: an optimiser, a dict with "optimizer", a list or tuple of
    # either, or a pair (optimisers, schedulers).
    if isinstance(config, torch.optim.Optimizer):
        return [config]
    if isinstance(config, dict):
        return _optimizers(config.get("optimizer"))
    if isinstance(config, (list, tuple)) and config:
        if len(config) == 2 and isinstance(config[0], (list, tuple)):
            return _optimizers(config[0])
        return [opt for item in config for opt in _optimizers(item)]
    return []


def tiled(batch: Any, size: int) -> Any:
    """``batch`` with every tensor's first dimension repeated cyclically to ``size`` rows.

    Example:

        .. code-block:: python

            x, y = tiled((torch.arange(3), torch.zeros(3)), 7)  # x = [0, 1, 2, 0, 1, 2, 0]
    """
    return apply_to_collection(batch, torch.Tensor, _tiled_tensor, size)


def _tiled_tensor(tensor: torch.Tensor, size: int) -> torch.Tensor:
    if tensor.dim() == 0 or len(tensor) == 0:
        return tensor  # no batch dimension to repeat
    return tensor[torch.arange(size, device=tensor.device) % len(tensor)]
