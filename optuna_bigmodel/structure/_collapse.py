"""Guarding learned structures against collapse, and recording it when it threatens.

Two collapses are known. Unit gates can all shut together (a size budget pulls every gate down,
and a shut unit gets no gradient to come back). Choices that may skip an operator can all pick the
parameter-free candidate (skip, identity, zero): it trains fastest early on, so the mixed op
learns to prefer it (the "skip collapse" of DARTS).

The guard chosen here is a projection after each gate step, like projecting a multiplier to
``>= 0``, rather than temperature annealing, because it gives a bound one can state:

- a unit gate keeps at least ``min_kept`` units at keep-probability >= 0.5 (the threshold at
  which a discretised structure keeps a unit): the top ``min_kept`` logits are lifted there;
- among the choices with both parametric and parameter-free candidates, at most
  ``max_free_fraction`` of them (and always at least one) may favour a parameter-free one; for
  the others, those with the smallest margin, the best parametric candidate's logit is lifted
  just above the favourite's.

Each intervention is kept as a :class:`CollapseEvent`, for the trial's record.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
import math
from typing import Any

import torch
from torch import nn

from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._gate import check_number
from optuna_bigmodel.structure._params import named_gates
from optuna_bigmodel.structure._size import unit_weight_counts
from optuna_bigmodel.structure._unit_gate import KEEP_THRESHOLD
from optuna_bigmodel.structure._unit_gate import UnitGate


# Lifted logits land this far past the threshold, so rounding cannot leave them just under it.
_MARGIN = 1e-3


@dataclass(frozen=True)
class CollapseEvent:
    """One collapse the guard saw (and, if it projects, undid).

    Args:
        step: The training step.
        gate: The gate's path, or ``"choices"`` for the choices as a whole.
        kind: ``"units"`` (too few units open) or ``"parameter_free"`` (too many choices
            favouring a parameter-free candidate).
        detail: What was seen, e.g. ``"1 of 4 units open; min_kept = 2"``.
    """

    step: int
    gate: str
    kind: str
    detail: str


class CollapseGuard:
    """Detects collapse of learned gates, records it, and projects the logits back.

    Example:

        .. code::

            guard = CollapseGuard(max_free_fraction=0.5)
            gate_optimizer.step()
            guard.project(model, step)  # after every gate step
            attrs["collapse"] = [asdict(e) for e in guard.events]

    Args:
        max_free_fraction: The largest share of skip-capable choices that may favour a
            parameter-free candidate.
    """

    def __init__(self, max_free_fraction: float = 0.5) -> None:
        self.max_free_fraction = check_number(
            "CollapseGuard", "max_free_fraction", max_free_fraction, "a number in [0, 1]",
            lambda v: 0 <= v <= 1,
        )  # fmt: skip
        self.events: list[CollapseEvent] = []

    @torch.no_grad()
    def check(self, module: nn.Module, step: int) -> list[CollapseEvent]:
        """Records and returns the collapses of ``module``'s learned gates; changes nothing."""
        return self._run(module, step, repair=False)

    @torch.no_grad()
    def project(self, module: nn.Module, step: int) -> list[CollapseEvent]:
        """Like :meth:`check`, then lifts logits so that neither collapse holds any more."""
        return self._run(module, step, repair=True)

    def _run(self, module: nn.Module, step: int, repair: bool) -> list[CollapseEvent]:
        events = []
        for name, gate in named_gates(module):
            if isinstance(gate, UnitGate) and gate.logits is not None:
                events += _guard_units(name, gate, step, repair)
        events += self._guard_choices(module, step, repair)
        self.events += events
        return events

    def _guard_choices(self, module: nn.Module, step: int, repair: bool) -> list[CollapseEvent]:
        choices = [gate for _, gate in named_gates(module) if _can_skip(gate)]
        free = [gate for gate in choices if _favours_free(gate)]
        allowed = max(1, math.floor(self.max_free_fraction * len(choices)))
        if len(free) <= allowed:
            return []
        detail = f"{len(free)} of {len(choices)} choices favour a parameter-free candidate"
        event = CollapseEvent(step, "choices", "parameter_free", f"{detail}; allowed {allowed}")
        if repair:
            for gate in sorted(free, key=_free_margin)[: len(free) - allowed]:
                _lift_parametric(gate)
        return [event]

    def state_dict(self) -> dict[str, Any]:
        """The events so far, so that a resumed run keeps its record."""
        return {"events": [asdict(event) for event in self.events]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`."""
        self.events = [CollapseEvent(**event) for event in state["events"]]


def _guard_units(name: str, gate: UnitGate, step: int, repair: bool) -> list[CollapseEvent]:
    probs = gate.keep_probs()
    open_units = int((probs >= KEEP_THRESHOLD).sum())
    if open_units >= gate.min_kept:
        return []
    if repair:
        top = probs.argsort(descending=True)[: gate.min_kept]
        floor = gate.logit_for(KEEP_THRESHOLD) + _MARGIN
        gate.logits[top] = gate.logits[top].clamp(min=floor)
    detail = f"{open_units} of {gate.n_units} units open; min_kept = {gate.min_kept}"
    return [CollapseEvent(step, name, "units", detail)]


def _can_skip(gate: Any) -> bool:
    # A learned choice with both kinds of candidate: only there can "skip" win by default.
    if not isinstance(gate, ChoiceGate) or gate.logits is None:
        return False
    free = [count == 0 for count in unit_weight_counts(gate)]
    return any(free) and not all(free)


def _favours_free(gate: ChoiceGate) -> bool:
    return unit_weight_counts(gate)[int(gate.logits.argmax())] == 0


def _free_margin(gate: ChoiceGate) -> float:
    # How far the favourite (parameter-free) is ahead of the best parametric candidate.
    return float(gate.logits.max() - gate.logits[_best_parametric(gate)])


def _best_parametric(gate: ChoiceGate) -> int:
    counts = unit_weight_counts(gate)
    parametric = [i for i, count in enumerate(counts) if count > 0]
    return max(parametric, key=lambda i: float(gate.logits[i]))


def _lift_parametric(gate: ChoiceGate) -> None:
    gate.logits[_best_parametric(gate)] = gate.logits.max() + _MARGIN
