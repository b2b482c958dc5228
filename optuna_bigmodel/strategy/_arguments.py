"""Checks of the controller's arguments, each naming the argument, the value and what is allowed,
and small list helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy._checks import unwrap_optimizer


def split(items: list[Any], sizes: list[int]) -> list[list[Any]]:
    """``items`` cut into consecutive runs of the given sizes (one per parameter group)."""
    out, start = [], 0
    for size in sizes:
        out.append(items[start : start + size])
        start += size
    return out


def checked_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimiser itself (unwrapped from Lightning's wrapper)."""
    optimizer = unwrap_optimizer(optimizer)
    if not isinstance(optimizer, torch.optim.Optimizer):
        got = type(optimizer).__name__
        raise BadInputError(f"optimizer: got {got}; expected a torch.optim.Optimizer")
    return optimizer


def checked_groups(groups: Sequence[int] | None, n_groups: int) -> list[int]:
    """Distinct indices of existing parameter groups; ``None`` means all of them."""
    if groups is None:
        return list(range(n_groups))
    out = list(groups)
    if not out or len(set(out)) != len(out) or not all(
        isinstance(g, int) and 0 <= g < n_groups for g in out
    ):
        raise BadInputError(
            f"groups: got {groups!r}; expected distinct parameter group indices in [0, {n_groups})"
        )
    return out


def checked_unit(name: str, value: float) -> float:
    """A number in [0, 1]."""
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise BadInputError(f"{name}: got {value!r}; expected a number in [0, 1]")
    return float(value)


def checked_positive_int(name: str, value: int) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInputError(f"{name}: got {value!r}; expected an integer >= 1")
    return value
