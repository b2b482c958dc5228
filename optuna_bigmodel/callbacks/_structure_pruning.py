"""Freeze learned gate units that stay nearly shut, and stop computing the blocks they own."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import optuna
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies.launchers.multiprocessing import (
    _MultiProcessingLauncher,
)
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.callbacks._pruning import _refuse_in_memory
from optuna_bigmodel.callbacks._ranks import on_rank_zero
from optuna_bigmodel.callbacks._skip import install_skip
from optuna_bigmodel.structure import ChoiceGate, Gate, UnitGate, named_gates

# A frozen unit's logit. Sigmoid, hard-concrete and softmax all underflow to exactly 0 there, in
# every float dtype, with a gradient of exactly 0; finite, so an optimiser that decays or rescales
# parameters cannot turn it into NaN.
SHUT_LOGIT = -1.0e4


@dataclass(frozen=True)
class StructurePruningEvent:
    """Units of one gate frozen shut at one step.

    Args:
        step: The trainer's global step when they were frozen.
        gate: The gate's path in the model (``"blocks_gate"``, ``"blocks.0.attn.heads_gate"``).
        units: Unit indices for a :class:`UnitGate`, candidate names for a :class:`ChoiceGate`
            (as in a :class:`~optuna_bigmodel.structure.Structure`).
    """

    step: int
    gate: str
    units: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form stored in the trial's ``structure_pruned`` attribute."""
        return {**asdict(self), "units": list(self.units)}


@dataclass(frozen=True)
class _Decision:
    """What global rank 0 decided at a check; broadcast so every rank freezes the same units."""

    below: dict[str, list[int]]
    events: list[StructurePruningEvent]


class StructurePruning(pl.Callback):
    """Freezes shut the gate units whose keep-probability stays under `threshold`, so later steps
    skip them, and records what it removed and when.

    For a model whose gates are in learn mode (``set_gate_mode(model, "learn")``), trained by any
    bilevel loop. Every `check_every_n_steps` training batches, each open unit of a learned gate
    whose keep-probability is below `threshold` counts one more check; after `patience`
    consecutive ones it is frozen: its logit is set so low that its gate value and keep-probability
    are exactly 0, with zero gradient, and held there before every batch, so neither gradients nor
    optimiser momentum reopen it. A gate never keeps fewer than its ``min_kept`` units open (a
    choice: one candidate); when more units qualify, the least probable go first.

    What a frozen unit saves:

    - A unit that owns modules whole (a residual block, ``UnitGate(owns=...)``, as the blocks of
      the built-in GPT) stops running them: they return their input, which is what a block whose
      gate is 0 computes. This is checked on their first call after freezing.
    - The size (``expected_param_count``) drops by what the unit owns, and gates nested in a
      frozen block are no longer watched.
    - Heads and channel groups give exactly 0 but are still computed: the model computes them in
      one matrix product with the open ones (``export_model`` slices them out at the end).
    - A dropped candidate of a choice (`choices`) gets weight exactly 0 and is never drawn by
      Gumbel sampling; a softmax mixed op still computes it.

    Under DDP, global rank 0 decides at each check and every rank freezes the same units.

    Example:
        .. code-block:: python

            set_gate_mode(model, "learn")
            pruning = StructurePruning(threshold=0.05, patience=3, trial=trial)
            trainer = pl.Trainer(max_steps=2000, callbacks=[pruning])
            trainer.fit(module, datamodule=data)  # module trains its gates on search batches
            print(pruning.events)  # [StructurePruningEvent(step=120, gate="blocks_gate", ...)]

    Args:
        threshold: A keep-probability in (0, 1) below which a unit counts as nearly shut.
        patience: Consecutive checks below `threshold` before a unit is frozen.
        check_every_n_steps: Training batches between checks (each check reads the gates' keep
            probabilities once; under DDP it adds one small broadcast).
        choices: Also drop the candidates of learned choices.
        trial: If given, global rank 0 stores every removal in its user attribute
            ``structure_pruned``: ``[{"gate", "units", "step"}, ...]``.

    Note:
        Skipping swaps the owned modules' ``forward`` for a stand-in (it has not been tried with
        ``torch.compile``). The stand-in acts while the gate keeps the logits it froze, or a mask
        that shuts the unit (a structure discretised later drops it); a gate switched off, or
        fixed with the unit kept, runs its blocks again. Whatever moves a frozen logit
        (optimiser momentum, a :class:`~optuna_bigmodel.structure.CollapseGuard` lifting it) is
        undone before the next batch.
    """

    def __init__(
        self,
        threshold: float = 0.05,
        patience: int = 3,
        *,
        check_every_n_steps: int = 10,
        choices: bool = True,
        trial: optuna.trial.BaseTrial | None = None,
    ) -> None:
        super().__init__()
        self.threshold = _checked_fraction("threshold", threshold)
        self.patience = _checked_count("patience", patience)
        self.check_every_n_steps = _checked_count("check_every_n_steps", check_every_n_steps)
        if not isinstance(choices, bool):
            raise BadInputError(f"choices: expected True or False, got {choices!r}")
        self.choices = choices
        self.trial = trial
        self.events: list[StructurePruningEvent] = []
        self.frozen: dict[str, list[int]] = {}  # gate path -> indices of its frozen units
        self._below: dict[str, list[int]] = {}  # gate path -> consecutive checks below, per unit
        self._batches = 0
        self._keep_in_graph = False
        self._gates: dict[str, Gate] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        spawned = isinstance(trainer.strategy.launcher, _MultiProcessingLauncher)
        if self.trial is not None and spawned:
            _refuse_in_memory(self.trial)
        self._keep_in_graph = trainer.world_size > 1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._gates = dict(named_gates(pl_module))
        watched = [gate for gate in self._watched(pl_module).values() if gate is not None]
        if not watched and not self.frozen:
            rank_zero_warn("StructurePruning: no gate of the model is in learn mode; nothing to do")
        for name, units in self.frozen.items():  # a resumed run: freeze them again
            self._freeze(self._gate(name), name, units)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._hold_shut()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._batches += 1
        if self._batches % self.check_every_n_steps == 0:
            self._check(trainer, pl_module)
        self._hold_shut()  # so that the logits are exact at the end of the run, too

    def state_dict(self) -> dict[str, Any]:
        return {
            "frozen": {name: list(units) for name, units in self.frozen.items()},
            "below": {name: list(counts) for name, counts in self._below.items()},
            "events": [event.to_dict() for event in self.events],
            "batches": self._batches,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.frozen = {name: list(units) for name, units in state_dict["frozen"].items()}
        self._below = {name: list(counts) for name, counts in state_dict["below"].items()}
        self.events = [
            StructurePruningEvent(e["step"], e["gate"], tuple(e["units"]))
            for e in state_dict["events"]
        ]
        self._batches = state_dict["batches"]

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the callbacks into each process it starts.
        if self.trial is not None:
            _refuse_in_memory(self.trial)
        return {**self.__dict__, "_gates": {}}

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        decision = on_rank_zero(trainer, self._decide, pl_module, trainer.global_step)
        self._below = decision.below
        for event in decision.events:
            gate = self._gate(event.gate)
            units = _indices(gate, event.units)
            self._freeze(gate, event.gate, units)
            self.frozen[event.gate] = sorted(self.frozen.get(event.gate, []) + units)
            self.events.append(event)

    def _decide(self, pl_module: pl.LightningModule, step: int) -> _Decision:
        """Global rank 0 only: counts checks below the threshold and picks the units to freeze."""
        below: dict[str, list[int]] = {}
        events = []
        for name, (gate, probs) in self._keep_probs(pl_module).items():
            frozen = set(self.frozen.get(name, []))
            counts = self._below.get(name, [0] * gate.n_units)
            below[name] = [
                count + 1 if p < self.threshold and unit not in frozen else 0
                for unit, (count, p) in enumerate(zip(counts, probs))
            ]
            ready = [unit for unit, count in enumerate(below[name]) if count >= self.patience]
            room = gate.n_units - len(frozen) - _min_open(gate)
            chosen = sorted(sorted(ready, key=lambda unit: probs[unit])[: max(room, 0)])
            if chosen:
                events.append(StructurePruningEvent(step, name, _labels(gate, chosen)))
                below[name] = [0 if unit in chosen else c for unit, c in enumerate(below[name])]
        if events and self.trial is not None:
            records = [event.to_dict() for event in self.events + events]
            self.trial.set_user_attr("structure_pruned", records)
        return _Decision(below, events)

    def _keep_probs(self, pl_module: nn.Module) -> dict[str, tuple[Gate, list[float]]]:
        watched = self._watched(pl_module).items()
        gates = [(name, gate) for name, gate in watched if gate is not None]
        if not gates:
            return {}
        with torch.no_grad():  # one device sync for all gates
            flat = torch.cat([gate.keep_probs().detach().float() for _, gate in gates]).tolist()
        out, start = {}, 0
        for name, gate in gates:
            out[name] = (gate, flat[start : start + gate.n_units])
            start += gate.n_units
        return out

    def _watched(self, pl_module: nn.Module) -> dict[str, Gate | None]:
        """Every learned gate this callback may freeze units of, by path (None: not watched)."""
        inside_shut = self._inside_frozen_blocks()
        watched: dict[str, Gate | None] = {}
        for name, gate in named_gates(pl_module):
            learned = gate.logits is not None and id(gate) not in inside_shut
            kinds = (UnitGate, ChoiceGate) if self.choices else (UnitGate,)
            watched[name] = gate if learned and isinstance(gate, kinds) else None
        return watched

    def _inside_frozen_blocks(self) -> set[int]:
        # Gates inside a frozen block get no gradient any more; freezing them would say nothing.
        ids: set[int] = set()
        for name, units in self.frozen.items():
            gate = self._gate(name)
            for unit in units:
                for owned in gate.owns[unit]:
                    ids.update(id(m) for m in owned.modules() if isinstance(m, Gate))
        return ids

    def _freeze(self, gate: Gate, name: str, units: list[int]) -> None:
        # A resumed gate may be fixed already (its structure discretised): its mask decides.
        if gate.logits is not None:
            with torch.no_grad():
                gate.logits[units] = SHUT_LOGIT
        if isinstance(gate, UnitGate):
            for unit in units:
                for index, module in enumerate(gate.owns[unit]):
                    label = f"the module {index} owned by unit {unit} of {name!r}"
                    install_skip(module, gate, unit, label, self._keep_in_graph)

    def _hold_shut(self) -> None:
        # Optimiser momentum or weight decay may still move a frozen logit; put it back.
        with torch.no_grad():
            for name, units in self.frozen.items():
                logits = self._gate(name).logits
                if logits is not None:
                    logits[units] = SHUT_LOGIT

    def _gate(self, name: str) -> Gate:
        if name not in self._gates:
            raise BadInputError(
                f"StructurePruning: the model has no gate {name!r}, which this run froze units "
                f"of; gates: {sorted(self._gates) or 'none'}"
            )
        return self._gates[name]


def _checked_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise BadInputError(f"{name}: expected a number in (0, 1), got {value!r}")
    return float(value)


def _checked_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInputError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


def _min_open(gate: Gate) -> int:
    # A choice must keep a candidate to compute.
    return gate.min_kept if isinstance(gate, UnitGate) else 1


def _labels(gate: Gate, units: list[int]) -> tuple[int | str, ...]:
    if isinstance(gate, ChoiceGate):
        return tuple(gate.names[unit] for unit in units)
    return tuple(units)


def _indices(gate: Gate, labels: tuple[int | str, ...]) -> list[int]:
    if isinstance(gate, ChoiceGate):
        return [gate.names.index(str(label)) for label in labels]
    return [int(label) for label in labels]
