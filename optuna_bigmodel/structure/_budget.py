"""A size budget enforced by a Lagrange multiplier rather than a hand-tuned penalty weight."""

from __future__ import annotations

from typing import Any

import torch

from optuna_bigmodel.structure._gate import check_int
from optuna_bigmodel.structure._gate import check_number
from optuna_bigmodel.structure._gate import check_positive


class SizeBudget:
    """Keeps the expected fraction of weights at or under a target, with a learned multiplier.

    The search loss gets ``penalty = lambda * (expected_fraction - target_at(step))``. The gates
    descend on it; ``lambda >= 0`` ascends on it (:meth:`step`: one SGD step with
    ``maximize=True``, then projected to ``>= 0``), so lambda grows while the model is over budget
    and shrinks back to 0 once it is under. The target falls linearly from 1.0 (the whole model)
    to ``target`` over the first ``warmup_steps`` steps, so gates are not shut before the weights
    have learned what they are worth.

    Example:

        .. code::

            budget = SizeBudget(target=0.5, warmup_steps=200, lr=0.05)
            fraction = expected_fraction(model, total)
            loss = search_loss + budget.penalty(fraction, step)
            loss.backward()
            gate_optimizer.step()
            budget.step()  # uses lambda's gradient from the same backward pass

    Args:
        target: The fraction of the model's weights to keep, in (0, 1].
        warmup_steps: Steps over which the target falls from 1.0 to ``target``; 0 for none.
        lr: The multiplier's ascent rate.
        init: The multiplier's initial value, ``>= 0``.
    """

    def __init__(
        self, target: float, warmup_steps: int = 0, lr: float = 0.01, init: float = 0.0
    ) -> None:
        name = "SizeBudget"
        self.target = check_number(name, "target", target, "a number in (0, 1]", _is_fraction)
        self.warmup_steps = check_int(name, "warmup_steps", warmup_steps, 0)
        init = check_number(name, "init", init, "a number >= 0", lambda v: v >= 0)
        self.lam = torch.tensor(init, dtype=torch.float64, requires_grad=True)
        lr = check_positive(name, "lr", lr)
        self.optimizer = torch.optim.SGD([self.lam], lr=lr, maximize=True)

    def target_at(self, step: int) -> float:
        """The target fraction at ``step``: linear from 1.0 at step 0 to ``target``."""
        if step >= self.warmup_steps:
            return self.target
        return 1.0 + (self.target - 1.0) * step / self.warmup_steps

    def penalty(self, expected_fraction: torch.Tensor, step: int) -> torch.Tensor:
        """``lambda * (expected_fraction - target_at(step))``; differentiable in both."""
        lam = self.lam.to(expected_fraction.device)
        return lam * (expected_fraction.to(torch.float64) - self.target_at(step))

    def step(self) -> None:
        """One ascent step of lambda on its gradient, then ``lambda = max(lambda, 0)``."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.lam.clamp_(min=0.0)

    @property
    def multiplier(self) -> float:
        """The current lambda."""
        return float(self.lam.detach())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: lambda and its optimiser's state."""
        return {"lam": self.multiplier, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`."""
        with torch.no_grad():
            self.lam.fill_(state["lam"])
        self.optimizer.load_state_dict(state["optimizer"])


def _is_fraction(value: float) -> bool:
    return 0 < value <= 1
