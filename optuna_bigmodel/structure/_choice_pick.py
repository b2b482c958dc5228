"""Picking each learned choice by the loss the model has with it alone, not by its largest logit.

A softmax mixed op's logits favour the candidate whose output, scaled up, lowers the loss fastest
while the weights are young (often the one with the largest output, e.g. ReLU over GELU), and
Adam turns any consistent bias into a committed choice within a few dozen steps. What the
discretised model needs is the candidate it computes best with: so each choice is fixed to each
candidate in turn and the model's loss on a few held-out batches is measured (forward passes
only), one choice after another.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._params import learned_choice_gates


# A logit at which every relaxation's weight underflows to exactly 0 (as a pruned unit's).
_SHUT = -1.0e4


def pick_choices_by_loss(module: nn.Module, loss: Callable[[], float]) -> dict[str, str]:
    """Per learned choice (by path), the candidate with which ``loss()`` is lowest.

    Choices are picked one after another in model order; a picked choice stays fixed to its
    candidate while the later ones are measured, the others mix as learned. Candidates already
    frozen shut (weight exactly 0) are skipped; ties go to the larger logit. Every logit is
    restored before returning, and the module's training mode too.

    Args:
        module: The model, its choices in learn mode.
        loss: The model's loss now, on the same held-out batches every call, without a graph.
    """
    choices = _learned_choices(module)
    saved = {name: param.detach().clone() for name, _, param in choices}
    training = module.training
    module.eval()
    picked: dict[str, str] = {}
    try:
        with torch.no_grad():
            for name, gate, param in choices:
                picked[name] = _best_candidate(gate, param, saved[name], loss)
                _one_hot(param, gate.names.index(picked[name]))
    finally:
        with torch.no_grad():
            for name, _, param in choices:
                param.copy_(saved[name])
        module.train(training)
    return picked


def _learned_choices(module: nn.Module) -> list[tuple[str, ChoiceGate, nn.Parameter]]:
    return [(name, gate, gate.logits) for name, gate in learned_choice_gates(module).items()]


def _best_candidate(
    gate: ChoiceGate, param: nn.Parameter, logits: torch.Tensor, loss: Callable[[], float]
) -> str:
    probs = gate.keep_probs().detach()
    scored = []
    for index in range(gate.n_units):
        if float(probs[index]) == 0.0:  # frozen shut
            continue
        _one_hot(param, index)
        scored.append((loss(), -float(logits[index]), index))
    param.copy_(logits)
    return gate.names[min(scored)[2]]


def _one_hot(param: nn.Parameter, index: int) -> None:
    values = torch.full_like(param, _SHUT)
    values[index] = 0.0
    param.copy_(values)
