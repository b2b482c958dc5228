"""A multi-layer perceptron: ``depth`` hidden layers of width ``hidden`` with ReLU and dropout."""

from __future__ import annotations

from torch import nn


def make_mlp(
    n_inputs: int, n_classes: int, hidden: int, depth: int, dropout: float
) -> nn.Sequential:
    """``(B, n_inputs) -> (B, n_classes)`` logits; ``depth=0`` is a linear (softmax) classifier."""
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)
