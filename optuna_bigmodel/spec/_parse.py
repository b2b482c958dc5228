"""Turning a study file (or a mapping in its shape) into a checked :class:`StudySpec`."""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

from optuna_bigmodel.spec import _fields
from optuna_bigmodel.spec import _inner
from optuna_bigmodel.spec._errors import KeyPath
from optuna_bigmodel.spec._errors import SpecError
from optuna_bigmodel.spec._model import BudgetSpec
from optuna_bigmodel.spec._model import StudySpec
from optuna_bigmodel.spec._model import TaskSpec
from optuna_bigmodel.spec._model import TrainerSpec
from optuna_bigmodel.spec._reader import Reader
from optuna_bigmodel.spec._yaml import load_yaml


_TOP_KEYS = (
    "name", "direction", "metric", "seed", "task", "knobs", "sampler", "pruner",
    "storage", "run_dir", "trainer", "budget", "inner", "structure",
)  # fmt: skip
_TASK_KEYS = ("name", "model", "data")
_TRAINER_KEYS = (
    "max_steps", "max_epochs", "val_check_interval", "devices", "accelerator", "precision",
    "progress_bar", "strategy", "on_nonfinite", "early_stopping", "test_at_end",
)  # fmt: skip
_BUDGET_KEYS = ("n_trials", "timeout", "compute_steps")
DIRECTIONS = ("minimize", "maximize")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp", "ddp_spawn")
NONFINITE_POLICIES = ("prune", "fail")
PRECISIONS = ("64-true", "32-true", "16-mixed", "bf16-mixed", "32", "16", "bf16", "64")
_TOP_EXPECTED = "a mapping of study settings with at least 'name' and 'task'"
_TASK_NAME = "a built-in task name or 'package.module:attr'"


def load_spec(path: str | os.PathLike[str]) -> StudySpec:
    """Read and check a YAML study file.

    Example:

        .. code::

            from optuna_bigmodel.spec import load_spec

            spec = load_spec("studies/quickstart.yaml")
            print(spec.budget.n_trials, [knob.name for knob in spec.knobs])

    Raises:
        SpecError: If the file cannot be read, is not valid YAML, or any setting is wrong; the
            message names the file, the line, the key path, the value and what is expected.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else str(err)
        detail = f"cannot read the study file ({reason}); expected a readable YAML file"
        raise SpecError(source, (), detail) from None
    data, lines = load_yaml(text, source)
    if data is None:
        raise SpecError(source, (), f"the file is empty; expected {_TOP_EXPECTED}", 1)
    return _parse(data, Reader(source, lines))


def parse_spec(data: Mapping[str, Any], source: str = "<dict>") -> StudySpec:
    """Check a mapping in study-file shape and build the :class:`StudySpec`.

    Raises:
        SpecError: If any setting is wrong; the message names ``source``, the key path, the value
            and what is expected.
    """
    return _parse(data, Reader(source))


def _parse(data: Any, reader: Reader) -> StudySpec:
    if not isinstance(data, Mapping):
        raise reader.wrong((), data, _TOP_EXPECTED)
    top = reader.section(data, (), _TOP_KEYS, required=("name", "task"))
    knobs = _fields.knobs(reader, top.get("knobs"), ("knobs",))
    _inner.check_inner_knobs(reader, knobs)
    sampler = _fields.sampler(reader, _or(top, "sampler", "tpe"), ("sampler",))
    budget = _budget(reader, top.get("budget"), ("budget",))
    metric = _or(top, "metric", "val_loss")
    structure = _inner.structure(reader, top.get("structure"), ("structure",))
    # Gate knobs derived from the model join the grid at run time; the runner sizes it then.
    derived = structure.samples_gates
    return StudySpec(
        name=_fields.study_name(reader, top["name"], ("name",)),
        direction=reader.choice(_or(top, "direction", "minimize"), ("direction",), DIRECTIONS),
        metric=reader.string(metric, ("metric",), "the name of a logged metric"),
        seed=_fields.seed(reader, top.get("seed", 0), ("seed",)),
        task=_task(reader, top["task"], ("task",)),
        knobs=knobs,
        sampler=sampler,
        pruner=_fields.pruner(reader, _or(top, "pruner", "none"), ("pruner",)),
        storage=_fields.storage(reader, top.get("storage"), ("storage",)),
        run_dir=_fields.run_dir(reader, top.get("run_dir", "runs"), ("run_dir",)),
        trainer=_trainer(reader, top.get("trainer"), ("trainer",)),
        budget=_fields.complete_budget(reader, budget, sampler, knobs, derived),
        inner=_inner.inner(reader, top.get("inner"), ("inner",)),
        structure=structure,
        source=reader.source,
    )


def _or(section: Mapping[str, Any], key: str, default: Any) -> Any:
    # `key:` with nothing after it reads as null; for these keys that means "the default".
    value = section.get(key)
    return default if value is None else value


def _task(reader: Reader, value: Any, path: KeyPath) -> TaskSpec:
    section = reader.section(value, path, _TASK_KEYS, required=("name",))
    return TaskSpec(
        name=reader.string(section["name"], path + ("name",), _TASK_NAME),
        model=_settings(reader, section.get("model"), path + ("model",)),
        data=_settings(reader, section.get("data"), path + ("data",)),
    )


def _settings(reader: Reader, value: Any, path: KeyPath) -> dict[str, Any]:
    expected = "a mapping of setting name to value"
    settings = reader.mapping({} if value is None else value, path, expected)
    return {k: reader.plain(item, path + (k,), mappings=False) for k, item in settings.items()}


def _trainer(reader: Reader, value: Any, path: KeyPath) -> TrainerSpec:
    section = reader.section(value, path, _TRAINER_KEYS)

    def get(key: str, default: Any) -> tuple[Any, KeyPath]:
        return section.get(key, default), path + (key,)

    max_epochs = None
    if section.get("max_epochs") is not None:
        max_epochs = reader.integer(*get("max_epochs", None), minimum=1)
    steps = _fields.max_steps(reader, *get("max_steps", 200), max_epochs)
    return TrainerSpec(
        max_steps=steps,
        max_epochs=max_epochs,
        val_check_interval=_fields.val_check_interval(reader, *get("val_check_interval", 50), steps),
        devices=_devices(reader, *get("devices", 1)),
        accelerator=reader.choice(*get("accelerator", "auto"), ACCELERATORS),
        precision=_precision(reader, *get("precision", "32-true")),
        progress_bar=reader.boolean(*get("progress_bar", True)),
        strategy=reader.choice(*get("strategy", "auto"), STRATEGIES),
        on_nonfinite=reader.choice(*get("on_nonfinite", "prune"), NONFINITE_POLICIES),
        early_stopping=_early_stopping(reader, *get("early_stopping", None)),
        test_at_end=reader.boolean(*get("test_at_end", False)),
    )


def _early_stopping(reader: Reader, value: Any, path: KeyPath) -> int | None:
    # The patience, in validations without improvement of the metric; null: train to the end.
    return None if value is None else reader.integer(value, path, minimum=1)


def _devices(reader: Reader, value: Any, path: KeyPath) -> int | str:
    if isinstance(value, str) and value.lower() == "auto":
        return "auto"
    if isinstance(value, str):
        raise reader.wrong(path, value, "an integer >= 1 or 'auto'")
    return reader.integer(value, path, minimum=1)


def _precision(reader: Reader, value: Any, path: KeyPath) -> str:
    # `precision: 32` reads as an integer; Lightning takes "32" as well, so accept it as that.
    if isinstance(value, int) and not isinstance(value, bool) and str(value) in PRECISIONS:
        return str(value)
    return reader.choice(value, path, PRECISIONS)


def _budget(reader: Reader, value: Any, path: KeyPath) -> BudgetSpec:
    section = reader.section(value, path, _BUDGET_KEYS)
    return BudgetSpec(
        n_trials=_fields.n_trials(reader, section.get("n_trials"), path + ("n_trials",)),
        timeout=_fields.timeout(reader, section.get("timeout"), path + ("timeout",)),
        compute_steps=_fields.compute_steps(
            reader, section.get("compute_steps"), path + ("compute_steps",)
        ),
    )
