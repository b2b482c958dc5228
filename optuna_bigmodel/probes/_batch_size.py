"""Which batch size: the largest training batch that fits in memory, by doubling and bisection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import gc
from typing import Any

import pytorch_lightning as pl
import torch

from optuna_bigmodel.probes._memory import step_memory
from optuna_bigmodel.probes._restore import restored
from optuna_bigmodel.probes._steps import only_optimizer
from optuna_bigmodel.probes._steps import probe_device
from optuna_bigmodel.probes._steps import training_batches


@dataclass(frozen=True)
class BatchTry:
    """One forward and backward pass at ``batch_size``: whether it fitted, and its memory.

    ``memory_bytes`` is ``None`` when the pass ran out of device memory.
    """

    batch_size: int
    fits: bool
    memory_bytes: int | None


@dataclass(frozen=True)
class BatchSizeResult:
    """What :func:`largest_batch_size` found.

    Attributes:
        batch_size: The largest batch that fits; ``None`` when not even ``start`` does.
        limited_by: ``"out of memory"`` (the device ran out), ``"memory limit"`` (a pass measured
            more than ``memory_limit_bytes``), ``"max_batch_size"`` (every try fitted, up to the
            cap) or ``"nothing to find on cpu"`` (no try was run; see ``note``).
        tries: Every pass run, in order.
        device: Where the passes ran.
        note: The outcome in one sentence.
    """

    batch_size: int | None
    limited_by: str
    tries: tuple[BatchTry, ...]
    device: str
    note: str


def largest_batch_size(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    *,
    start: int = 1,
    max_batch_size: int = 65536,
    device: str | torch.device | None = None,
    memory_limit_bytes: int | None = None,
    with_optimizer_state: bool = True,
) -> BatchSizeResult:
    """The largest batch of this training data for which a training step fits in memory.

    Doubles the batch from ``start`` until a pass fails (a CUDA out-of-memory error, caught and
    its memory given back, or a measured memory above ``memory_limit_bytes``) or reaches
    ``max_batch_size``, then bisects between the last batch that fitted and the first that did
    not. Each try is one forward and backward pass of ``training_step`` on a batch made by
    repeating the first training batch to the wanted size. The module is restored exactly
    afterwards (weights, buffers, gradients, mode, device, random state).

    Example:

        .. code-block:: python

            from optuna_bigmodel.probes import largest_batch_size

            result = largest_batch_size(module, datamodule, device="cuda")
            print(result.batch_size, result.note)
            # On the CPU, under a pretend budget of 64 MiB:
            result = largest_batch_size(module, datamodule, device="cpu", memory_limit_bytes=2**26)

    Args:
        module: The model, with ``training_step`` returning the loss.
        datamodule: Its data; one batch of ``train_dataloader`` is the sample.
        start: The first batch size tried.
        max_batch_size: The largest batch size tried.
        device: Where to run; ``None``: the GPU if there is one, else the CPU.
        memory_limit_bytes: Also count a pass as failed when its memory (see
            :func:`batch_memory`) exceeds this; on the CPU, the only way to find a limit.
        with_optimizer_state: Allocate the optimiser's state (e.g. Adam's two moments) before the
            tries, as a training step holds it; needs ``configure_optimizers`` to give exactly one
            optimiser.

    Note:
        The answer assumes memory grows with the batch size: a batch that fits is taken to mean
        that every smaller one does. On the CPU, without ``memory_limit_bytes``, there is no
        out-of-memory error to find: it runs nothing and returns ``max_batch_size``, and says so.
        Leave some headroom on the GPU: fragmentation, other processes and a Trainer's own
        buffers (precision plugins, logging) can need more than the probe did.
    """
    _check(start, max_batch_size, memory_limit_bytes)
    where = probe_device(device)
    if where.type != "cuda" and memory_limit_bytes is None:
        note = (
            f"on {where.type} there is no out-of-memory error to find: returned "
            f"max_batch_size {max_batch_size} untried; give memory_limit_bytes to search"
        )
        return BatchSizeResult(max_batch_size, "nothing to find on cpu", (), str(where), note)
    sample = next(training_batches(datamodule))
    tries: list[BatchTry] = []
    with restored(module, where) as model:
        optimizer = _allocate_optimizer_state(model) if with_optimizer_state else None
        attempt = _attempt(model, sample, where, optimizer, memory_limit_bytes, tries)
        found = search_largest(attempt, start, max_batch_size)
    return _result(found, tuple(tries), str(where), max_batch_size)


def batch_memory(
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    batch_size: int,
    *,
    device: str | torch.device | None = None,
    with_optimizer_state: bool = True,
) -> int:
    """The bytes one training step at ``batch_size`` needs: what the batch probe compares.

    On a GPU: the peak of memory allocated by torch during the forward and backward pass,
    model and optimiser state included. On the CPU (which reports no peak): an estimate, the
    bytes of the parameters, their gradients, the optimiser's state and the activations autograd
    saves for the backward pass (each storage once). The module is restored afterwards.

    Example:

        .. code-block:: python

            per_64 = batch_memory(module, datamodule, 64, device="cpu")
    """
    where = probe_device(device)
    sample = next(training_batches(datamodule))
    with restored(module, where) as model:
        optimizer = _allocate_optimizer_state(model) if with_optimizer_state else None
        return step_memory(model, sample, batch_size, where, optimizer)


def search_largest(fits: Callable[[int], bool], start: int, max_batch_size: int) -> int | None:
    """The largest size in ``[start, max_batch_size]`` that ``fits``, if fitting is monotone.

    Doubles from ``start`` to the first failure (or the cap), then bisects. ``None`` if
    ``start`` does not fit.

    Example:

        .. code-block:: python

            assert search_largest(lambda size: size <= 37, 1, 1000) == 37  # in 12 calls
    """
    size, fitted = start, None
    while fits(size):
        fitted = size
        if size == max_batch_size:
            return size
        size = min(2 * size, max_batch_size)
    if fitted is None:
        return None
    failed = size
    while failed - fitted > 1:
        middle = (fitted + failed) // 2
        fitted, failed = (middle, failed) if fits(middle) else (fitted, middle)
    return fitted


def _attempt(
    model: pl.LightningModule,
    sample: Any,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    limit: int | None,
    tries: list[BatchTry],
) -> Callable[[int], bool]:
    """``fits(size)``: runs one pass, records it in ``tries``, says whether it fitted."""

    def fits(size: int) -> bool:
        memory = _memory_or_none(model, sample, size, device, optimizer)
        fitted = memory is not None and (limit is None or memory <= limit)
        tries.append(BatchTry(size, fitted, memory))
        return fitted

    return fits


def _memory_or_none(
    model: pl.LightningModule,
    sample: Any,
    size: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
) -> int | None:
    try:
        return step_memory(model, sample, size, device, optimizer)
    except Exception as err:  # torch raises a RuntimeError subclass, or quotes it in another
        if not _is_out_of_memory(err):
            raise
    # Outside the except block, whose traceback holds the failed pass's tensors alive.
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":  # hand the cached blocks back, so the next try starts clean
        gc.collect()
        torch.cuda.empty_cache()
    return None


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "CUDA out of memory" in str(err)


def _allocate_optimizer_state(model: pl.LightningModule) -> torch.optim.Optimizer:
    """The module's optimiser, its state (e.g. Adam's moments) allocated; keep it alive."""
    # A step on zero gradients creates the state as the first real step would; the weights it
    # may move (weight decay) are restored with the rest.
    optimizer = only_optimizer(model)
    for param in model.parameters():
        param.grad = torch.zeros_like(param) if param.requires_grad else None
    optimizer.step()
    model.zero_grad(set_to_none=True)
    return optimizer


def _result(
    found: int | None, tries: tuple[BatchTry, ...], device: str, max_batch_size: int
) -> BatchSizeResult:
    failures = [t for t in tries if not t.fits]
    if not failures:
        note = f"every try fitted: {max_batch_size} (max_batch_size) is the largest tried"
        return BatchSizeResult(found, "max_batch_size", tries, device, note)
    limited_by = "memory limit" if failures[0].memory_bytes is not None else "out of memory"
    if found is None:
        note = f"not even batch size {tries[0].batch_size} fits ({limited_by})"
    else:
        note = f"batch size {found} fits, {found + 1} does not ({limited_by}); {len(tries)} tries"
    return BatchSizeResult(found, limited_by, tries, device, note)


def _check(start: int, max_batch_size: int, limit: int | None) -> None:
    for name, value in (("start", start), ("max_batch_size", max_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if max_batch_size < start:
        raise ValueError(f"max_batch_size ({max_batch_size}) must be >= start ({start})")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"memory_limit_bytes: expected an integer >= 1 or None, got {limit!r}")
