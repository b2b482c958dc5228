"""Finding a task by the name a study file gives: a built-in name or an import path."""

from __future__ import annotations

import difflib
import importlib

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks._digits_task import DIGITS_MLP
from optuna_bigmodel.tasks._markov_task import MARKOV_GPT
from optuna_bigmodel.tasks._task import Task


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> None:
    """Makes ``task`` resolvable by its name.

    Registering the same task again does nothing; another task under a taken name is refused,
    so that a plug-in cannot silently replace a built-in.

    Raises:
        TypeError: ``task`` is not a :class:`Task`.
        BadInputError: The name is taken by another task, or contains ``":"`` (which marks an
            import path).
    """
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a Task, got {type(task).__name__}")
    if ":" in task.name:
        raise BadInputError(f"task name {task.name!r} must not contain ':' (marks import paths)")
    if _TASKS.get(task.name, task) is not task:
        raise BadInputError(f"task name {task.name!r} is taken; choose another name")
    _TASKS[task.name] = task


def builtin_task_names() -> list[str]:
    """The names :func:`resolve_task` accepts without an import path, sorted.

    These are the built-in tasks and any added with :func:`register_task`.
    """
    return sorted(_TASKS)


def resolve_task(name: str) -> Task:
    """The task called ``name``: a registered name such as ``"markov_gpt"``, or an import path.

    An import path ``"package.module:attr"`` names a :class:`Task`, or a plain function with the
    signature of :attr:`Task.build`, which becomes a Task with ``params=None`` (any knob names).
    ``attr`` may be dotted, e.g. ``"module:Class.attr"``.

    Example:

        .. code-block:: python

            from optuna_bigmodel.tasks import resolve_task

            task = resolve_task("digits_mlp")
            custom = resolve_task("my_project.tasks:build_resnet")

    Raises:
        BadInputError: The name is unknown, the module cannot be imported, or the attribute is
            missing or neither a Task nor callable.
    """
    if not isinstance(name, str):
        raise BadInputError(f"task must be a name or an import path, got {name!r}")
    if ":" in name:
        return _import_task(name)
    if name in _TASKS:
        return _TASKS[name]
    near = difflib.get_close_matches(name, list(_TASKS), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise BadInputError(f"unknown task {name!r}{hint}; {_what_is_allowed()}")


def _import_task(path: str) -> Task:
    module_name, _, attr_path = path.partition(":")
    if not module_name or not attr_path:
        raise BadInputError(
            f"task import path {path!r} must look like 'package.module:attr'; {_what_is_allowed()}"
        )
    try:
        target = importlib.import_module(module_name)
    except ImportError as error:
        raise BadInputError(
            f"task {path!r}: cannot import module {module_name!r} ({error}); {_what_is_allowed()}"
        ) from error
    for attr in attr_path.split("."):
        if not hasattr(target, attr):
            raise BadInputError(
                f"task {path!r}: {getattr(target, '__name__', target)!r} has no attribute {attr!r}"
            )
        target = getattr(target, attr)
    return _as_task(path, target)


def _as_task(path: str, target: object) -> Task:
    if isinstance(target, Task):
        return target
    if not callable(target):
        raise BadInputError(
            f"task {path!r} is a {type(target).__name__}, not a Task or a callable "
            "build(params, model_settings, data_settings, seed) -> TaskBuild"
        )
    doc = (getattr(target, "__doc__", None) or "").strip()
    return Task(name=path, build=target, params=None, description=doc.split("\n")[0])


def _what_is_allowed() -> str:
    return (
        f"built-in tasks: {', '.join(builtin_task_names())}; "
        "or an import path 'package.module:attr' to a Task or a build function"
    )


for _task in (MARKOV_GPT, DIGITS_MLP):
    register_task(_task)
