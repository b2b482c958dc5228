"""The learning-rate schedule: one pure function of the step, with learnable parameters.

Read :func:`scheduled_lr` top to bottom: a base rate, a linear warm-up over a *continuous* number
of steps (so that the rate has a derivative with respect to the warm-up length) and a decay over
the run (cosine or exponential). Hypergradients need ``d log(lr) / d p`` for each parameter ``p``;
:func:`schedule_log_derivatives` takes it from the same function by autograd, so the two can never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy._values import Declared
from optuna_bigmodel.strategy._values import LearnedValue


DECAY_KINDS = ("cosine", "exponential")

Number = float | torch.Tensor


def scheduled_lr(
    step: int,
    base_lr: Number,
    warmup: Number,
    decay: Number,
    total_steps: int,
    kind: str = "cosine",
) -> Number:
    """The learning rate at ``step`` (counted from 0).

    ``lr(t) = base_lr * min(1, (t + 1) / (warmup + 1)) * shrink(t / total_steps)`` with
    ``shrink(x) = 1 - decay * (1 - cos(pi x)) / 2`` (``cosine``: ``decay`` is the fraction of the
    rate gone by the end, in [0, 1]) or ``shrink(x) = exp(-decay * x)`` (``exponential``: ``decay``
    is ``log(first rate / last rate)``). ``warmup = 0`` and ``decay = 0`` give a constant rate.
    Floats give a float; tensors that require grad give derivatives through autograd.

    Example:

        .. code-block:: python

            lr = scheduled_lr(9, base_lr=0.1, warmup=19.0, decay=0.0, total_steps=100)
            assert abs(lr - 0.05) < 1e-12  # half-way up the ramp
    """
    # The ramp reaches 1 at step == warmup; a non-integer warmup keeps the kink between steps.
    ramp = _at_most_one((step + 1) / (warmup + 1))
    progress = min(step / total_steps, 1.0)
    if kind == "cosine":
        shrink = 1 - decay * 0.5 * (1 - math.cos(math.pi * progress))
    else:
        shrink = _exp(-decay * progress)
    return base_lr * ramp * shrink


def _at_most_one(x: Number) -> Number:
    return torch.clamp(x, max=1.0) if isinstance(x, torch.Tensor) else min(x, 1.0)


def _exp(x: Number) -> Number:
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


@dataclass(frozen=True)
class LRSchedule:
    """A learning-rate schedule whose base rate, warm-up and decay can each be learned.

    Example:

        .. code-block:: python

            from optuna_bigmodel.strategy import LearnedValue, LRSchedule

            schedule = LRSchedule(
                lr=LearnedValue(0.01, low=1e-4, high=1.0),
                total_steps=1000,
                warmup=LearnedValue(50.5, low=0.0, high=200.0),
                decay=0.5,
            )

    Args:
        lr: The base learning rate: one value for every driven parameter group, or a tuple with one
            per driven group (recorded as ``lr/<group index>``). Learned on a log scale.
        total_steps: The length of the run that the decay spans; later steps keep the last rate.
        warmup: The warm-up length in steps (a float: it is learned as a continuous value).
        decay: How much the rate decays over the run; see :func:`scheduled_lr` for each ``kind``.
        kind: ``"cosine"`` or ``"exponential"``.
    """

    lr: Declared | tuple[Declared, ...]
    total_steps: int
    warmup: Declared = 0.0
    decay: Declared = 0.0
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if self.kind not in DECAY_KINDS:
            raise BadInputError(
                f"LRSchedule.kind: got {self.kind!r}; expected one of {DECAY_KINDS}"
            )
        if isinstance(self.total_steps, bool) or not isinstance(self.total_steps, int) or (
            self.total_steps < 1
        ):
            raise BadInputError(
                f"LRSchedule.total_steps: got {self.total_steps!r}; expected an integer >= 1"
            )
        if isinstance(self.lr, list):
            object.__setattr__(self, "lr", tuple(self.lr))
        if isinstance(self.lr, tuple) and not self.lr:
            raise BadInputError("LRSchedule.lr: got (); expected a value or one per group")

    @property
    def decay_limit(self) -> float:
        """The largest ``decay`` of this kind (cosine cannot remove more than the whole rate)."""
        return 1.0 if self.kind == "cosine" else math.inf

    @property
    def per_group(self) -> bool:
        """Whether each driven group has its own base rate."""
        return isinstance(self.lr, tuple)

    def declared_lrs(self, n_groups: int) -> list[Declared]:
        """The declared base rate of each of ``n_groups`` driven groups (checked to match)."""
        if not self.per_group:
            return [self.lr] * n_groups
        if len(self.lr) != n_groups:
            raise BadInputError(
                f"LRSchedule.lr: got {len(self.lr)} values; expected one per driven parameter "
                f"group ({n_groups}), or a single value"
            )
        return list(self.lr)


def schedule_log_derivatives(
    step: int, warmup: float, decay: float, total_steps: int, kind: str, wanted: tuple[str, ...]
) -> tuple[float, dict[str, float]]:
    """The schedule's shape ``lr(t) / base_lr`` and ``d log lr(t) / d p`` for ``p`` in ``wanted``.

    ``wanted`` names which of ``"warmup"`` and ``"decay"`` are learned. The derivatives are
    written out (cheaper than autograd at every step); the tests check them against autograd of
    :func:`scheduled_lr` and against finite differences::

        d log lr / d warmup = -1 / (warmup + 1)  while step < warmup, else 0
        d log lr / d decay  = -c / (1 - decay * c), c = (1 - cos(pi x)) / 2   (cosine)
                            = -x                                          (exponential)

    Example:

        .. code-block:: python

            shape, grads = schedule_log_derivatives(3, 9.5, 0.0, 100, "cosine", ("warmup",))
            assert abs(grads["warmup"] + 1 / 10.5) < 1e-12
    """
    shape = scheduled_lr(step, 1.0, warmup, decay, total_steps, kind)
    if shape <= 0.0:
        # A rate of 0 (cosine decay 1 past the end) takes no step: nothing depends on p.
        return 0.0, {name: 0.0 for name in wanted}
    progress = min(step / total_steps, 1.0)
    derivatives = {}
    if "warmup" in wanted:
        derivatives["warmup"] = -1.0 / (warmup + 1) if step + 1 < warmup + 1 else 0.0
    if "decay" in wanted and kind == "cosine":
        covered = 0.5 * (1 - math.cos(math.pi * progress))
        derivatives["decay"] = -covered / (1 - decay * covered)
    elif "decay" in wanted:
        derivatives["decay"] = -progress
    return shape, derivatives
