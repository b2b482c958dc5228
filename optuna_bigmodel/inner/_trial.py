"""One trial's model, data and inner-loop callbacks, from the study spec and the trial's values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import TYPE_CHECKING

import optuna
import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn

from optuna_bigmodel.callbacks import StructurePruning
from optuna_bigmodel.inner._bilevel import BilevelTuning
from optuna_bigmodel.inner._plan import inner_plan
from optuna_bigmodel.inner._plan import InnerPlan
from optuna_bigmodel.inner._plan import task_params
from optuna_bigmodel.inner._space import apply_sampled_structure
from optuna_bigmodel.inner._space import sampled_choices
from optuna_bigmodel.structure import discretise

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec
    from optuna_bigmodel.tasks import Task
    from optuna_bigmodel.tasks import TaskBuild


@dataclass(frozen=True)
class PreparedTrial:
    """What one trial trains, and the callbacks its trainer needs beside pruning."""

    build: TaskBuild
    plan: InnerPlan
    callbacks: list[pl.Callback]


def prepare_trial(
    spec: StudySpec,
    task: Task,
    params: Mapping[str, Any],
    seed: int,
    trial: optuna.trial.BaseTrial | None,
) -> PreparedTrial:
    """Builds the task with the trial's values and the callbacks of its inner loop.

    ``params`` holds the declared knobs' values and, with ``structure: sample``, one value per
    gate knob (see :func:`~optuna_bigmodel.inner.study_knobs`); the gates are fixed to those.
    ``trial`` receives the inner loop's records (``None``: keep them in the callback only).
    """
    plan = inner_plan(spec, params)
    declared = {knob.name for knob in spec.knobs}
    own = task_params({name: value for name, value in params.items() if name in declared})
    built = task.build(own, spec.task.model, spec.task.data, seed)
    if spec.structure.mode == "sample":
        apply_sampled_structure(built.module, params)
        _check_sampled_size(built.module, spec.structure.budget, trial)
    callbacks: list[pl.Callback] = []
    if not plan.is_plain:
        fixed = sampled_choices(spec, params, built.module)
        callbacks.append(BilevelTuning(plan, trial=trial, fixed_choices=fixed))
    if plan.learns_structure and spec.structure.prune_below is not None:
        callbacks.append(StructurePruning(spec.structure.prune_below, trial=trial))
    if spec.trainer.early_stopping is not None:
        mode = "min" if spec.direction == "minimize" else "max"
        patience = spec.trainer.early_stopping
        callbacks.append(EarlyStopping(spec.metric, patience=patience, mode=mode, strict=False))
    return PreparedTrial(built, plan, callbacks)


def _check_sampled_size(
    module: nn.Module, budget: float, trial: optuna.trial.BaseTrial | None
) -> None:
    """Records the sampled structure's weight count; over the budget, the trial ends as pruned
    before it trains (so a search over structures compares models under one size limit).

    Raises:
        optuna.TrialPruned: The structure keeps more than ``budget`` of the model's weights.
    """
    size = discretise(module)
    if trial is not None:
        trial.set_user_attr("n_weights", size.params_after)
    limit = budget * size.params_before
    if size.params_after > limit:
        if trial is not None:
            trial.set_user_attr("over_budget", {"weights": size.params_after, "limit": limit})
        raise optuna.TrialPruned(
            f"structure over budget: {size.params_after} weights > {budget:g} x "
            f"{size.params_before}; nothing was trained"
        )
