"""The strategy values of a controller, and what one training step makes of them: each group's
learning rate and weight decay, and the derivatives the tangents need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy._schedule import LRSchedule
from optuna_bigmodel.strategy._schedule import schedule_log_derivatives
from optuna_bigmodel.strategy._values import Declared
from optuna_bigmodel.strategy._values import LearnedValue
from optuna_bigmodel.strategy._values import StrategyValue
from optuna_bigmodel.strategy._values import strategy_value


SCHEDULE_SHAPE = ("warmup", "decay")


def lr_names(schedule: LRSchedule, groups: Sequence[int]) -> list[str]:
    """The name of the base learning rate of each driven group: ``lr`` or ``lr/<group>``."""
    return [f"lr/{g}" if schedule.per_group else "lr" for g in groups]


def wd_names(
    weight_decay: Declared | Sequence[Declared] | None, groups: Sequence[int]
) -> list[str] | None:
    """The name of each driven group's weight decay, or None when the optimiser keeps its own."""
    if weight_decay is None:
        return None
    per_group = isinstance(weight_decay, (list, tuple))
    return [f"weight_decay/{g}" if per_group else "weight_decay" for g in groups]


@dataclass
class StrategyTable:
    """The strategy values by record name, and which of them each driven group ``k`` uses.

    Args:
        values: Every value, learned or fixed, by name.
        lr_names: The name of each driven group's base learning rate.
        wd_names: The name of each driven group's weight decay; None when the optimiser keeps
            its own.
    """

    values: dict[str, StrategyValue]
    lr_names: list[str]
    wd_names: list[str] | None


def make_table(
    schedule: LRSchedule,
    weight_decay: Declared | Sequence[Declared] | None,
    groups: Sequence[int],
) -> StrategyTable:
    """Checks every declared value and stores it under its record name.

    Raises:
        BadInputError: A value out of its limits, or a per-group list of the wrong length.
    """
    values: dict[str, StrategyValue] = {}
    for name, declared in zip(lr_names(schedule, groups), schedule.declared_lrs(len(groups))):
        values[name] = strategy_value(name, declared, log=True, low=0.0)
    values["warmup"] = strategy_value("warmup", schedule.warmup, log=False, low=0.0)
    values["decay"] = strategy_value(
        "decay", schedule.decay, log=False, low=0.0, high=schedule.decay_limit
    )
    names = wd_names(weight_decay, groups)
    if names is not None:
        for name, declared in zip(names, _per_group(weight_decay, len(groups))):
            # A fixed decay of 0 is allowed; a learned one lives on a log scale, so it is > 0.
            learned = isinstance(declared, LearnedValue)
            values[name] = strategy_value(name, declared, log=learned, low=0.0)
    return StrategyTable(values, lr_names(schedule, groups), names)


@dataclass(frozen=True)
class StepPlan:
    """One step's learning rate ``eta[k]`` and weight decay ``lam[k]`` per driven group ``k``.

    Args:
        eta: Learning rate of each driven group.
        lam: Weight decay of each driven group, or None when the optimiser keeps its own.
        lr_names: Name of each group's base learning rate.
        wd_names: Name of each group's weight decay, or None.
        shape_derivatives: ``d log eta / d p`` for the learned schedule shape values.
    """

    eta: list[float]
    lam: list[float] | None
    lr_names: list[str]
    wd_names: list[str] | None
    shape_derivatives: dict[str, float]

    def lr_log_derivative(self, name: str, k: int) -> float:
        """``d log eta[k] / d name`` (1 for the group's own log base rate)."""
        if name == self.lr_names[k]:
            return 1.0
        return self.shape_derivatives.get(name, 0.0)

    def decay_derivative(self, name: str, k: int) -> float:
        """The factor of ``theta_t`` in ``d theta_{t+1} / d name``: ``-eta lam`` for log lam."""
        if self.wd_names is not None and name == self.wd_names[k]:
            return -self.eta[k] * self.lam[k]
        return 0.0

    def keep(self, k: int) -> float:
        """How much of the weights the decoupled decay keeps: ``1 - eta lam``."""
        return 1.0 if self.lam is None else 1.0 - self.eta[k] * self.lam[k]


def plan_step(schedule: LRSchedule, table: StrategyTable, step: int) -> StepPlan:
    """The plan of ``step`` from the current values."""
    values = table.values
    learned_shape = tuple(n for n in SCHEDULE_SHAPE if values[n].learned)
    shape, derivatives = schedule_log_derivatives(
        step, values["warmup"].value, values["decay"].value, schedule.total_steps, schedule.kind,
        learned_shape,
    )
    eta = [math.exp(values[name].raw) * shape for name in table.lr_names]
    lam = None if table.wd_names is None else [values[name].value for name in table.wd_names]
    return StepPlan(eta, lam, table.lr_names, table.wd_names, derivatives)


def _per_group(declared: Declared | Sequence[Declared], n_groups: int) -> list[Declared]:
    if not isinstance(declared, (list, tuple)):
        return [declared] * n_groups
    if len(declared) != n_groups:
        raise BadInputError(
            f"weight_decay: got {len(declared)} values; expected one per driven parameter group "
            f"({n_groups}), or a single value"
        )
    return list(declared)

