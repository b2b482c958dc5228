"""How much memory one training step takes: measured on a GPU, estimated on the CPU."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytorch_lightning as pl
import torch

from optuna_bigmodel.probes._steps import step_loss
from optuna_bigmodel.probes._steps import tiled


def step_memory(
    model: pl.LightningModule,
    sample: Any,
    size: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Bytes of one forward and backward pass on ``sample`` tiled to ``size`` rows.

    On CUDA the peak torch allocated during the pass (all of it: model, optimiser state, batch);
    elsewhere :func:`cpu_estimate`. Gradients are dropped afterwards.
    """
    batch = tiled(sample, size)
    try:
        if device.type == "cuda":
            return _cuda_peak(model, batch, device)
        return cpu_estimate(model, batch, device, optimizer)
    finally:
        model.zero_grad(set_to_none=True)


def cpu_estimate(
    model: pl.LightningModule,
    batch: Any,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None = None,
) -> int:
    """Parameters + gradients + optimiser state + activations saved for the backward pass.

    That is what a training step holds when its forward pass ends. The activations are the
    tensors autograd saves (each storage once; parameters are not counted twice), which is
    measurable on any device; the CPU allocator reports no peak to compare with.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = step_loss(model, batch, device)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    state = optimizer.state.values() if optimizer is not None else ()
    held = (*model.parameters(), *grads, *_tensors(state))
    return sum(t.numel() * t.element_size() for t in held) + sum(saved.values())


def _cuda_peak(model: pl.LightningModule, batch: Any, device: torch.device) -> int:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step_loss(model, batch, device).backward()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def _tensors(states: Iterable[dict[str, Any]]) -> list[torch.Tensor]:
    return [v for state in states for v in state.values() if isinstance(v, torch.Tensor)]
