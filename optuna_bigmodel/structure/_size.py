"""The expected number of weights of a gated model, differentiable in the gates' logits.

Each weight counts with the probability that it survives: the product of the keep-probabilities
of the units that own it. A unit owns slices (``unit_params``: a head's rows of ``qkv``) and whole
modules (``owns``: a block, with the gates inside it). With every gate off this is the model's
weight count; with 0/1 masks it is the exact count of the structure they describe.

A module whose size is not a sum over units (a chain of pruned layers, where one layer's kept
inputs are the previous layer's kept outputs) gives its own count by defining
``expected_weights(keep_probs) -> Tensor``, where ``keep_probs(gate)`` is the gate's
keep-probabilities; the count of its subtree is then whatever it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping

import torch
from torch import nn

from optuna_bigmodel.structure._gate import Gate
from optuna_bigmodel.structure._params import count_weights
from optuna_bigmodel.structure._params import named_gates


KeepProbs = Callable[[Gate], torch.Tensor]


def expected_param_count(
    module: nn.Module, keep_probs: Mapping[Gate, torch.Tensor] | None = None
) -> torch.Tensor:
    """The expected weight count of ``module`` (a float64 scalar), gate logits left out.

    Example:

        .. code::

            fraction = expected_param_count(model) / count_weights(model)

    Args:
        module: The model.
        keep_probs: Keep-probabilities to use instead of some gates' own, e.g. 0/1 masks to count
            a candidate structure without changing the model.
    """
    lookup = _lookup(keep_probs or {})
    owners = _owner_factors(module, lookup)
    total = _expected(module, lookup, owners, set())
    return torch.as_tensor(total, dtype=torch.float64)


def expected_fraction(module: nn.Module, total: int | None = None) -> torch.Tensor:
    """:func:`expected_param_count` over the full weight count ``total`` (counted when None)."""
    total = count_weights(module) if total is None else total
    return expected_param_count(module) / total


def _lookup(override: Mapping[Gate, torch.Tensor]) -> KeepProbs:
    cache: dict[Gate, torch.Tensor] = {}

    def keep_probs(gate: Gate) -> torch.Tensor:
        if gate not in cache:
            probs = override[gate] if gate in override else gate.keep_probs()
            cache[gate] = probs.to(torch.float64)
        return cache[gate]

    return keep_probs


def _owner_factors(module: nn.Module, lookup: KeepProbs) -> dict[nn.Module, torch.Tensor]:
    # For each module owned whole by a unit: the product of the keep-probabilities of its owners.
    factors: dict[nn.Module, torch.Tensor] = {}
    for _, gate in named_gates(module):
        probs = lookup(gate)
        for unit, owned in enumerate(gate.owns):
            for child in owned:
                factors[child] = factors.get(child, 1.0) * probs[unit]
    return factors


def _expected(
    module: nn.Module, lookup: KeepProbs, owners: dict[nn.Module, torch.Tensor], seen: set[int]
) -> torch.Tensor | int:
    own_count = getattr(module, "expected_weights", None)
    if callable(own_count):
        seen.update(id(p) for p in module.parameters())
        return own_count(lookup)
    total: torch.Tensor | int = 0
    for name, param in module.named_parameters(recurse=False):
        if id(param) in seen or (isinstance(module, Gate) and name == "logits"):
            continue
        seen.add(id(param))
        total = total + param.numel()
    if isinstance(module, Gate):
        unit_params = torch.tensor(module.unit_params, dtype=torch.float64)
        probs = lookup(module)
        total = total + ((probs - 1.0) * unit_params.to(probs.device)).sum()
    for child in module.children():
        total = total + owners.get(child, 1.0) * _expected(child, lookup, owners, seen)
    return total


def unit_weight_counts(gate: Gate) -> list[int]:
    """The weights each unit of ``gate`` owns: its slices plus the modules it owns whole."""
    return [
        params + sum(count_weights(module) for module in owned)
        for params, owned in zip(gate.unit_params, gate.owns)
    ]
