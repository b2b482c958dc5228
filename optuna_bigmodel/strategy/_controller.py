"""The hypergradient controller: learns strategy values (learning rate, its schedule, weight decay)
inside one training run, on top of any torch optimiser.

Per learned value ``p`` it keeps a tangent ``z = d theta / d p`` (one tensor per weight) and, after
each optimiser step ``theta_{t+1} = theta_t + delta_t``, updates it as::

    z <- mu (1 - eta_t lam_t) z + (d log eta_t / dp) delta_t - [p is log lam] eta_t lam_t theta_t

``delta_t`` is the step the optimiser actually took (plus the decoupled weight decay
``-eta_t lam_t theta_t`` the controller applies), so the update direction ``d_t = -delta_t / eta_t``
comes from the optimiser itself: SGD, momentum, Adam, AdamW alike. On a search batch,
``dJ_val / dp ~ grad J_val(theta) . z`` and the meta-optimiser steps ``p``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import math
from typing import Any

import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.strategy._arguments import checked_groups
from optuna_bigmodel.strategy._arguments import checked_optimizer
from optuna_bigmodel.strategy._arguments import checked_positive_int
from optuna_bigmodel.strategy._arguments import checked_unit
from optuna_bigmodel.strategy._arguments import split
from optuna_bigmodel.strategy._last_good import capture_last_good
from optuna_bigmodel.strategy._last_good import restore_last_good
from optuna_bigmodel.strategy._meta import MetaOptimizer
from optuna_bigmodel.strategy._plan import StepPlan
from optuna_bigmodel.strategy._plan import make_table
from optuna_bigmodel.strategy._plan import plan_step
from optuna_bigmodel.strategy._recorder import TrajectoryRecorder
from optuna_bigmodel.strategy._schedule import LRSchedule
from optuna_bigmodel.strategy._values import Declared


Tangents = dict[str, dict[int, list[torch.Tensor]]]  # value name -> driven group -> per weight


class HypergradientController:
    """Learns the learning rate, its schedule and the weight decay of a run by hypergradients.

    The controller owns the learning rate of every driven parameter group (it sets ``lr`` before
    each step from :func:`~optuna_bigmodel.strategy.scheduled_lr`) and, when ``weight_decay`` is
    given, their weight decay: it sets the optimiser's own ``weight_decay`` to 0 and applies a
    decoupled decay ``theta -= lr * wd * theta_t`` after each step (AdamW's rule; for plain SGD the
    same as an L2 penalty).

    Example:

        .. code-block:: python

            import torch
            from optuna_bigmodel.strategy import HypergradientController, LearnedValue, LRSchedule

            model = torch.nn.Linear(4, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            schedule = LRSchedule(lr=LearnedValue(0.01, 1e-4, 1.0), total_steps=100)
            controller = HypergradientController(optimizer, schedule, mu=0.99, meta_lr=0.02)
            for step in range(100):
                controller.before_train_step(step)
                optimizer.zero_grad()
                loss = model(torch.randn(8, 4)).pow(2).mean()
                loss.backward()
                optimizer.step()
                controller.after_train_step(loss)
                controller.on_search_batch(model(torch.randn(8, 4)).pow(2).mean())
            print(controller.record()["lr"]["final"])

    In a ``LightningModule`` (automatic optimisation), one call per hook::

        on_train_start:           self.controller = HypergradientController(self.optimizers(), ...)
                                  check_no_external_scheduler(self.optimizers(),
                                      self.trainer.lr_scheduler_configs, self.controller.groups)
        on_train_batch_start:     self.controller.before_train_step(self.global_step)
        on_before_optimizer_step: self.controller.before_optimizer_step()
        on_train_batch_end:       self.controller.after_train_step(outputs["loss"])
                                  self.controller.on_search_batch(loss of the next search batch)
        on_save_checkpoint:       checkpoint["strategy"] = self.controller.state_dict()

    Args:
        optimizer: The torch optimiser (a Lightning ``LightningOptimizer`` is unwrapped).
        schedule: The learning-rate schedule and which of its values are learned.
        weight_decay: ``None`` (the optimiser keeps its own), a fixed float or a
            :class:`LearnedValue` for every driven group, or a sequence with one per driven group
            (recorded as ``weight_decay/<group>``). Learned on a log scale.
        groups: Indices of the optimiser's parameter groups to drive; default all.
        mu: How much of the tangent survives a step, in [0, 1]: 0 is the greedy one-step
            hypergradient (Baydin et al. 2018), about 0.99 looks ~100 steps back, which removes
            most of the greedy rule's bias toward small rates.
        meta_lr: The meta learning rate; see :class:`MetaOptimizer`. The meta-optimiser sees
            each value in units of its range (a learned warm-up in [0, 200] as ``warmup / 200``;
            a log-scale rate as its log), so ``0.02`` moves a rate by ~2% and a warm-up by ~2% of
            its range per search batch.
        meta_optimizer: ``"adam"`` (scale-free; the default) or ``"sgd"``.
        snapshot_every: Keep the state as "last good" every this many successful search batches.
        max_record_points: The most trajectory points recorded per learned value.
        reduce: Under DDP, a mean over ranks (e.g. ``lambda t: trainer.strategy.reduce(t)``),
            applied to each step's loss and each search batch's loss and hypergradients so that
            every rank takes the same decisions and keeps the same values.

    Note:
        First-order: the optimiser's internal state (momentum buffers, Adam's moments) and the
        gradient are treated as constant with respect to ``p``; only the step's scale ``eta_t``,
        the decay and the tangent's own carry-over depend on it.
        :class:`ExactHypergradientController` adds the Hessian term, for tests. The optimiser's
        step must be proportional to its group's ``lr`` (true of SGD, Adam, AdamW, RMSprop, ...).
        The controller keeps a copy of the weights and one tangent per learned value and weight
        (per driven group for per-group values), plus a last-good copy of weights and optimiser
        state. Under gradient accumulation, call the per-step hooks once per optimiser step.
        Tangents have the weights' dtype (bfloat16 weights give coarse tangents). Module buffers
        (BatchNorm statistics) are not part of the last good state.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: LRSchedule,
        *,
        weight_decay: Declared | Sequence[Declared] | None = None,
        groups: Sequence[int] | None = None,
        mu: float = 0.99,
        meta_lr: float = 0.02,
        meta_optimizer: str = "adam",
        snapshot_every: int = 1,
        max_record_points: int = 200,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.optimizer = checked_optimizer(optimizer)
        self.schedule = schedule
        self.groups = checked_groups(groups, len(self.optimizer.param_groups))
        self.mu = checked_unit("mu", mu)
        self.snapshot_every = checked_positive_int("snapshot_every", snapshot_every)
        self.table = make_table(schedule, weight_decay, self.groups)
        self.values = self.table.values
        self.meta = MetaOptimizer(meta_optimizer, meta_lr)
        self.recorder = TrajectoryRecorder(max_record_points)
        self.events: list[dict[str, Any]] = []
        self.reduce = reduce
        self._params = [list(self.optimizer.param_groups[g]["params"]) for g in self.groups]
        self._tangents: Tangents = {name: {} for name in self.learned_names}
        self._start = [[torch.empty_like(p) for p in ps] for ps in self._params]  # theta_t
        self._plan: StepPlan | None = None
        self._step = 0
        self._expected_lr: list[float | None] = [None] * len(self.groups)
        self._searches = 0
        self._last_good = capture_last_good(self.optimizer, self._strategy_state())

    @property
    def learned_names(self) -> list[str]:
        """The names of the learned values, e.g. ``["lr", "warmup"]``."""
        return [name for name, value in self.values.items() if value.learned]

    @property
    def meta_lr(self) -> float:
        """The current meta learning rate (halved at every restore)."""
        return self.meta.lr

    def current_values(self) -> dict[str, float]:
        """Every strategy value on its natural scale, learned or fixed."""
        return {name: value.value for name, value in self.values.items()}

    def tangent(self, name: str) -> list[torch.Tensor]:
        """``d theta / d name``: one tensor per weight of the driven groups, in order.

        The tensors are the live tangents (zeros where a tangent is structurally zero); clone
        them to keep a copy.
        """
        if name not in self._tangents:
            raise BadInputError(f"tangent: got {name!r}; expected one of {self.learned_names}")
        tangent = self._tangents[name]
        return [
            tangent[k][i] if k in tangent else torch.zeros_like(p)
            for k, params in enumerate(self._params)
            for i, p in enumerate(params)
        ]

    def flat_params(self) -> list[torch.Tensor]:
        """The weights of the driven groups, in the order :meth:`on_search_batch`'s ``grads``
        takes their gradients."""
        return [p for ps in self._params for p in ps]

    def before_train_step(self, step: int) -> None:
        """Sets each driven group's ``lr`` (and weight decay) for ``step``; call before forward."""
        self._step = int(step)
        self._plan = plan_step(self.schedule, self.table, self._step)
        if self._last_good is None:  # after load_state_dict, once the weights are in place
            self._last_good = capture_last_good(self.optimizer, self._strategy_state())
        for k, g in enumerate(self.groups):
            self._set_group(k, self.optimizer.param_groups[g])
        with torch.no_grad():
            for buffers, params in zip(self._start, self._params):
                torch._foreach_copy_(buffers, params)

    def before_optimizer_step(self) -> None:
        """Between ``backward`` and ``optimizer.step()``; the first-order variant needs nothing."""

    def after_train_step(self, loss: torch.Tensor | float | None = None) -> None:
        """Applies the weight decay and updates the tangents; call after ``optimizer.step()``.

        Args:
            loss: The training loss of the step; a non-finite one restores the last good state.
        """
        plan = self._require_plan("after_train_step")
        if loss is not None:
            (loss_value,) = self._to_floats([_detached(loss)])
            if not math.isfinite(loss_value):
                self._restore(f"non-finite train loss {loss_value}")
                return
        deltas = self._apply_decay_and_measure(plan)
        for name in self.learned_names:
            for k in range(len(self.groups)):
                self._advance_tangent(name, k, plan, deltas[k])
        self._plan = None
        self.recorder.record(self._step, {n: self.values[n].value for n in self.learned_names})

    def hypergradient(
        self,
        search_loss: torch.Tensor | None = None,
        grads: Sequence[torch.Tensor | None] | None = None,
    ) -> dict[str, float]:
        """``dJ_val / dp ~ grad J_val(theta) . z`` for each learned value (``p`` on its own scale).

        Args:
            search_loss: The loss of a search batch at the current weights (with its graph).
            grads: Instead of ``search_loss``, its gradient with respect to each weight of the
                driven groups, in order (``None`` for an unused weight).
        """
        if grads is None:
            if search_loss is None:
                raise BadInputError("hypergradient: got neither search_loss nor grads")
            grads = self._search_grads(search_loss)
        return dict(zip(self.learned_names, self._to_floats(self._dots(grads))))

    def on_search_batch(
        self, search_loss: torch.Tensor, grads: Sequence[torch.Tensor | None] | None = None
    ) -> dict[str, float]:
        """Computes the hypergradients on a search batch and steps the learned values.

        The weights and their ``.grad`` are not touched. A non-finite loss or hypergradient
        restores the last good state instead and halves the meta learning rate.

        Returns:
            The hypergradient of each learned value.
        """
        dots = self._dots(self._search_grads(search_loss) if grads is None else grads)
        loss, *values = self._to_floats([_detached(search_loss), *dots])
        hypergradients = dict(zip(self.learned_names, values))
        if not all(math.isfinite(v) for v in (loss, *values)):
            self._restore(f"non-finite search loss {loss} or hypergradient {hypergradients}")
            return hypergradients
        scales = {name: self.values[name].meta_scale for name in hypergradients}
        normalised = {name: g * scales[name] for name, g in hypergradients.items()}
        for name, move in self.meta.step(normalised).items():
            self.values[name].set_clipped(self.values[name].raw + move * scales[name])
        self._searches += 1
        if self._searches % self.snapshot_every == 0:
            self._last_good = capture_last_good(self.optimizer, self._strategy_state())
        return hypergradients

    def record(self) -> dict[str, dict[str, Any]]:
        """``{knob: {"final": value, "trajectory": [[step, value], ...]}}``, learned values only."""
        return self.recorder.to_dict()

    def state_dict(self) -> dict[str, Any]:
        """What resuming the controller needs (the weights and optimiser state are not in it)."""
        return {
            **self._strategy_state(),
            "meta_lr": self.meta.lr,
            "recorder": self.recorder.state_dict(),
            "events": list(self.events),
            "searches": self._searches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resumes from :meth:`state_dict`; the last good state is taken at the next step."""
        self._load_strategy_state(state)
        self.meta.lr = float(state["meta_lr"])
        self.recorder.load_state_dict(state["recorder"])
        self.events = list(state["events"])
        self._searches = int(state["searches"])
        self._expected_lr = [None] * len(self.groups)
        self._last_good = None  # the weights may not be loaded yet

    # -- one training step ------------------------------------------------------------------

    def _set_group(self, k: int, group: dict[str, Any]) -> None:
        expected = self._expected_lr[k]
        if expected is not None and group["lr"] != expected:
            raise BadInputError(
                f"parameter group {self.groups[k]}: lr changed from {expected} to {group['lr']} "
                "outside the controller (an LR scheduler?); expected nothing else to set a "
                "learned learning rate"
            )
        group["lr"] = self._expected_lr[k] = self._plan.eta[k]
        if self._plan.lam is not None:
            group["weight_decay"] = 0.0  # the controller applies its own, decoupled

    def _apply_decay_and_measure(self, plan: StepPlan) -> list[list[torch.Tensor]]:
        deltas = []
        with torch.no_grad():
            for k, (params, start) in enumerate(zip(self._params, self._start)):
                if plan.lam is not None and plan.lam[k] != 0.0:
                    torch._foreach_add_(params, start, alpha=-plan.eta[k] * plan.lam[k])
                deltas.append(torch._foreach_sub(params, start))
        return deltas

    def _advance_tangent(
        self, name: str, k: int, plan: StepPlan, delta: list[torch.Tensor]
    ) -> None:
        a, b = plan.lr_log_derivative(name, k), plan.decay_derivative(name, k)
        curvature = self._curvature_term(name, k)
        z = self._tangents[name].get(k)
        if z is None and a == 0.0 and b == 0.0 and curvature is None:
            return  # structurally zero: a per-group value never reaches another group
        if z is None:
            z = self._tangents[name][k] = [torch.zeros_like(p) for p in self._params[k]]
        keep = plan.keep(k)
        with torch.no_grad():
            torch._foreach_mul_(z, self.mu * keep)
            if curvature is not None:
                torch._foreach_add_(z, curvature, alpha=-self.mu * plan.eta[k])
            if a != 0.0:
                torch._foreach_add_(z, delta, alpha=a)
            if b != 0.0:
                torch._foreach_add_(z, self._start[k], alpha=b)

    def _curvature_term(self, name: str, k: int) -> list[torch.Tensor] | None:
        """``d (d_t) / dp`` for the exact variant; the first-order variant drops it."""
        return None

    def _require_plan(self, caller: str) -> StepPlan:
        if self._plan is None:
            raise RuntimeError(f"{caller}() needs before_train_step(step) first, in the same step")
        return self._plan

    # -- search batches, state and restore ----------------------------------------------------

    def _search_grads(self, search_loss: torch.Tensor) -> Sequence[torch.Tensor | None]:
        return torch.autograd.grad(search_loss, self.flat_params(), allow_unused=True)

    def _dots(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
        per_group = split(list(grads), [len(ps) for ps in self._params])
        return [self._dot(name, per_group) for name in self.learned_names]

    def _to_floats(self, scalars: list[torch.Tensor]) -> list[float]:
        # One transfer (one device sync) for all of them, after the mean over ranks if any.
        if not scalars:
            return []
        device = self._params[0][0].device
        stacked = torch.stack([s.to(device, torch.float64) for s in scalars])
        return (stacked if self.reduce is None else self.reduce(stacked)).tolist()

    def _dot(self, name: str, grads: list[list[torch.Tensor | None]]) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64, device=self._params[0][0].device)
        for k, z in self._tangents[name].items():
            for g, zi in zip(grads[k], z):
                if g is not None:
                    total = total + torch.sum(g.detach() * zi).to(torch.float64)
        return total

    def _strategy_state(self) -> dict[str, Any]:
        return {
            "values": {name: value.raw for name, value in self.values.items()},
            "tangents": {n: {k: list(z) for k, z in t.items()} for n, t in self._tangents.items()},
            "meta": self.meta.state_dict(),
        }

    def _load_strategy_state(self, state: dict[str, Any]) -> None:
        if set(state["values"]) != set(self.values):
            raise BadInputError(
                f"state_dict values: got {sorted(state['values'])}; expected {sorted(self.values)}"
            )
        for name, raw in state["values"].items():
            self.values[name].raw = float(raw)
        self._tangents = {name: {} for name in self.learned_names}
        for name, per_group in state["tangents"].items():
            for k, z in per_group.items():
                self._tangents[name][int(k)] = [
                    t.to(p.device, p.dtype).clone() for t, p in zip(z, self._params[int(k)])
                ]
        meta_lr = self.meta.lr
        self.meta.load_state_dict(state["meta"])
        self.meta.lr = meta_lr

    def _restore(self, reason: str) -> None:
        state = restore_last_good(self.optimizer, self._last_good)
        self._load_strategy_state(state)
        self.meta.lr *= 0.5
        self.events.append(
            {"step": self._step, "event": "restored", "reason": reason, "meta_lr": self.meta.lr}
        )
        self._plan = None
        self._expected_lr = [None] * len(self.groups)


def _detached(loss: torch.Tensor | float) -> torch.Tensor:
    return loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
