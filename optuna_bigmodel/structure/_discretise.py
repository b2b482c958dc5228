"""Turning learned gates into one structure: thresholds, top-k to fit a budget, argmax choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs._messages import unknown
from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._gate import check_number
from optuna_bigmodel.structure._gate import Gate
from optuna_bigmodel.structure._params import count_weights
from optuna_bigmodel.structure._params import learned_choice_gates
from optuna_bigmodel.structure._params import named_gates
from optuna_bigmodel.structure._size import expected_param_count
from optuna_bigmodel.structure._unit_gate import KEEP_THRESHOLD
from optuna_bigmodel.structure._unit_gate import UnitGate


@dataclass(frozen=True)
class Structure:
    """One discrete structure of a gated model: what each gate keeps.

    Example:

        .. code::

            structure = discretise(model, target=0.5)
            trial.set_user_attr("structure", structure.to_dict())
            apply_structure(model, Structure.from_dict(structure.to_dict()))

    Args:
        gates: Per unit gate (by path), the indices of the kept units, ascending.
        choices: Per choice (by path), the chosen candidate.
        params_before: The weights of the whole model.
        params_after: The weights of the model with this structure (what the export has).
    """

    gates: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    choices: Mapping[str, str] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reads it back."""
        return {
            "gates": {name: list(kept) for name, kept in self.gates.items()},
            "choices": dict(self.choices),
            "params_before": self.params_before,
            "params_after": self.params_after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Structure:
        """The structure :meth:`to_dict` wrote."""
        gates = {name: tuple(int(i) for i in kept) for name, kept in data["gates"].items()}
        return cls(gates, dict(data["choices"]), data["params_before"], data["params_after"])


def discretise(
    module: nn.Module,
    target: float | None = None,
    *,
    fill: bool = True,
    choices: Mapping[str, str] | None = None,
) -> Structure:
    """The structure the gates of ``module`` describe, trimmed to a size budget.

    A learned unit is kept when its keep-probability is at least 0.5, and every gate keeps at
    least its ``min_kept`` most probable units; a learned choice takes its most probable
    candidate. Off and fixed gates keep what they keep. With ``target``, kept learned units are
    then dropped, least probable first and never below ``min_kept``, until the structure has at most
    ``target`` times the model's weights; then, with ``fill``, the dropped and shut learned units
    are added back, most probable first, each one that still fits the budget (a unit that adds no
    weights, e.g. one inside a dropped block, or one frozen shut at keep-probability 0, is not),
    so the structure uses the budget it is given. The model is not changed; see
    :func:`apply_structure`.

    Args:
        module: The model.
        target: The largest fraction of weights to keep, in (0, 1], or None for no budget.
        fill: With ``target``, add units back while they fit (see above).
        choices: Per learned choice (by path), a candidate to take instead of the most probable
            one, e.g. from :func:`pick_choices_by_loss`.

    Note:
        The fill is greedy in keep-probability, not the largest structure that fits: the gates'
        ranking decides which units come back. When ``min_kept`` makes the target unreachable,
        the smallest structure allowed is returned: compare ``params_after`` with the budget.
    """
    if target is not None:
        check_number("discretise", "target", target, "a number in (0, 1]", lambda v: 0 < v <= 1)
    gates = dict(named_gates(module))
    picked = dict(choices or {})
    named_learned_choices(module, picked, "discretise choices")
    masks = {gate: _initial_mask(gate, picked.get(name)) for name, gate in gates.items()}
    total = count_weights(module)
    if target is not None:
        _trim(module, gates.values(), masks, target * total)
        if fill:
            _fill(module, gates.values(), masks, target * total)
    return _structure(gates, masks, total, _hard_count(module, masks))


def named_learned_choices(
    module: nn.Module, choices: Mapping[str, str], owner: str
) -> dict[str, ChoiceGate]:
    """The learned choice gates that ``choices`` (path -> candidate) names, each checked.

    Raises:
        BadInputError: A path is not a learned choice of ``module``, or a candidate not one of
            its gate's; the message starts with ``owner`` (e.g. ``"discretise choices"``).
    """
    learned = learned_choice_gates(module)
    for name, candidate in choices.items():
        if name not in learned:
            raise BadInputError(f"{owner}: {unknown('learned choice', name, learned)}")
        if candidate not in learned[name].names:
            detail = unknown("candidate", candidate, learned[name].names)
            raise BadInputError(f"{owner}[{name!r}]: {detail}")
    return {name: learned[name] for name in choices}


def _initial_mask(gate: Gate, choice: str | None = None) -> torch.Tensor:
    probs = gate.keep_probs().detach().double()
    if isinstance(gate, ChoiceGate):
        index = gate.names.index(gate.chosen()) if gate.logits is None else int(probs.argmax())
        index = index if choice is None else gate.names.index(choice)
        return torch.nn.functional.one_hot(torch.tensor(index), gate.n_units).double()
    mask = (probs >= KEEP_THRESHOLD).double()
    mask[probs.argsort(descending=True, stable=True)[: gate.min_kept]] = 1.0
    return mask


def _trim(
    module: nn.Module, gates: Any, masks: dict[Gate, torch.Tensor], budget: float
) -> None:
    # Least probable kept unit first; ties go to the later unit, so the order is reproducible.
    units = [
        (float(prob), -index, gate)
        for gate in gates
        if isinstance(gate, UnitGate) and gate.logits is not None
        for index, prob in enumerate(gate.keep_probs().detach().tolist())
    ]
    for _, neg_index, gate in sorted(units, key=lambda unit: unit[:2]):
        if _hard_count(module, masks) <= budget:
            return
        mask = masks[gate]
        if mask[-neg_index] == 1.0 and int(mask.sum()) > gate.min_kept:
            mask[-neg_index] = 0.0


def _fill(
    module: nn.Module, gates: Any, masks: dict[Gate, torch.Tensor], budget: float
) -> None:
    # Most probable unit first (ties to the earlier unit); one that does not fit is skipped, as a
    # later, smaller one may still fit. Probability 0 means frozen shut (StructurePruning).
    units = [
        (-float(prob), index, gate)
        for gate in gates
        if isinstance(gate, UnitGate) and gate.logits is not None
        for index, prob in enumerate(gate.keep_probs().detach().tolist())
        if prob > 0.0
    ]
    count = _hard_count(module, masks)
    for _, index, gate in sorted(units, key=lambda unit: unit[:2]):
        mask = masks[gate]
        if mask[index] == 1.0:
            continue
        mask[index] = 1.0
        grown = _hard_count(module, masks)
        if count < grown <= budget:
            count = grown
        else:
            mask[index] = 0.0


def _hard_count(module: nn.Module, masks: Mapping[Gate, torch.Tensor]) -> int:
    return round(float(expected_param_count(module, masks)))


def _structure(
    gates: Mapping[str, Gate], masks: Mapping[Gate, torch.Tensor], before: int, after: int
) -> Structure:
    kept, choices = {}, {}
    for name, gate in gates.items():
        indices = tuple(int(i) for i in masks[gate].nonzero().flatten().tolist())
        if isinstance(gate, ChoiceGate):
            choices[name] = gate.names[indices[0]]
        else:
            kept[name] = indices
    return Structure(kept, choices, before, after)
