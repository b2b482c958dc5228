"""The knobs a study samples: the declared ones plus, with ``structure: sample``, one knob per gate
of the task's model, derived from the model itself so that nobody writes that space twice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TYPE_CHECKING

from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner._plan import task_params
from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import named_gates
from optuna_bigmodel.structure import structure_knobs

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec
    from optuna_bigmodel.tasks import Task


def study_knobs(spec: StudySpec, task: Task) -> tuple[Knob, ...]:
    """``spec.knobs``, plus the gate knobs of the task's model when ``structure.mode`` is sample
    (every gate), or learn with ``choices: sample`` (the choice gates only).

    The model is built once with each sampled knob at its first grid value; its gates give the
    knobs (see :func:`optuna_bigmodel.structure.structure_knobs`).

    Raises:
        BadInputError: The model has no gate with more than one option, or a gate knob has the
            name of a declared knob.
    """
    if not spec.structure.samples_gates:
        return spec.knobs
    probe = {knob.name: knob.grid_values()[0] for knob in spec.knobs}
    built = task.build(task_params(probe), spec.task.model, spec.task.data, spec.seed)
    derived = structure_knobs(built.module)
    what = "gate that has more than one option"
    if spec.structure.mode == "learn":  # choices sampled, unit gates learned
        choices = {name for name, gate in named_gates(built.module) if isinstance(gate, ChoiceGate)}
        derived = [knob for knob in derived if knob.name in choices]
        what = "choice gate (candidate operators)"
    if not derived:
        raise BadInputError(
            f"structure: {_sampled(spec)}, but task {task.name!r} builds a model with no "
            f"{what}; expected a model with such gates"
        )
    clash = sorted({k.name for k in derived} & {k.name for k in spec.knobs})
    if clash:
        raise BadInputError(f"knobs: {clash} are the names of the model's gates; rename them")
    return (*spec.knobs, *derived)


def sampled_choices(
    spec: StudySpec, params: Mapping[str, Any], module: nn.Module
) -> dict[str, str]:
    """The trial's value of each choice gate of ``module`` when ``choices: sample``, else none."""
    if not (spec.structure.mode == "learn" and spec.structure.choices == "sample"):
        return {}
    return {name: params[name] for name, gate in named_gates(module)
            if isinstance(gate, ChoiceGate) and name in params}  # fmt: skip


def _sampled(spec: StudySpec) -> str:
    return "mode 'sample'" if spec.structure.mode == "sample" else "choices 'sample'"


def apply_sampled_structure(module: nn.Module, params: Mapping[str, Any]) -> None:
    """Fixes each gate of ``module`` to the trial's value of its knob.

    Raises:
        BadInputError: The trial's model has gates that the study's space was not derived from
            (a sampled knob changed the model's shape).
    """
    missing = [name for name, _ in named_gates(module) if name not in params]
    derived = {k.name for k in structure_knobs(module)}
    if any(name in derived for name in missing):
        raise BadInputError(
            f"structure: mode 'sample' derived the study's gate knobs from one model, but this "
            f"trial's model has gates {sorted(set(missing) & derived)} without a value: a sampled "
            "knob changes the model's shape; fix that knob or use structure mode 'learn'"
        )
    apply_structure(module, params)
