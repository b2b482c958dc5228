"""What a task is: a name and a function that builds a Lightning module and its data."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import Any

import pytorch_lightning as pl


BuildFn = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any], int], "TaskBuild"]


@dataclass(frozen=True)
class TaskBuild:
    """What one trial trains: a Lightning module, its data and, when known, the best loss.

    Args:
        module: The model with its loss, metrics (``train_loss``, ``val_loss``, ``test_loss``) and
            ``configure_optimizers``.
        datamodule: The train / val / test data.
        optimum: The best value ``val_loss`` can reach in expectation, when it is known exactly
            (for a synthetic source, its entropy); ``None`` when it is unknown.
    """

    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    optimum: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.module, pl.LightningModule):
            raise TypeError(
                f"TaskBuild.module must be a pytorch_lightning.LightningModule, "
                f"got {type(self.module).__name__}"
            )
        if not isinstance(self.datamodule, pl.LightningDataModule):
            raise TypeError(
                f"TaskBuild.datamodule must be a pytorch_lightning.LightningDataModule, "
                f"got {type(self.datamodule).__name__}"
            )
        if self.optimum is not None and not (
            isinstance(self.optimum, (int, float)) and math.isfinite(self.optimum)
        ):
            raise TypeError(f"TaskBuild.optimum must be a finite float or None: {self.optimum!r}")


@dataclass(frozen=True)
class Task:
    """A named recipe for a model and its data, from which every trial of a study is built.

    ``build(params, model_settings, data_settings, seed)`` returns a :class:`TaskBuild`.
    ``params`` are the knob values of one trial; ``model_settings`` and ``data_settings`` are the
    ``task.model`` and ``task.data`` mappings of the study file. A knob with the same name as a
    setting overrides it. ``seed`` is the trial's seed: it fixes the weight initialisation and the
    shuffling of batches, never the data itself.

    Example:

        .. code-block:: python

            from optuna_bigmodel.tasks import resolve_task

            task = resolve_task("markov_gpt")
            built = task.build({"lr": 1e-2, "n_layers": 1}, {}, {"seq_len": 16}, 0)
            print(built.optimum)  # the entropy the model can at best reach, in nats per token

    Args:
        name: The name a study file uses for the task.
        build: The function that builds one trial's module and data.
        params: The knob names the task understands; ``None`` if it accepts any (it then checks
            them itself, or not at all).
        description: One line for listings.
    """

    name: str
    build: BuildFn
    params: frozenset[str] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Task.name must be a non-empty string, got {self.name!r}")
        if not callable(self.build):
            raise TypeError(f"Task.build must be callable, got {self.build!r}")
        if self.params is not None:
            object.__setattr__(self, "params", _as_name_set(self.params))


def _as_name_set(names: Iterable[str]) -> frozenset[str]:
    # A set or list of names is as good as a frozenset; freezing it keeps the Task hashable.
    listed = () if isinstance(names, str) else tuple(names)
    if isinstance(names, str) or not all(isinstance(n, str) for n in listed):
        raise TypeError(f"Task.params must be a set of knob names or None, got {names!r}")
    return frozenset(listed)
