"""The training-strategy axis: learning rate, its schedule and weight decay, learned inside one
training run by hypergradients on held-out search batches.

- :func:`scheduled_lr` and :class:`LRSchedule`: the schedule, one pure function of the step whose
  base rate, warm-up length and decay can be learned (:class:`LearnedValue`).
- :class:`HypergradientController`: the inner loop; hooks for a Lightning module or a plain loop.
  :class:`ExactHypergradientController` is its exact (Hessian) variant, for tests.
- :func:`check_learnable_strategy_knob`, :func:`check_no_external_scheduler`: the checks the spec
  parser and the Lightning integration call.
- :class:`TrajectoryRecorder`: the final value and a subsampled trajectory of each learned knob.
"""

from optuna_bigmodel.strategy._checks import check_learnable_strategy_knob
from optuna_bigmodel.strategy._checks import check_no_external_scheduler
from optuna_bigmodel.strategy._checks import is_learnable_strategy_knob
from optuna_bigmodel.strategy._checks import LEARNABLE_STRATEGY_KNOBS
from optuna_bigmodel.strategy._controller import HypergradientController
from optuna_bigmodel.strategy._exact import ExactHypergradientController
from optuna_bigmodel.strategy._meta import MetaOptimizer
from optuna_bigmodel.strategy._recorder import TrajectoryRecorder
from optuna_bigmodel.strategy._schedule import LRSchedule
from optuna_bigmodel.strategy._schedule import schedule_log_derivatives
from optuna_bigmodel.strategy._schedule import scheduled_lr
from optuna_bigmodel.strategy._values import LearnedValue


__all__ = [
    "LEARNABLE_STRATEGY_KNOBS",
    "ExactHypergradientController",
    "HypergradientController",
    "LRSchedule",
    "LearnedValue",
    "MetaOptimizer",
    "TrajectoryRecorder",
    "check_learnable_strategy_knob",
    "check_no_external_scheduler",
    "is_learnable_strategy_knob",
    "schedule_log_derivatives",
    "scheduled_lr",
]
