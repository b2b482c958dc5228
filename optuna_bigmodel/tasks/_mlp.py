"""A multi-layer perceptron: hidden layers with ReLU and dropout, gated (all gates start off).

Each hidden layer's units are gated in groups; a hidden layer whose width equals its input's may
be skipped (a choice between ``"layer"`` and ``"skip"``, the parameter-free candidate).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Sequence

import torch
from torch import nn

from optuna_bigmodel.structure import ChoiceGate
from optuna_bigmodel.structure import Gate
from optuna_bigmodel.structure import group_sizes
from optuna_bigmodel.structure import sliced_linear
from optuna_bigmodel.structure import UnitGate


def make_mlp(
    n_inputs: int, n_classes: int, hidden: int, depth: int, dropout: float
) -> MLP:
    """``(B, n_inputs) -> (B, n_classes)`` logits; ``depth=0`` is a linear (softmax) classifier."""
    return MLP(n_inputs, n_classes, [hidden] * depth, dropout)


class MLP(nn.Sequential):
    """``(B, n_inputs) -> (B, n_classes)`` logits through hidden layers of the given widths.

    Hidden layer ``i`` is ``fc{i}``, ``act{i}`` (ReLU), ``units{i}`` (a gate over ``unit_groups``
    groups of its units) and ``drop{i}``; before it, ``skip{i}`` when it may be skipped. The
    output layer is ``out``. With its gates off it computes what ``nn.Sequential`` of the same
    layers computes.

    Args:
        n_inputs: Input features.
        n_classes: Output logits.
        widths: The width of each hidden layer.
        dropout: Dropout after each hidden layer.
        unit_groups: Groups of units per hidden layer's gate (fewer if the layer is narrower).
    """

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        widths: Sequence[int],
        dropout: float,
        unit_groups: int = 4,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = n_inputs
        for i, hidden in enumerate(widths):
            fc = nn.Linear(width, hidden)
            if i > 0 and hidden == width:
                layers[f"skip{i}"] = ChoiceGate(["layer", "skip"], owns={"layer": [fc]})
            sizes = group_sizes(hidden, unit_groups)
            layers[f"fc{i}"] = fc
            layers[f"act{i}"] = nn.ReLU()
            layers[f"units{i}"] = UnitGate(len(sizes), unit_size=sizes)
            layers[f"drop{i}"] = nn.Dropout(dropout)
            width = hidden
        layers["out"] = nn.Linear(width, n_classes)
        super().__init__(layers)
        self.n_inputs, self.n_classes, self.widths = n_inputs, n_classes, tuple(widths)
        self.dropout, self.unit_groups = dropout, unit_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(len(self.widths)):
            skip = self._modules.get(f"skip{i}")
            if skip is None:
                x = self._layer(i, x)
            else:
                x = skip.combine({"layer": lambda: self._layer(i, x), "skip": lambda: x})
        return self.out(x)  # (B, n_classes)

    def _layer(self, i: int, x: torch.Tensor) -> torch.Tensor:
        h = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(x))  # (B, widths[i])
        return getattr(self, f"drop{i}")(getattr(self, f"units{i}")(h))

    def expected_weights(self, keep_probs: Callable[[Gate], torch.Tensor]) -> torch.Tensor:
        """The expected weight count, for ``optuna_bigmodel.structure.expected_param_count``.

        Not a sum over units: a layer's weights are its kept outputs times its kept inputs, and
        its inputs are the previous layer's outputs, or further back where layers are skipped.
        Gates are independent, so each expectation is the product of the expectations.
        """
        width = torch.tensor(float(self.n_inputs), dtype=torch.float64)  # expected input width
        total = torch.zeros((), dtype=torch.float64)
        for i in range(len(self.widths)):
            units = getattr(self, f"units{i}")
            probs = keep_probs(units)
            kept = (probs * torch.tensor(units.unit_size, dtype=probs.dtype).to(probs.device)).sum()
            layer = kept * width + kept  # weight and bias
            skip = self._modules.get(f"skip{i}")
            present = 1.0 if skip is None else keep_probs(skip)[0]  # P("layer")
            total = total + present * layer
            width = present * kept + (1.0 - present) * width
        return total + self.n_classes * width + self.n_classes

    def exported(self) -> MLP:
        """The plain MLP that the gates' hard masks describe, with its weights sliced."""
        present = [i for i in range(len(self.widths)) if self._is_present(i)]
        kept = [getattr(self, f"units{i}").kept_entries() for i in present]
        weight = self.out.weight
        with torch.random.fork_rng(devices=[]):  # the caller's random stream stays as it was
            small = MLP(self.n_inputs, self.n_classes, [len(k) for k in kept], self.dropout,
                        self.unit_groups).to(device=weight.device, dtype=weight.dtype)  # fmt: skip
        columns = None  # every input feature
        for new, (old, rows) in enumerate(zip(present, kept)):
            fc = sliced_linear(getattr(self, f"fc{old}"), rows=rows, columns=columns)
            getattr(small, f"fc{new}").load_state_dict(fc.state_dict())
            columns = rows
        small.out.load_state_dict(sliced_linear(self.out, columns=columns).state_dict())
        return small

    def _is_present(self, i: int) -> bool:
        skip = self._modules.get(f"skip{i}")
        return skip is None or skip.chosen() == "layer"
