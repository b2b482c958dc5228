"""The bilevel inner loop as a Lightning callback: weights step on training batches; learned
strategy values (hypergradients) and gate logits step on batches of a held-out search split."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import optuna
import pytorch_lightning as pl
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.inner._gates import CHOICE_DELAY
from optuna_bigmodel.inner._gates import CHOICE_PICK
from optuna_bigmodel.inner._gates import check_choice_delay
from optuna_bigmodel.inner._gates import check_choice_pick
from optuna_bigmodel.inner._gates import GateLearner
from optuna_bigmodel.inner._gates import saved_structure
from optuna_bigmodel.inner._plan import InnerPlan
from optuna_bigmodel.strategy import check_no_external_scheduler
from optuna_bigmodel.strategy import HypergradientController
from optuna_bigmodel.structure import apply_structure
from optuna_bigmodel.structure import named_learned_choices
from optuna_bigmodel.structure import set_gate_mode
from optuna_bigmodel.structure import structure_parameters


# Search batches each candidate of a learned choice is measured on when discretising.
CHOICE_PICK_BATCHES = 8


class BilevelTuning(pl.Callback):
    """Tunes a run from inside it, as an :class:`InnerPlan` says; drop it into any ``Trainer``.

    - ``descent`` ``gd``: the datamodule's training batches become the whole training split.
    - A driven rate (``dynamic``, or any learned strategy value): before each step the
      :class:`~optuna_bigmodel.strategy.HypergradientController` sets the rate from the schedule;
      learned values step on the hypergradient of each search batch.
    - Learned structure: gates go to ``learn`` mode before the optimisers are made; their logits
      step on each search batch under the size budget, then are discretised and fixed.

    Per training step: ``on_train_batch_start`` sets the rate; Lightning steps the weights on the
    training batch; ``on_train_batch_end`` takes one search batch and steps only the learned
    values and gates (``torch.autograd.grad`` with explicit inputs: weights' ``.grad`` and values
    are never touched by it). The gates are not in the weights' optimiser (an error says so if
    they are), so they never step on training batches.

    The module needs ``search_loss(batch) -> Tensor``; the datamodule ``search_dataloader()``
    (the built-in ones carve it with ``configure_inner_loop``). Records (``learned``,
    ``structure``, ``compute_steps``) go to ``self.records`` and, given a ``trial``, to its user
    attributes from global rank 0. A run resumed from a Lightning checkpoint (``ckpt_path``)
    resumes the learned values, tangents, gate optimiser, budget multiplier and records, and a
    structure already discretised stays fixed. ``choice_delay`` is the fraction of the
    gate-learning steps (before ``discretise_at``) during which learned choices keep equal logits
    (see :class:`~optuna_bigmodel.inner._gates.GateLearner`); ``choice_pick`` ``"loss"``
    discretises each learned choice to the candidate with the lowest loss on
    ``CHOICE_PICK_BATCHES`` search batches (forward passes only, counted in the record
    ``choice_pick_batches``), ``"logits"`` to the most probable one. ``fixed_choices`` (choice
    path -> candidate) fixes those choices for the whole run while the other gates learn: a
    gradient cannot rank candidates fairly (the softmax favours the one with the largest
    output), so a study can instead try each candidate in its own run.

    Example:

        .. code-block:: python

            plan = InnerPlan(descent="dynamic", lr=LearnedValue(0.01, 1e-4, 1.0))
            trainer = pl.Trainer(max_steps=500, callbacks=[BilevelTuning(plan)])
            trainer.fit(module, datamodule=datamodule)
            print(trainer.callbacks[0].records["learned"]["lr"]["final"])
    """

    def __init__(
        self,
        plan: InnerPlan,
        *,
        trial: optuna.trial.BaseTrial | None = None,
        max_record_points: int = 200,
        choice_delay: float = CHOICE_DELAY,
        choice_pick: str = CHOICE_PICK,
        fixed_choices: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        self.choice_delay = check_choice_delay(choice_delay)
        self.choice_pick = check_choice_pick(choice_pick)
        self.choice_pick_batches = 0
        self.fixed_choices = dict(fixed_choices or {})
        self.trial = trial
        self.max_record_points = max_record_points
        self.controller: HypergradientController | None = None
        self.gates: GateLearner | None = None
        self.records: dict[str, Any] = {}
        self.search_steps = 0
        self._search: Iterator[Any] | None = None
        self._search_loader: Any = None
        self._resumed: dict[str, Any] | None = None

    # -- set-up --------------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        structure = self.plan.structure
        # Reading the checkpoint twice is worth it only where a discretised structure may wait.
        saved = _saved_state(trainer, self.state_key) if self.plan.learns_structure else None
        fixed = saved_structure(saved)
        if fixed is not None:
            # Resuming after the discretisation: the checkpoint holds masks, not logits.
            apply_structure(pl_module, fixed)
        elif self.plan.learns_structure:
            # Before configure_optimizers: learn mode makes the logits the optimisers must skip.
            set_gate_mode(
                pl_module,
                "learn",
                unit_relaxation=structure.unit_relaxation,
                choice_relaxation=structure.choice_relaxation,
            )
            _fix_choices(pl_module, self.fixed_choices)
            # Frozen outside search steps: training backward passes skip them, and DDP, which
            # wraps the module after this hook, never registers them (nor misses them once the
            # discretisation removes them).
            _set_trainable(structure_parameters(pl_module), False)
        self._configure_data(trainer)

    def _configure_data(self, trainer: pl.Trainer) -> None:
        datamodule = trainer.datamodule
        full_batch = self.plan.descent == "gd"
        fraction = self.plan.inner.search_fraction if self.plan.needs_search_split else 0.0
        if not (full_batch or fraction):
            return
        if hasattr(datamodule, "configure_inner_loop"):
            datamodule.configure_inner_loop(search_fraction=fraction, full_batch=full_batch)
            return
        if full_batch:
            raise BadInputError(
                "descent 'gd' needs a datamodule with configure_inner_loop(search_fraction, "
                f"full_batch) (got {type(datamodule).__name__}); use SearchSplitMixin"
            )
        if not hasattr(datamodule, "search_dataloader"):
            raise BadInputError(
                f"learned knobs need held-out search batches: the datamodule "
                f"({type(datamodule).__name__}) must have search_dataloader(), e.g. via "
                "optuna_bigmodel.tasks.SearchSplitMixin"
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not hasattr(pl_module, "search_loss") and self.plan.needs_search_split:
            raise BadInputError(
                f"learned knobs need {type(pl_module).__name__}.search_loss(batch) -> Tensor, "
                "the loss their search batches descend on"
            )
        _check_gates_not_in_optimisers(trainer, pl_module)
        total = int(trainer.estimated_stepping_batches)
        if self.plan.drives_rate:
            self.controller = self._make_controller(trainer, total)
        if self.plan.learns_structure:
            self.gates = GateLearner(
                pl_module,
                self.plan.structure,
                total,
                self.max_record_points,
                choice_delay=self.choice_delay,
                choice_pick=self.choice_pick,
            )
        if self.plan.needs_search_split:
            self._search_loader = trainer.datamodule.search_dataloader()
            self._search = iter(self._search_loader)
        if self._resumed is not None:
            self._resume(self._resumed)

    def _make_controller(self, trainer: pl.Trainer, total: int) -> HypergradientController:
        optimizer = trainer.optimizers[0]
        schedule = self.plan.schedule(total, float(optimizer.param_groups[0]["lr"]))
        reduce = None
        if trainer.world_size > 1:
            reduce = lambda t: trainer.strategy.reduce(t, reduce_op="mean")  # noqa: E731
        controller = HypergradientController(
            optimizer,
            schedule,
            weight_decay=self.plan.weight_decay,
            mu=self.plan.inner.mu,
            meta_lr=self.plan.inner.meta_lr,
            max_record_points=self.max_record_points,
            reduce=reduce,
        )
        check_no_external_scheduler(optimizer, trainer.lr_scheduler_configs, controller.groups)
        return controller

    # -- every step ----------------------------------------------------------------------------

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.controller is not None:
            self.controller.before_train_step(trainer.global_step)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = trainer.global_step  # already counts this batch's optimiser step
        if self.controller is not None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.controller.after_train_step(loss)
        learns_values = self.controller is not None and bool(self.controller.learned_names)
        learns_gates = self.gates is not None and self.gates.learning
        if learns_values or learns_gates:
            self._search_step(pl_module, step, learns_values, learns_gates)
        if learns_gates and step >= self.gates.discretise_step:
            loss = self._choice_loss(pl_module) if self.choice_pick == "loss" else None
            self.gates.discretise_and_fix(loss)

    def _choice_loss(self, pl_module: pl.LightningModule) -> Callable[[], float]:
        """The mean search loss on the same few search batches at every call (all ranks')."""
        batches = [
            pl_module.transfer_batch_to_device(self._next_search_batch(), pl_module.device, 0)
            for _ in range(CHOICE_PICK_BATCHES)
        ]

        def loss() -> float:
            self.choice_pick_batches += len(batches)
            mean = torch.stack([pl_module.search_loss(b).detach() for b in batches]).mean()
            return float(self._mean_over_ranks(pl_module, [mean])[0])

        return loss

    def _search_step(
        self, pl_module: pl.LightningModule, step: int, values: bool, gates: bool
    ) -> None:
        batch = pl_module.transfer_batch_to_device(self._next_search_batch(), pl_module.device, 0)
        extra = self.gates.inputs() if gates else []
        _set_trainable(self.gates.parameters if gates else [], True)
        try:
            loss = pl_module.search_loss(batch)
            weights = self.controller.flat_params() if values else []
            total = loss + self.gates.penalty(step) if gates else loss
            grads = list(torch.autograd.grad(total, [*weights, *extra], allow_unused=True))
        finally:
            _set_trainable(self.gates.parameters if gates else [], False)
        if values:
            self.controller.on_search_batch(loss.detach(), grads=grads[: len(weights)])
        if gates:
            self.gates.step(self._mean_over_ranks(pl_module, grads[len(weights) :]), step)
        self.search_steps += 1

    def _next_search_batch(self) -> Any:
        try:
            return next(self._search)
        except StopIteration:  # a new pass over the search split
            self._search = iter(self._search_loader)
            return next(self._search)

    @staticmethod
    def _mean_over_ranks(
        pl_module: pl.LightningModule, grads: list[torch.Tensor | None]
    ) -> list[torch.Tensor | None]:
        # Every rank must keep the same gates: average their search gradients.
        trainer = pl_module.trainer
        if trainer.world_size == 1:
            return grads
        return [None if g is None else trainer.strategy.reduce(g, reduce_op="mean") for g in grads]

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"search_steps": self.search_steps}
        state["choice_pick_batches"] = self.choice_pick_batches
        if self.controller is not None:
            state["controller"] = self.controller.state_dict()
        if self.gates is not None:
            state["gates"] = self.gates.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores callbacks before on_train_start builds the controller and gates.
        self._resumed = state_dict

    def _resume(self, state: dict[str, Any]) -> None:
        self.search_steps = int(state["search_steps"])
        self.choice_pick_batches = int(state.get("choice_pick_batches", 0))
        if self.controller is not None and "controller" in state:
            self.controller.load_state_dict(state["controller"])
        if self.gates is not None and "gates" in state:
            self.gates.load_state_dict(state["gates"])
        self._resumed = None

    # -- the end -------------------------------------------------------------------------------

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.records = {"compute_steps": int(trainer.global_step) + self.search_steps}
        if self.gates is not None:
            self.records["choice_pick_batches"] = self.choice_pick_batches
        self.records["descent"] = self.plan.descent
        if self.controller is not None and self.controller.learned_names:
            self.records["learned"] = self.controller.record()
        if self.gates is not None:
            self.records["structure"] = self.gates.record()
        if self.trial is not None and trainer.is_global_zero:
            for key, value in self.records.items():
                self.trial.set_user_attr(key, value)


def _fix_choices(module: torch.nn.Module, choices: Mapping[str, str]) -> None:
    gates = named_learned_choices(module, choices, "BilevelTuning fixed_choices")
    for name, candidate in choices.items():
        gates[name].fix(candidate)


def _set_trainable(parameters: Any, trainable: bool) -> None:
    for param in parameters:
        param.requires_grad_(trainable)


def _saved_state(trainer: pl.Trainer, key: str) -> dict[str, Any] | None:
    """This callback's state in the checkpoint the run resumes from, if any."""
    path = trainer.ckpt_path
    if not path:
        return None
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    return checkpoint.get("callbacks", {}).get(key)


def _check_gates_not_in_optimisers(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
    logits = {id(p) for p in structure_parameters(pl_module)}
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            if any(id(p) in logits for p in group["params"]):
                raise BadInputError(
                    f"{type(pl_module).__name__}.configure_optimizers puts gate logits in "
                    f"{type(optimizer).__name__}; expected weights only, so that gates never step "
                    "on training batches: build it from "
                    "optuna_bigmodel.structure.weight_parameters(self)"
                )
