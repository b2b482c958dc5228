"""The meta-optimiser: moves learned strategy values (a handful of floats) down their
hypergradients, by plain gradient descent or by a small Adam."""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any

from optuna_bigmodel._errors import BadInputError


META_OPTIMIZERS = ("adam", "sgd")


class MetaOptimizer:
    """``p <- p - lr * step(dJ/dp)`` for named scalars; Adam's step is scale-free.

    With ``"adam"``, ``lr`` is roughly how far a value moves per search batch while its
    hypergradient keeps its sign (in log units for a learning rate: 0.02 is 2% per batch); with
    ``"sgd"`` the step is ``lr`` times the hypergradient itself.

    Example:

        .. code-block:: python

            meta = MetaOptimizer("adam", lr=0.1)
            moves = meta.step({"lr": 2.5})
            assert abs(moves["lr"] + 0.1) < 1e-6  # Adam's first step is -lr * sign

    Args:
        kind: ``"adam"`` or ``"sgd"``.
        lr: The meta learning rate (>= 0).
        betas: Adam's decay rates of its first and second moments.
    """

    def __init__(self, kind: str, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        if kind not in META_OPTIMIZERS:
            raise BadInputError(f"meta_optimizer: got {kind!r}; expected one of {META_OPTIMIZERS}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
            raise BadInputError(f"meta_lr: got {lr!r}; expected a finite number >= 0")
        self.kind = kind
        self.lr = float(lr)
        self.betas = betas
        self._moments: dict[str, list[float]] = {}  # name -> [first, second, count]

    def step(self, hypergradients: Mapping[str, float]) -> dict[str, float]:
        """The change to apply to each named value."""
        if self.kind == "sgd":
            return {name: -self.lr * g for name, g in hypergradients.items()}
        return {
            name: -self.lr * self._adam_direction(name, g) for name, g in hypergradients.items()
        }

    def _adam_direction(self, name: str, grad: float) -> float:
        b1, b2 = self.betas
        first, second, count = self._moments.get(name, [0.0, 0.0, 0])
        first = b1 * first + (1 - b1) * grad
        second = b2 * second + (1 - b2) * grad**2
        count += 1
        self._moments[name] = [first, second, count]
        unbiased_first, unbiased_second = first / (1 - b1**count), second / (1 - b2**count)
        # eps relative to nothing: hypergradients can be tiny; 1e-30 only guards 0 / 0.
        return unbiased_first / (math.sqrt(unbiased_second) + 1e-30)

    def state_dict(self) -> dict[str, Any]:
        """The meta-rate and Adam's moments, as plain data."""
        return {"lr": self.lr, "moments": {k: list(v) for k, v in self._moments.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resumes from :meth:`state_dict`."""
        self.lr = float(state["lr"])
        self._moments = {k: list(v) for k, v in state["moments"].items()}
