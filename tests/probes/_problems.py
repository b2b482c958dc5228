"""Small Lightning problems with answers known in closed form, for the probes' tests."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LeastSquares(pl.LightningModule):
    """Loss mean((x @ w - y)^2): a quadratic, whose Hessian 2 x^T x / n is constant."""

    def __init__(self, dim: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim, dtype=dtype))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(x @ self.w, y)
        self.log("train_loss", loss)  # goes nowhere without a Trainer, and must not break
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Arrays(pl.LightningDataModule):
    """Given arrays as the training data, in shuffled batches of ``batch_size``."""

    def __init__(self, *arrays: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.arrays, self.batch_size, self.seed = arrays, batch_size, seed

    def train_dataloader(self) -> DataLoader:
        shuffle = torch.Generator().manual_seed(self.seed)
        data = TensorDataset(*self.arrays)
        return DataLoader(data, batch_size=self.batch_size, shuffle=True, generator=shuffle)


def least_squares(
    seed: int, condition: float, n: int = 128, dim: int = 6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs whose Gram matrix x^T x / n has eigenvalues 9 ... 9 * condition, and targets."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, dim, generator=g, dtype=torch.float64))
    scales = 3 * torch.linspace(1, condition**0.5, dim, dtype=torch.float64)
    x = q * n**0.5 * scales
    y = x @ torch.randn(dim, generator=g, dtype=torch.float64)
    return x, y + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)


def stability_limit(x: torch.Tensor, y: torch.Tensor) -> float:
    """2 / lambda_max of the loss's Hessian, from autograd and an eigensolver."""
    def loss(w: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(x @ w, y)

    hessian = torch.autograd.functional.hessian(loss, torch.zeros(x.shape[1], dtype=x.dtype))
    return 2 / torch.linalg.eigvalsh(hessian).max().item()


class Projection(pl.LightningModule):
    """Loss mean((x @ W)^2) with Adam: each step keeps x and x @ W for the backward pass."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_out, bias=False)

    def training_step(self, batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
        return (self.proj(batch[0]) ** 2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class NormedMLP(pl.LightningModule):
    """An MLP with batch norm (whose running statistics a training-mode pass changes)."""

    def __init__(self, oom_above: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
        self.oom_above = oom_above

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        if self.oom_above is not None and len(x) > self.oom_above:
            # What the CUDA allocator raises, so the CPU can exercise the out-of-memory path.
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(x)}")
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> Any:
        # The dict form with a scheduler: the probes take the optimiser and drop the scheduler.
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, 1)
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def classification(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def same_state(module: nn.Module, before: dict[str, torch.Tensor]) -> bool:
    after = module.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
