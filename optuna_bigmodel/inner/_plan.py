"""What one trial's training run tunes inside itself, read from the study spec and its knobs.

The knobs ``descent``, ``warmup``, ``decay``, ``meta_lr``, ``mu`` and ``<name>_init`` (where a
learned knob starts, e.g. ``lr_init``) belong to the inner loop, not to the task: they are taken
out of the trial's parameters before the task is built (:func:`task_params`). The last three let an
outer search pick how the inner loop learns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import TYPE_CHECKING

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.spec import InnerSpec
from optuna_bigmodel.spec import StructureSpec
from optuna_bigmodel.strategy import LearnedValue
from optuna_bigmodel.strategy import LRSchedule
from optuna_bigmodel.strategy._values import Declared

if TYPE_CHECKING:
    from optuna_bigmodel.spec import StudySpec


DESCENTS = ("sgd", "gd", "dynamic")
LEARNABLE = ("lr", "weight_decay", "warmup", "decay")  # strategy knobs hypergradients can learn
# Knobs that the inner loop reads and the task never sees.
INNER_KNOBS = frozenset(
    {"descent", "warmup", "decay", "meta_lr", "mu", *(f"{name}_init" for name in LEARNABLE)}
)


@dataclass(frozen=True)
class InnerPlan:
    """How one trial trains and what it learns inside its run.

    Args:
        descent: ``"sgd"``, ``"gd"`` (full-batch) or ``"dynamic"`` (a rate that changes per step).
        lr: The base learning rate when the inner loop drives it: a :class:`LearnedValue` when
            learned, a float when sampled or fixed, ``None`` to take the optimiser's own.
        warmup: Warm-up length in steps (float, or learned).
        decay: How much the rate decays over the run (float, or learned).
        weight_decay: A :class:`LearnedValue` when learned, else ``None`` (the optimiser's own).
        inner: The spec's ``inner:`` section (search split, mu, meta-rate, decay shape).
        structure: The spec's ``structure:`` section.
    """

    descent: str = "sgd"
    lr: Declared | None = None
    warmup: Declared = 0.0
    decay: Declared = 0.0
    weight_decay: LearnedValue | None = None
    inner: InnerSpec = InnerSpec()
    structure: StructureSpec = StructureSpec()

    @property
    def learned_strategy(self) -> list[str]:
        """The names of the strategy values learned by hypergradients."""
        values = {"lr": self.lr, "warmup": self.warmup, "decay": self.decay}
        values["weight_decay"] = self.weight_decay
        return [name for name, value in values.items() if isinstance(value, LearnedValue)]

    @property
    def learns_structure(self) -> bool:
        return self.structure.mode == "learn"

    @property
    def drives_rate(self) -> bool:
        """Whether the inner loop sets the learning rate at every step: ``dynamic`` descent, a
        learned value, or a schedule (a warm-up or decay knob makes any descent's rate dynamic)."""
        scheduled = self.warmup != 0.0 or self.decay != 0.0
        return self.descent == "dynamic" or bool(self.learned_strategy) or scheduled

    @property
    def needs_search_split(self) -> bool:
        """Whether anything steps on search batches."""
        return bool(self.learned_strategy) or self.learns_structure

    @property
    def is_plain(self) -> bool:
        """Whether the run is a plain Lightning run: nothing for the inner loop to do."""
        return self.descent == "sgd" and not self.drives_rate and not self.learns_structure

    def schedule(self, total_steps: int, optimizer_lr: float) -> LRSchedule:
        """The learning-rate schedule of the run; ``optimizer_lr`` when no rate was declared."""
        lr = optimizer_lr if self.lr is None else self.lr
        return LRSchedule(
            lr=lr,
            total_steps=total_steps,
            warmup=self.warmup,
            decay=self.decay,
            kind=self.inner.decay_kind,
        )


def inner_plan(spec: StudySpec, params: Mapping[str, Any]) -> InnerPlan:
    """The plan of the trial whose knob values are ``params`` (learned knobs give their start)."""
    learned = {knob.name: knob for knob in spec.knobs if knob.is_learned}

    def declared(name: str, default: Any) -> Any:
        if name in learned:
            knob = learned[name]
            return LearnedValue(_start(knob, params), knob.low, knob.high)
        return params.get(name, default)

    descent = params.get("descent", spec.inner.descent)
    if descent not in DESCENTS:
        raise BadInputError(
            f"knob 'descent': got {descent!r}; expected one of {', '.join(map(repr, DESCENTS))}"
        )
    weight_decay = declared("weight_decay", None)
    return InnerPlan(
        descent=descent,
        lr=declared("lr", None) if "lr" in learned else None,
        warmup=_number_or_learned(declared("warmup", 0.0)),
        decay=_number_or_learned(declared("decay", 0.0)),
        weight_decay=weight_decay if isinstance(weight_decay, LearnedValue) else None,
        inner=_inner_settings(spec.inner, params),
        structure=spec.structure,
    )


def _start(knob: Any, params: Mapping[str, Any]) -> float:
    """Where a learned knob starts: the trial's ``<name>_init`` value, else its declared init."""
    start = params.get(f"{knob.name}_init", knob.init)
    if not knob.low <= start <= knob.high:
        raise BadInputError(
            f"knob '{knob.name}_init': got {start!r}; expected a number in the learned range "
            f"[{knob.low:g}, {knob.high:g}] of knob {knob.name!r}"
        )
    return float(start)


def _inner_settings(inner: InnerSpec, params: Mapping[str, Any]) -> InnerSpec:
    """The ``inner:`` section with this trial's ``meta_lr`` / ``mu`` knobs, checked."""
    meta_lr, mu = params.get("meta_lr", inner.meta_lr), params.get("mu", inner.mu)
    if not meta_lr > 0:
        raise BadInputError(f"knob 'meta_lr': got {meta_lr!r}; expected a number > 0")
    if not 0 <= mu <= 1:
        raise BadInputError(f"knob 'mu': got {mu!r}; expected a number in [0, 1]")
    return replace(inner, meta_lr=float(meta_lr), mu=float(mu))


def _number_or_learned(value: Any) -> Declared:
    return value if isinstance(value, LearnedValue) else float(value)


def task_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's parameters the task builds with: all but the inner loop's own knobs."""
    return {name: value for name, value in params.items() if name not in INNER_KNOBS}
