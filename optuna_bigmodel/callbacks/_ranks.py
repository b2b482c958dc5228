"""The two exchanges the pruning callback makes across DDP ranks; no-ops in a single process.

Every rank must enter each exchange the same number of times, whatever it holds: a rank that
skips one leaves the others waiting forever. So a missing value travels as "missing" and an error
on rank 0 travels to the other ranks, which then raise too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytorch_lightning as pl
import torch

T = TypeVar("T")


@dataclass(frozen=True)
class _RankZeroFailed:
    message: str


def gather_from_ranks(trainer: pl.Trainer, value: float | None) -> list[float | None]:
    """Every rank's `value` (None where a rank has none), in global rank order, on every rank."""
    world, rank = trainer.world_size, trainer.global_rank
    if world == 1:
        return [value]
    # Row 0 marks the ranks that have a value, row 1 holds it; a sum over ranks fills the table.
    table = torch.zeros(2, world, dtype=torch.float64, device=trainer.strategy.root_device)
    if value is not None:
        table[0, rank], table[1, rank] = 1.0, value
    table = trainer.strategy.reduce(table, reduce_op="sum").cpu()
    present, values = table[0].tolist(), table[1].tolist()
    return [v if has else None for has, v in zip(present, values)]


def on_rank_zero(trainer: pl.Trainer, decide: Callable[..., T], *args: object) -> T:
    """Runs `decide(*args)` on global rank 0 and gives its result to every rank.

    If it raises on rank 0, rank 0 re-raises and every other rank raises a RuntimeError that
    quotes it, instead of waiting for a broadcast that never comes.
    """
    if trainer.world_size == 1:
        return decide(*args)
    result: object = None
    error: Exception | None = None
    if trainer.global_rank == 0:
        try:
            result = decide(*args)
        except Exception as err:  # noqa: BLE001 - handed to every rank below
            error = err
            result = _RankZeroFailed(f"{type(err).__name__}: {err}")
    result = trainer.strategy.broadcast(result, src=0)
    if error is not None:
        raise error
    if isinstance(result, _RankZeroFailed):  # another rank's failure, not a wrong type:
        message = f"global rank 0 failed while talking to the trial: {result.message}"
        raise RuntimeError(message)  # noqa: TRY004
    return result  # type: ignore[return-value]


def destroy_process_group() -> None:
    """Destroys the default process group if there is one (for ``atexit``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
