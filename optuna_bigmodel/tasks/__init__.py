"""Built-in tasks (a model and its data) and how a study finds a task by name.

A task builds, for one trial, a Lightning module and its data from the trial's knob values and the
study file's ``task.model`` / ``task.data`` settings. The built-in tasks generate or ship their
data, never download it:

- ``markov_gpt``: a small GPT on a random sparse Markov source whose entropy, the best reachable
  ``val_loss``, is known exactly (``TaskBuild.optimum``).
- ``digits_mlp``: an MLP on the 8x8 digits that scikit-learn ships (the ``digits`` extra).

Any other task is an import path ``"package.module:attr"``.
"""

from optuna_bigmodel.tasks._markov_source import MarkovSource
from optuna_bigmodel.tasks._registry import builtin_task_names
from optuna_bigmodel.tasks._registry import register_task
from optuna_bigmodel.tasks._registry import resolve_task
from optuna_bigmodel.tasks._search_split import SearchSplitMixin
from optuna_bigmodel.tasks._task import Task
from optuna_bigmodel.tasks._task import TaskBuild


__all__ = [
    "MarkovSource",
    "SearchSplitMixin",
    "Task",
    "TaskBuild",
    "builtin_task_names",
    "register_task",
    "resolve_task",
]
