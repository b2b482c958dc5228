"""Running a probe on a module, then leaving it as it was: weights, grads, mode, device, RNG."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

import pytorch_lightning as pl
import torch


@contextlib.contextmanager
def restored(module: pl.LightningModule, device: torch.device) -> Iterator[pl.LightningModule]:
    """Moves ``module`` to ``device`` in train mode; afterwards puts everything back.

    The weights and buffers come back bit for bit (from a copy kept on the CPU, so the probe's
    device holds no second copy of the model), and so do the gradients, train/eval mode, the
    device and the global torch random state (a probe draws dropout masks).

    Example:

        .. code-block:: python

            with restored(module, torch.device("cpu")):
                module.training_step(batch, 0).backward()  # leaves no trace once the block ends
    """
    saved = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    grads = [p.grad for p in module.parameters()]
    was_training, home = module.training, _device_of(module)
    with torch.random.fork_rng(devices=_cuda_indices(device, home)):
        try:
            module.to(device).train()
            yield module
        finally:
            _put_back(module, saved, grads, home, was_training)


def _put_back(
    module: pl.LightningModule,
    saved: dict[str, torch.Tensor],
    grads: list[torch.Tensor | None],
    home: torch.device,
    was_training: bool,
) -> None:
    module.to(home)
    module.load_state_dict(saved)
    for param, grad in zip(module.parameters(), grads, strict=True):
        param.grad = grad
    module.train(was_training)


def _device_of(module: torch.nn.Module) -> torch.device:
    tensor = next(module.parameters(), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _cuda_indices(*devices: torch.device) -> list[int]:
    # fork_rng(devices=[]) skips CUDA: no CUDA state is touched (or initialised) on CPU runs.
    return sorted({d.index or 0 for d in devices if d.type == "cuda"})
