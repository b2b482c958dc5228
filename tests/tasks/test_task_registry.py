"""Finding tasks by name or import path, and the Task / TaskBuild containers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
import textwrap
import uuid

import pytest

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks import builtin_task_names
from optuna_bigmodel.tasks import register_task
from optuna_bigmodel.tasks import resolve_task
from optuna_bigmodel.tasks import Task
from optuna_bigmodel.tasks import TaskBuild
from optuna_bigmodel.tasks import _registry


PLUGIN = '''
from optuna_bigmodel.tasks import Task


def build(params, model_settings, data_settings, seed):
    """Builds nothing much.

    More words.
    """
    raise NotImplementedError


TASK = Task(name="plugin", build=build, params={"lr"})
NOT_CALLABLE = 3


class Holder:
    task = TASK
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh importable module holding a task, a build function and a number."""
    name = f"plugin_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_TASKS", dict(_registry._TASKS))


def test_builtin_names() -> None:
    assert builtin_task_names() == sorted(builtin_task_names())
    assert {"digits_mlp", "markov_gpt"} <= set(builtin_task_names())


@pytest.mark.parametrize("name", ["markov_gpt", "digits_mlp"])
def test_builtin_tasks_resolve_and_accept_the_common_knobs(name: str) -> None:
    task = resolve_task(name)
    assert task.name == name and task.description
    assert {"lr", "optimizer", "weight_decay", "dropout", "batch_size"} <= task.params
    assert "seed" not in task.params


def test_import_path_to_a_function_becomes_a_task_that_accepts_any_knob(plugin: str) -> None:
    task = resolve_task(f"{plugin}:build")
    assert task.name == f"{plugin}:build"
    assert task.params is None
    assert task.build.__name__ == "build"
    assert task.description == "Builds nothing much."


def test_import_path_to_a_task_returns_it(plugin: str) -> None:
    task = resolve_task(f"{plugin}:TASK")
    assert task.name == "plugin" and task.params == frozenset({"lr"})
    assert resolve_task(f"{plugin}:Holder.task") is task


@pytest.mark.parametrize(
    "name, expected",
    [
        ("markov_gtp", ["unknown task 'markov_gtp'", "did you mean 'markov_gpt'", "digits_mlp"]),
        ("zzz", ["unknown task 'zzz'; built-in tasks: ", "markov_gpt", "'package.module:attr'"]),
        ("no_such_module_9f3:build", ["cannot import module 'no_such_module_9f3'", "markov_gpt"]),
        (":build", ["'package.module:attr'"]),
        ("json:", ["'package.module:attr'"]),
        ("json:no_such_attr", ["task 'json:no_such_attr'", "has no attribute 'no_such_attr'"]),
        ("json.decoder:JSONDecoder.nope", ["'json.decoder:JSONDecoder.nope'", "'nope'"]),
    ],
)
def test_bad_names_say_what_is_wrong_and_what_is_allowed(name: str, expected: list[str]) -> None:
    with pytest.raises(BadInputError) as error:
        resolve_task(name)
    for part in expected:
        assert part in str(error.value)


def test_attribute_that_is_neither_task_nor_callable_is_refused(plugin: str) -> None:
    with pytest.raises(BadInputError, match=f"task '{plugin}:NOT_CALLABLE' is a int, not a Task"):
        resolve_task(f"{plugin}:NOT_CALLABLE")


def test_task_name_must_be_a_string() -> None:
    with pytest.raises(BadInputError, match="got 3"):
        resolve_task(3)  # type: ignore[arg-type]


def test_bad_input_errors_are_value_errors() -> None:
    assert issubclass(BadInputError, ValueError)


@pytest.mark.usefixtures("fresh_registry")
def test_registered_task_resolves_by_name() -> None:
    task = Task(name="mine", build=lambda *args: None)  # type: ignore[arg-type, return-value]
    register_task(task)
    register_task(task)  # again: nothing happens
    assert resolve_task("mine") is task
    assert "mine" in builtin_task_names()


@pytest.mark.usefixtures("fresh_registry")
def test_register_refuses_taken_names_colons_and_non_tasks() -> None:
    with pytest.raises(BadInputError, match="'markov_gpt' is taken"):
        register_task(Task(name="markov_gpt", build=print))
    with pytest.raises(BadInputError, match="must not contain ':'"):
        register_task(Task(name="a:b", build=print))
    with pytest.raises(TypeError, match="takes a Task"):
        register_task(print)  # type: ignore[arg-type]


def test_task_checks_its_fields() -> None:
    assert Task(name="t", build=print, params=["a", "b"]).params == frozenset({"a", "b"})
    with pytest.raises(TypeError, match="name"):
        Task(name="", build=print)
    with pytest.raises(TypeError, match="callable"):
        Task(name="t", build=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params"):
        Task(name="t", build=print, params="lr")  # type: ignore[arg-type]


def test_task_build_checks_its_fields() -> None:
    built = resolve_task("markov_gpt").build({}, {}, {"n_train": 8}, 0)
    with pytest.raises(TypeError, match="module"):
        TaskBuild(module=object(), datamodule=built.datamodule)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="datamodule"):
        TaskBuild(module=built.module, datamodule=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optimum"):
        TaskBuild(module=built.module, datamodule=built.datamodule, optimum=float("nan"))
