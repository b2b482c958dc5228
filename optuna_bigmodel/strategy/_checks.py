"""Checks the spec parser and the Lightning integration call: which strategy knobs can be learned,
and that no external LR scheduler drives a learned learning rate."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs import KnobError


# The strategy knobs that are differentiable quantities of the training run. Per-group variants
# are written "lr/<group>" and "weight_decay/<group>". Everything else (batch_size, optimizer,
# dropout on/off, ...) changes the run discretely and can only be sampled or fixed.
LEARNABLE_STRATEGY_KNOBS = frozenset({"lr", "weight_decay", "warmup", "decay"})
_PER_GROUP = ("lr", "weight_decay")


def is_learnable_strategy_knob(name: str) -> bool:
    """Whether a strategy knob called ``name`` can be learned by hypergradients.

    Example:

        .. code-block:: python

            assert is_learnable_strategy_knob("lr") and is_learnable_strategy_knob("lr/1")
            assert not is_learnable_strategy_knob("batch_size")
    """
    base, _, group = name.partition("/")
    return base in LEARNABLE_STRATEGY_KNOBS and (not group or base in _PER_GROUP)


def check_learnable_strategy_knob(name: str) -> None:
    """Raises if a strategy knob called ``name`` is declared ``learn`` but cannot take gradients.

    Example:

        .. code-block:: python

            check_learnable_strategy_knob("warmup")  # fine
            check_learnable_strategy_knob("batch_size")  # raises KnobError

    Raises:
        KnobError: (a :class:`~optuna_bigmodel.BadInputError`) naming the knob and the field
            ``mode``, listing the knobs that can be learned.
    """
    if is_learnable_strategy_knob(name):
        return
    allowed = ", ".join(sorted(LEARNABLE_STRATEGY_KNOBS))
    raise KnobError(
        name,
        "mode",
        f"got 'learn', but strategy knob {name!r} cannot be learned by gradients (it changes the "
        f"run discretely); only {allowed} (and lr/<group>, weight_decay/<group>) can; "
        "use mode 'sample' or 'fixed'",
    )


def check_no_external_scheduler(
    optimizer: torch.optim.Optimizer, schedulers: Any, learned_groups: Iterable[int]
) -> None:
    """Raises if an LR scheduler drives a parameter group whose learning rate is learned.

    A torch LR scheduler sets the rate of every group of its optimiser, so any scheduler on
    ``optimizer`` conflicts as soon as one group's rate is learned.

    Example:

        .. code-block:: python

            check_no_external_scheduler(optimizer, trainer.lr_scheduler_configs, learned_groups=[0])

    Args:
        optimizer: The optimiser whose groups' rates the controller learns (a Lightning wrapper is
            unwrapped).
        schedulers: ``None``, one scheduler, or a list of schedulers, Lightning
            ``LRSchedulerConfig`` objects or ``{"scheduler": ...}`` dicts.
        learned_groups: Indices of the groups whose learning rate is learned.

    Raises:
        BadInputError: Naming the scheduler, the optimiser and the group.
    """
    learned = sorted(set(learned_groups))
    optimizer = unwrap_optimizer(optimizer)
    for index, entry in enumerate(_as_list(schedulers)):
        scheduler = _unwrap_scheduler(entry, index)
        if unwrap_optimizer(scheduler.optimizer) is optimizer and learned:
            raise BadInputError(
                f"schedulers[{index}]: {type(scheduler).__name__} drives parameter group "
                f"{learned[0]} of {type(optimizer).__name__}, whose learning rate is learned by "
                "hypergradients; expected no LR scheduler on that optimiser: remove the "
                "scheduler, or make the lr knob 'sample' or 'fixed'"
            )


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimiser inside a Lightning ``LightningOptimizer`` (or ``optimizer`` itself)."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


def _as_list(schedulers: Any) -> list[Any]:
    if schedulers is None:
        return []
    if isinstance(schedulers, (list, tuple)):
        return list(schedulers)
    return [schedulers]


def _unwrap_scheduler(entry: Any, index: int) -> Any:
    scheduler = entry.get("scheduler") if isinstance(entry, Mapping) else entry
    scheduler = getattr(scheduler, "scheduler", scheduler)  # Lightning's LRSchedulerConfig
    if not hasattr(scheduler, "optimizer"):
        raise BadInputError(
            f"schedulers[{index}]: got {entry!r}; expected a torch LR scheduler, a Lightning "
            "LRSchedulerConfig or a {'scheduler': ...} dict"
        )
    return scheduler
