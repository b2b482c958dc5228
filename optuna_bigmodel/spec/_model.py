"""The typed form of a study file: frozen dataclasses, built and checked by ``parse_spec``."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from optuna_bigmodel.knobs import Knob


@dataclass(frozen=True)
class TaskSpec:
    """What to train: a task name (built-in or ``package.module:attr``) and its settings."""

    name: str
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerSpec:
    """An Optuna sampler by canonical name (``"tpe"``, ``"grid"``, ...) and its kwargs."""

    name: str = "tpe"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrunerSpec:
    """An Optuna pruner by canonical name (``"none"``, ``"median"``, ...) and its kwargs."""

    name: str = "none"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainerSpec:
    """The Lightning ``Trainer`` settings of every trial.

    ``max_steps`` is ``-1`` for no step limit (then ``max_epochs`` is set); validation runs every
    ``val_check_interval`` training steps. A trial on more than one device runs DDP: ``strategy``
    ``"auto"`` or ``"ddp"`` starts one process per device for it, ``"ddp_spawn"`` lets Lightning
    spawn them. ``on_nonfinite`` says how a trial whose loss or metric turns NaN or infinite ends:
    ``"prune"`` or ``"fail"``. ``early_stopping`` is a patience in validations (``None``: off);
    ``test_at_end`` scores each complete trial on the test split (user attr ``test``).
    """

    max_steps: int = 200
    max_epochs: int | None = None
    val_check_interval: int = 50
    devices: int | str = 1
    accelerator: str = "auto"
    precision: str = "32-true"
    progress_bar: bool = True
    strategy: str = "auto"
    on_nonfinite: str = "prune"
    early_stopping: int | None = None
    test_at_end: bool = False


@dataclass(frozen=True)
class InnerSpec:
    """How each trial's own training run descends, and how it learns its ``learn`` knobs.

    ``descent``: ``"sgd"`` (mini-batches, the optimiser's constant rate), ``"gd"`` (each step's
    gradient is the whole training split) or ``"dynamic"`` (mini-batches, a rate that changes per
    step: the ``warmup`` / ``decay`` schedule, learned where those knobs are ``learn``). A knob
    named ``descent`` overrides it per trial. ``search_fraction`` of the training data becomes the
    held-out search split whenever something is learned; ``mu`` and ``meta_lr`` drive the
    hypergradients of learned strategy knobs (knobs named ``mu`` and ``meta_lr`` override them
    per trial, and ``<name>_init`` where learned knob ``<name>`` starts, so an outer search can
    pick them); ``decay_kind`` is the schedule's decay shape.
    """

    descent: str = "sgd"
    search_fraction: float = 0.1
    mu: float = 0.99
    meta_lr: float = 0.02
    decay_kind: str = "cosine"


@dataclass(frozen=True)
class StructureSpec:
    """How the model's structure gates are tuned: ``off`` (the plain model), ``sample`` (one
    knob per gate, derived from the model, picked by the study's sampler) or ``learn`` (gate
    logits trained on search batches under a size ``budget``, a fraction of the weights).

    In ``learn`` mode the budget's target falls linearly from 1 to ``budget`` over
    ``warmup_fraction`` of the run, gate logits step with Adam at ``gate_lr``, and after
    ``discretise_at`` of the run the structure is discretised (top-k to the budget, argmax choices)
    and fixed, so that the rest of the run fine-tunes the weights of the structure the trial reports
    (the defaults, warm-up 0.1 and discretisation at 0.1, are what
    ``benchmarks/learned_structure.py`` and ``benchmarks/quality`` measured best: the weights of
    units that will be dropped waste capacity while the gates are soft, and the kept ones need the
    time to train). In ``sample`` mode a ``budget`` below 1 makes a trial whose sampled structure
    keeps more of the weights end as pruned before it trains (user attribute ``over_budget``), so
    every search compares structures under the same size limit. With ``prune_below``, units whose
    keep-probability stays under it are frozen shut early and the blocks they own stop running
    (``StructurePruning``). With ``choices: sample`` the choices among candidate operators (e.g. the
    activation) become knobs of the study's sampler, one run per candidate, while the unit gates
    learn: a gradient ranks candidates poorly (the softmax favours the largest output early), see
    benchmarks/RESULTS.md.
    """

    mode: str = "off"
    budget: float = 1.0
    warmup_fraction: float = 0.1
    unit_relaxation: str = "sigmoid"
    choice_relaxation: str = "softmax"
    gate_lr: float = 0.05
    discretise_at: float = 0.1
    prune_below: float | None = None
    choices: str = "learn"

    @property
    def samples_gates(self) -> bool:
        """Whether the study's sampler picks gates: all of them (``sample``), or the choices
        among candidate operators while the unit gates learn (``learn`` with choices ``sample``)."""
        return self.mode == "sample" or (self.mode == "learn" and self.choices == "sample")

    def to_dict(self) -> dict[str, Any]:
        """The section as a study file writes it: the learn-mode keys only in learn mode."""
        if self.mode == "learn":
            return asdict(self)
        if self.mode == "sample" and self.budget < 1.0:
            return {"mode": self.mode, "budget": self.budget}
        return {"mode": self.mode}


@dataclass(frozen=True)
class BudgetSpec:
    """How long the study runs: a trial count, a time limit in seconds, training steps, or any
    of them together (the first one spent ends it).

    ``compute_steps`` counts the training steps of finished trials, pruned and failed ones
    included (a trial's ``compute_steps`` record, which counts search batches too, else its last
    reported step); no new trial starts once they reach it. Trials already running finish, so
    with several workers the study can overshoot by up to one trial per other worker.
    """

    n_trials: int | None = None
    timeout: float | None = None
    compute_steps: int | None = None


@dataclass(frozen=True, kw_only=True)
class StudySpec:
    """A whole study: what to train, what to tune, how to search, where to store it.

    Build it with :func:`load_spec` or :func:`parse_spec`, which check every field; a spec built
    directly is not checked. ``to_dict`` gives the plain, JSON-ready mapping that ``parse_spec``
    turns back into an equal spec.

    Example:

        .. code::

            from optuna_bigmodel.spec import parse_spec

            data = {"name": "demo", "task": {"name": "markov_gpt"}, "budget": {"n_trials": 4}}
            spec = parse_spec(data)
            assert parse_spec(spec.to_dict()) == spec

    Attributes:
        source: The file the spec was read from, for messages; not part of equality.
    """

    name: str
    direction: str = "minimize"
    metric: str = "val_loss"
    seed: int = 0
    task: TaskSpec
    knobs: tuple[Knob, ...] = ()
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    storage: str | None = None
    run_dir: str = "runs"
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    inner: InnerSpec = field(default_factory=InnerSpec)
    structure: StructureSpec = field(default_factory=StructureSpec)
    source: str | None = field(default=None, compare=False)

    def knob(self, name: str) -> Knob:
        """The knob called ``name``.

        Raises:
            KeyError: If there is none.
        """
        for knob in self.knobs:
            if knob.name == name:
                return knob
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data in study-file shape (every default written out); JSON-ready.

        ``asdict`` copies deeply, so changing the result leaves the spec as it was.
        """
        return {
            "name": self.name,
            "direction": self.direction,
            "metric": self.metric,
            "seed": self.seed,
            "task": asdict(self.task),
            "knobs": {knob.name: knob.to_dict() for knob in self.knobs},
            "sampler": asdict(self.sampler),
            "pruner": asdict(self.pruner),
            "storage": self.storage,
            "run_dir": self.run_dir,
            "trainer": asdict(self.trainer),
            "budget": asdict(self.budget),
            "inner": asdict(self.inner),
            "structure": self.structure.to_dict(),
        }
