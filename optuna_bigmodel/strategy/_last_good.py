"""The last good state of a run, kept so that a non-finite loss can be undone."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class LastGood:
    """Copies of the weights, the optimiser state and the controller's strategy state.

    Module buffers (e.g. BatchNorm statistics) are not the optimiser's and are not kept.
    """

    weights: list[torch.Tensor]
    optimizer_state: dict[str, Any]
    strategy_state: dict[str, Any]


def capture_last_good(optimizer: torch.optim.Optimizer, strategy_state: dict[str, Any]) -> LastGood:
    """Copies what :func:`restore_last_good` puts back, sharing no storage with the live run."""
    with torch.no_grad():
        weights = [p.detach().clone() for p in _all_params(optimizer)]
    return LastGood(weights, copy.deepcopy(optimizer.state_dict()), copy.deepcopy(strategy_state))


def restore_last_good(optimizer: torch.optim.Optimizer, good: LastGood) -> dict[str, Any]:
    """Puts the weights and optimiser state back; returns a fresh copy of the strategy state."""
    with torch.no_grad():
        for param, saved in zip(_all_params(optimizer), good.weights):
            param.copy_(saved)
    # load_state_dict may keep the tensors it is given, so it gets a copy the run may mutate.
    optimizer.load_state_dict(copy.deepcopy(good.optimizer_state))
    return copy.deepcopy(good.strategy_state)


def _all_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]
