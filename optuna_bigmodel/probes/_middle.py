"""The knob values a probe builds its model with: each sampled knob at the middle of its space."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
import math
from typing import Any
from typing import TYPE_CHECKING

import optuna
import pytorch_lightning as pl

from optuna_bigmodel.inner import task_params
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.knobs import params_for_trial
from optuna_bigmodel.tasks import resolve_task


if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec
    from optuna_bigmodel.tasks import TaskBuild


def middle_params(knobs: Iterable[Knob]) -> dict[str, Any]:
    """Each knob's value for a probe: a sampled range's middle, a list's first choice.

    The middle of a ``log`` range is the geometric mean; an integer or stepped range rounds it
    to the nearest value it can take. Fixed knobs give their value and learned knobs their
    starting value, as in any trial.

    Example:

        .. code-block:: python

            from optuna_bigmodel.knobs import Knob
            from optuna_bigmodel.probes import middle_params

            knobs = [Knob("lr", axis="strategy", low=1e-4, high=1e-2, log=True),
                     Knob("optimizer", axis="strategy", choices=("adam", "sgd"))]
            assert middle_params(knobs) == {"lr": 1e-3, "optimizer": "adam"}  # to rounding
    """
    listed = list(knobs)
    middles = {knob.name: middle_value(knob) for knob in listed if knob.is_sampled}
    # A FixedTrial answers each suggest with these values, so fixed and learned knobs come out
    # exactly as a real trial gives them.
    trial = optuna.trial.FixedTrial(middles)
    return params_for_trial(listed, trial)  # type: ignore[arg-type]  # it only calls suggest_*


def middle_value(knob: Knob) -> Any:
    """The middle of one sampled knob's space: see :func:`middle_params`."""
    if knob.choices is not None:
        return knob.choices[0]
    low, high = knob.low, knob.high
    assert low is not None and high is not None, f"knob {knob.name!r} has neither choices nor range"
    middle = math.sqrt(low * high) if knob.log else (low + high) / 2
    if knob.step is not None:
        index = round((middle - low) / knob.step)
        # Decimal keeps a lattice point as written (0.3, not 0.30000000000000004).
        middle = float(Decimal(str(low)) + index * Decimal(str(knob.step)))
    return round(middle) if knob.is_int else middle


def build_at_middle(spec: StudySpec) -> tuple[TaskBuild, dict[str, Any]]:
    """The study's task built for a probe: knobs from :func:`middle_params`, the study's seed.

    Example:

        .. code-block:: python

            from optuna_bigmodel.probes import build_at_middle, lr_range_test
            from optuna_bigmodel.spec import load_spec

            built, params = build_at_middle(load_spec("studies/quickstart.yaml"))
            result = lr_range_test(built.module, built.datamodule)

    Raises:
        BadInputError: The task is unknown or refuses the knob values.
    """
    params = middle_params(spec.knobs)
    pl.seed_everything(spec.seed, verbose=False)  # the weights a trial with this seed starts from
    # The inner loop's own knobs (descent, warmup, decay) are not the task's to build with.
    own = task_params(params)
    built = resolve_task(spec.task.name).build(own, spec.task.model, spec.task.data, spec.seed)
    return built, params
