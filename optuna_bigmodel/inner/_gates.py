"""The structure half of the bilevel inner loop: gate logits, their size budget and records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from optuna_bigmodel.spec import StructureSpec
from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.knobs._messages import got
from optuna_bigmodel.knobs._messages import one_of
from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import CollapseGuard
from optuna_bigmodel.structure import count_weights
from optuna_bigmodel.structure import discretise
from optuna_bigmodel.structure import expected_fraction
from optuna_bigmodel.structure import GateRecorder
from optuna_bigmodel.structure import learned_choice_gates
from optuna_bigmodel.structure import pick_choices_by_loss
from optuna_bigmodel.structure import SizeBudget
from optuna_bigmodel.structure import Structure
from optuna_bigmodel.structure import structure_parameters


# Off by default: on the pilot seeds of benchmarks/learned_structure.py neither a delay (0.5,
# 0.9) nor picking by loss gave a better final loss than choices learned from the first step
# and picked by logits (see benchmarks/RESULTS.md).
CHOICE_DELAY = 0.0
CHOICE_PICK = "logits"
CHOICE_PICKS = ("loss", "logits")


class GateLearner:
    """Steps a model's learned gates on search losses under a :class:`SizeBudget`.

    The gate logits have an Adam optimiser of their own; the size budget's multiplier ascends on
    the same search loss; a :class:`CollapseGuard` lifts logits that collapse onto parameter-free
    choices, and records it. At ``discretise_step`` the gates are discretised to the budget and
    fixed, so that the rest of the run fine-tunes the weights of the structure the trial reports.

    Choice logits stay equal (every candidate weighs the same in the mixed op) for the first
    ``choice_delay`` of the steps before ``discretise_step``: a softmax choice made while the
    weights are still random commits to whichever candidate helps an untrained network most,
    not the one the trained network is best with. With ``choice_pick`` ``"loss"`` the
    discretisation fixes each learned choice to the candidate with which the model's loss on a few
    search batches is lowest (:func:`~optuna_bigmodel.structure.pick_choices_by_loss`), given a
    loss to measure; ``"logits"`` takes the most probable candidate.

    Args:
        module: The model, its gates already in ``learn`` mode.
        settings: The spec's ``structure:`` section.
        total_steps: The run's length in training steps.
        max_record_points: The most points each gate's trajectory keeps.
        choice_delay: The fraction, in [0, 1), of the gate-learning steps (those before
            ``discretise_at``) during which choice logits do not step.
        choice_pick: ``"loss"`` or ``"logits"``: how discretising picks each learned choice.
    """

    def __init__(
        self,
        module: nn.Module,
        settings: StructureSpec,
        total_steps: int,
        max_record_points: int,
        *,
        choice_delay: float = CHOICE_DELAY,
        choice_pick: str = CHOICE_PICK,
    ) -> None:
        self.module = module
        self.choice_pick = check_choice_pick(choice_pick)
        self.settings = settings
        self.parameters = list(structure_parameters(module))
        # No logits when a resumed run's gates were already discretised.
        self.optimizer = torch.optim.Adam(self.parameters, lr=settings.gate_lr) if self.parameters else None
        warmup = int(settings.warmup_fraction * total_steps)
        self.budget = SizeBudget(settings.budget, warmup_steps=warmup, lr=settings.gate_lr)
        self.guard = CollapseGuard()
        self.recorder = GateRecorder(max_record_points)
        self.total_weights = count_weights(module)
        self.discretise_step = max(1, int(settings.discretise_at * total_steps))
        self.choice_start_step = int(check_choice_delay(choice_delay) * self.discretise_step)
        self._choice_logits = {id(gate.logits) for gate in learned_choice_gates(module).values()}
        self.structure: Structure | None = None

    @property
    def learning(self) -> bool:
        """Whether the gates still learn (they are fixed once discretised)."""
        return self.structure is None

    def penalty(self, step: int) -> torch.Tensor:
        """The budget's term of the search loss at ``step``."""
        return self.budget.penalty(expected_fraction(self.module, self.total_weights), step)

    def inputs(self) -> list[torch.Tensor]:
        """What the search loss is differentiated by: the logits, then the multiplier."""
        return [*self.parameters, self.budget.lam]

    def step(self, grads: list[torch.Tensor | None], step: int) -> None:
        """One gate step and one multiplier step from the gradients of :meth:`inputs`."""
        *logit_grads, lam_grad = grads
        choices_wait = step < self.choice_start_step
        for param, grad in zip(self.parameters, logit_grads):
            # A parameter without a gradient is skipped by Adam: no step, no moment estimates.
            waits = choices_wait and id(param) in self._choice_logits
            param.grad = None if grad is None or waits else grad.detach()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.budget.lam.grad = None if lam_grad is None else lam_grad.detach()
        self.budget.step()
        self.guard.project(self.module, step)
        self.recorder.record(self.module, step)

    def discretise_and_fix(self, loss: Callable[[], float] | None = None) -> Structure:
        """Discretise to the budget and fix the gates (idempotent). ``loss`` is the model's loss
        on fixed held-out batches, to pick choices by when ``choice_pick`` is ``"loss"``."""
        if self.structure is None:
            choices = None
            if self.choice_pick == "loss" and loss is not None:
                choices = pick_choices_by_loss(self.module, loss)
            self.structure = discretise(self.module, target=self.settings.budget, choices=choices)
            apply_structure(self.module, self.structure)
        return self.structure

    def state_dict(self) -> dict[str, Any]:
        """What resuming needs beside the model's own tensors (the logits or masks)."""
        return {
            "optimizer": self.optimizer.state_dict() if self.learning else None,
            "budget": self.budget.state_dict(),
            "guard": self.guard.state_dict(),
            "recorder": self.recorder.state_dict(),
            "structure": None if self.structure is None else self.structure.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resumes from :meth:`state_dict`; a discretised structure must already be applied
        (see :func:`saved_structure`)."""
        if state["structure"] is not None:
            self.structure = Structure.from_dict(state["structure"])
        elif state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.budget.load_state_dict(state["budget"])
        self.guard.load_state_dict(state["guard"])
        self.recorder.load_state_dict(state["recorder"])

    def record(self) -> dict[str, Any]:
        """The trial attribute ``structure`` (discretising now if the run ended early)."""
        structure = self.structure or discretise(self.module, target=self.settings.budget)
        record = self.recorder.trial_attr(structure, self.guard.events)
        record["discretised_at_step"] = self.discretise_step if self.structure else None
        record["budget"] = self.settings.budget
        record["structure"] = structure.to_dict()
        return record


def check_choice_delay(value: float) -> float:
    """``value`` if it is a valid ``choice_delay``, else a :class:`BadInputError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        expected = "a number in [0, 1): the fraction of the gate-learning steps before choices step"
        raise BadInputError(f"GateLearner choice_delay: {got(value, expected)}")
    return float(value)


def check_choice_pick(value: str) -> str:
    """``value`` if it is a valid ``choice_pick``, else a :class:`BadInputError`."""
    if value not in CHOICE_PICKS:
        raise BadInputError(f"GateLearner choice_pick: {got(value, one_of(CHOICE_PICKS))}")
    return value


def saved_structure(state: dict[str, Any] | None) -> Structure | None:
    """The discretised structure in a saved :meth:`GateLearner.state_dict`, if it had one."""
    if not state or not state.get("gates") or state["gates"]["structure"] is None:
        return None
    return Structure.from_dict(state["gates"]["structure"])
