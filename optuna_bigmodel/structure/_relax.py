"""The relaxations that turn gate logits into keep-probabilities and gate values.

Sigmoid: the gate value is ``sigmoid(s)``, which is also its keep-probability.

Hard-concrete (Louizos, Welling and Kingma 2018, "Learning sparse neural networks through L0
regularization"): a binary concrete sample ``sigmoid((log u - log(1 - u) + log_alpha) / beta)``
stretched to ``(gamma, zeta)`` and clamped to ``[0, 1]``, so that a gate is exactly 0 or exactly 1
with non-zero probability. Its keep-probability is the expected L0 norm, in closed form::

    P(z != 0) = sigmoid(log_alpha - beta * log(-gamma / zeta))
"""

from __future__ import annotations

import math

import torch


GAMMA = -0.1  # left end of the stretched interval
ZETA = 1.1  # right end
BETA = 2.0 / 3.0  # default temperature
# Uniform noise is kept off 0 and 1, where its logit is infinite.
_EPS = 1e-6


def _l0_shift(beta: float) -> float:
    # log_alpha - beta * log(-gamma / zeta) is the logit of P(z != 0).
    return beta * math.log(-GAMMA / ZETA)


def hard_concrete_keep(log_alpha: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """``P(z != 0)``: the expected L0 norm of each gate, differentiable in ``log_alpha``."""
    return torch.sigmoid(log_alpha - _l0_shift(beta))


def hard_concrete_logits(keep: float, beta: float = BETA) -> float:
    """The ``log_alpha`` whose keep-probability :func:`hard_concrete_keep` is ``keep``."""
    return math.log(keep / (1.0 - keep)) + _l0_shift(beta)


def hard_concrete_sample(log_alpha: torch.Tensor, beta: float = BETA) -> torch.Tensor:
    """One stretched, clamped sample per gate; each is 0, 1 or in between."""
    u = torch.rand_like(log_alpha).clamp(_EPS, 1.0 - _EPS)
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / beta)
    return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def hard_concrete_mean(log_alpha: torch.Tensor) -> torch.Tensor:
    """The deterministic gate outside training: the stretched, clamped ``sigmoid(log_alpha)``."""
    return (torch.sigmoid(log_alpha) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)


def sigmoid_logits(keep: float) -> float:
    """The logit ``s`` with ``sigmoid(s) == keep``."""
    return math.log(keep / (1.0 - keep))
