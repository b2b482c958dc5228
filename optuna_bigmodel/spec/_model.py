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
    ``"prune"`` or ``"fail"``.
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


@dataclass(frozen=True)
class BudgetSpec:
    """How long the study runs: a trial count, a time limit in seconds, or both."""

    n_trials: int | None = None
    timeout: float | None = None


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
        }
