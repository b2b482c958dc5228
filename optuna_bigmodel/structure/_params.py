"""Finding the gates of a model, and telling gate logits from weights."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from optuna_bigmodel.structure._choice import ChoiceGate
from optuna_bigmodel.structure._gate import check_choice
from optuna_bigmodel.structure._gate import Gate
from optuna_bigmodel.structure._unit_gate import UnitGate


def named_gates(module: nn.Module) -> Iterator[tuple[str, Gate]]:
    """Every gate inside ``module`` (itself included) with its dotted path, in module order.

    The path (``"blocks.0.attn.heads_gate"``) names the gate in knobs, records and structures.
    """
    for name, child in module.named_modules():
        if isinstance(child, Gate):
            yield name, child


def learned_choice_gates(module: nn.Module) -> dict[str, ChoiceGate]:
    """The choice gates inside ``module`` that are in learn mode, by path."""
    return {name: gate for name, gate in named_gates(module)
            if isinstance(gate, ChoiceGate) and gate.logits is not None}  # fmt: skip


def structure_parameters(module: nn.Module) -> Iterator[nn.Parameter]:
    """The logits of the gates in learn mode: what the gate optimiser steps, on search batches.

    Example:

        .. code::

            gate_opt = torch.optim.Adam(structure_parameters(model), lr=3e-2)
            weight_opt = torch.optim.AdamW(weight_parameters(model), lr=3e-3)
    """
    for _, gate in named_gates(module):
        if gate.logits is not None:
            yield gate.logits


def weight_parameters(module: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter that is not a gate logit, each once: what trains on training batches."""
    logits = {id(p) for p in structure_parameters(module)}
    for param in module.parameters():
        if id(param) not in logits:
            yield param


def count_weights(module: nn.Module) -> int:
    """How many weights ``module`` has (gate logits left out, tied tensors counted once)."""
    return sum(param.numel() for param in weight_parameters(module))


def set_gate_mode(
    module: nn.Module,
    mode: str,
    *,
    unit_relaxation: str | None = None,
    choice_relaxation: str | None = None,
    init_keep: float = 0.9,
) -> None:
    """Put every gate of ``module`` in ``"learn"`` or ``"off"`` mode.

    Fixed masks come from :func:`apply_structure`. Create the optimisers after this call: it
    makes new logits.

    Args:
        module: The model.
        mode: ``"learn"`` or ``"off"``.
        unit_relaxation: ``"sigmoid"`` or ``"hard_concrete"`` for every unit gate; None keeps
            each gate's own.
        choice_relaxation: ``"softmax"`` or ``"gumbel"`` for every choice; None keeps each one's.
        init_keep: The initial keep-probability of every unit in learn mode.
    """
    check_choice("set_gate_mode", "mode", mode, ("learn", "off"))
    for _, gate in named_gates(module):
        if mode == "off":
            gate.off()
        elif isinstance(gate, UnitGate):
            gate.learn(init_keep, unit_relaxation)
        elif isinstance(gate, ChoiceGate):
            gate.learn(choice_relaxation)
