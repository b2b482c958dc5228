"""A valid study file becomes the expected dataclasses; defaults; round trips through to_dict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optuna_bigmodel.knobs import Knob
from optuna_bigmodel.spec import BudgetSpec
from optuna_bigmodel.spec import load_spec
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.spec import PrunerSpec
from optuna_bigmodel.spec import SamplerSpec
from optuna_bigmodel.spec import StudySpec
from optuna_bigmodel.spec import TaskSpec
from optuna_bigmodel.spec import TrainerSpec


FULL = """\
name: quickstart
direction: maximize
metric: val_acc
seed: 7
task:
  name: markov_gpt
  model: {d_model: 32, n_layers: 2, widths: [8, 16]}
  data: {seq_len: 32, batch_size: 32}
knobs:
  lr:        {axis: strategy,  low: 1.0e-4, high: 3.0e-1, log: true}
  optimizer: {axis: strategy,  choices: [adam, sgd]}
  n_layers:  {axis: structure, choices: [1, 2, 3]}
  d_model:   {axis: structure, low: 16, high: 64, step: 16}
  dropout:   {axis: strategy,  mode: fixed, value: 0.1}
  weight_decay: {axis: strategy, low: 1.0e-6, high: 1.0e-2, log: true, grid: [1.0e-5, 1.0e-3]}
  momentum:  {axis: parameter, low: 0.5, high: 0.9, grid_points: 3}
sampler: {name: tpe, kwargs: {n_startup_trials: 4}}
pruner: {name: median, kwargs: {n_warmup_steps: 50}}
storage: sqlite:///study.db
run_dir: out
trainer:
  max_steps: 300
  max_epochs: 2
  val_check_interval: 25
  devices: auto
  accelerator: cpu
  precision: bf16-mixed
  progress_bar: false
budget:
  n_trials: 12
  timeout: 60
"""

MINIMAL = """\
name: tiny
task: {name: my_pkg.tasks:build}
budget: {n_trials: 3}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_full_file_parses_to_expected_dataclasses(tmp_path: Path) -> None:
    path = _write(tmp_path, FULL)
    spec = load_spec(path)
    assert spec == StudySpec(
        name="quickstart",
        direction="maximize",
        metric="val_acc",
        seed=7,
        task=TaskSpec("markov_gpt", {"d_model": 32, "n_layers": 2, "widths": [8, 16]}, {"seq_len": 32, "batch_size": 32}),
        knobs=(
            Knob("lr", "strategy", low=1e-4, high=0.3, log=True),
            Knob("optimizer", "strategy", choices=("adam", "sgd")),
            Knob("n_layers", "structure", choices=(1, 2, 3)),
            Knob("d_model", "structure", low=16, high=64, step=16),
            Knob("dropout", "strategy", mode="fixed", value=0.1),
            Knob("weight_decay", "strategy", low=1e-6, high=1e-2, log=True, grid=(1e-5, 1e-3)),
            Knob("momentum", "parameter", low=0.5, high=0.9, grid_points=3),
        ),
        sampler=SamplerSpec("tpe", {"n_startup_trials": 4}),
        pruner=PrunerSpec("median", {"n_warmup_steps": 50}),
        storage="sqlite:///study.db",
        run_dir="out",
        trainer=TrainerSpec(
            max_steps=300, max_epochs=2, val_check_interval=25, devices="auto",
            accelerator="cpu", precision="bf16-mixed", progress_bar=False,
        ),
        budget=BudgetSpec(n_trials=12, timeout=60.0),
    )
    assert spec.source == str(path)
    assert spec.knob("d_model").is_int and not spec.knob("momentum").is_int
    assert isinstance(spec.budget.timeout, float)


def test_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, MINIMAL))
    assert (spec.direction, spec.metric, spec.seed) == ("minimize", "val_loss", 0)
    assert spec.task == TaskSpec("my_pkg.tasks:build", {}, {})
    assert spec.knobs == ()
    assert spec.sampler == SamplerSpec("tpe", {})
    assert spec.pruner == PrunerSpec("none", {})
    assert (spec.storage, spec.run_dir) == (None, "runs")
    assert spec.trainer == TrainerSpec(
        max_steps=200, max_epochs=None, val_check_interval=50, devices=1,
        accelerator="auto", precision="32-true", progress_bar=True,
    )
    assert spec.budget == BudgetSpec(n_trials=3, timeout=None)


def test_empty_sections_read_as_defaults() -> None:
    spec = parse_spec({"name": "a", "task": {"name": "t", "model": None}, "knobs": None, "sampler": None,
                       "trainer": None, "budget": {"timeout": 5}})
    assert spec.knobs == () and spec.sampler.name == "tpe" and spec.trainer == TrainerSpec()
    assert spec.budget == BudgetSpec(None, 5.0)


@pytest.mark.parametrize("text", [FULL, MINIMAL])
def test_to_dict_round_trips_through_json(tmp_path: Path, text: str) -> None:
    spec = load_spec(_write(tmp_path, text))
    stored = json.loads(json.dumps(spec.to_dict()))
    again = parse_spec(stored)
    assert again == spec
    assert again.to_dict() == spec.to_dict()
    assert again.source == "<dict>"  # the source is for messages, not part of equality


def test_to_dict_is_a_copy() -> None:
    spec = parse_spec({"name": "a", "task": {"name": "t", "model": {"w": [1, 2]}}, "budget": {"n_trials": 1}})
    spec.to_dict()["task"]["model"]["w"].append(3)
    assert spec.task.model == {"w": [1, 2]}


def test_grid_sampler_budget_defaults_to_grid_size_and_round_trips() -> None:
    spec = parse_spec({
        "name": "g", "task": {"name": "t"}, "sampler": "grid",
        "knobs": {
            "opt": {"axis": "strategy", "choices": ["adam", "sgd", "rmsprop"]},
            "width": {"axis": "structure", "low": 8, "high": 32, "step": 8},
            "lr": {"axis": "strategy", "low": 0.001, "high": 0.1, "log": True, "grid_points": 2},
            "fixed": {"axis": "strategy", "mode": "fixed", "value": "x"},
        },
    })
    assert spec.budget.n_trials == 3 * 4 * 2
    assert parse_spec(spec.to_dict()) == spec


def test_brute_force_budget_defaults_to_every_combination() -> None:
    spec = parse_spec({
        "name": "b", "task": {"name": "t"}, "sampler": "brute_force",
        "knobs": {
            "opt": {"axis": "strategy", "choices": ["adam", "sgd"]},
            "depth": {"axis": "structure", "low": 1, "high": 200},  # every value, not a 100-point grid
            "p": {"axis": "strategy", "low": 0.0, "high": 0.5, "step": 0.1},
        },
    })
    assert spec.budget.n_trials == 2 * 200 * 6


def test_names_are_normalised() -> None:
    spec = parse_spec({
        "name": "a", "task": {"name": "t"}, "direction": "MAXIMIZE", "budget": {"n_trials": 1},
        "sampler": "TPESampler", "pruner": {"name": "Successive-Halving"},
        "trainer": {"accelerator": "CPU", "precision": 32, "devices": "AUTO"},
    })
    assert spec.direction == "maximize"
    assert spec.sampler.name == "tpe" and spec.pruner.name == "successive_halving"
    assert (spec.trainer.accelerator, spec.trainer.precision, spec.trainer.devices) == ("cpu", "32", "auto")


def test_exponent_without_dot_reads_as_a_number(tmp_path: Path) -> None:
    # Plain YAML 1.1 reads 1e-4 as a string; a study file means a learning rate.
    text = MINIMAL + "knobs:\n  lr: {axis: strategy, low: 1e-4, high: 3E-1, log: true}\n"
    knob = load_spec(_write(tmp_path, text)).knob("lr")
    assert (knob.low, knob.high) == (1e-4, 0.3)


def test_max_steps_minus_one_with_max_epochs() -> None:
    spec = parse_spec({"name": "a", "task": {"name": "t"}, "budget": {"n_trials": 1},
                       "trainer": {"max_steps": -1, "max_epochs": 3}})
    assert (spec.trainer.max_steps, spec.trainer.max_epochs) == (-1, 3)


def test_patient_pruner_wrapped_is_normalised() -> None:
    spec = parse_spec({"name": "a", "task": {"name": "t"}, "budget": {"n_trials": 1},
                       "pruner": {"name": "patient", "kwargs": {"patience": 3}}})
    assert spec.pruner == PrunerSpec("patient", {"patience": 3, "wrapped": {"name": "median", "kwargs": {}}})
    assert parse_spec(spec.to_dict()) == spec


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = MINIMAL + (
        "knobs:\n"
        "  a: &range {axis: strategy, low: 0.1, high: 1.0}\n"
        "  b: {<<: *range, high: 2.0}\n"
    )
    spec = load_spec(_write(tmp_path, text))
    assert spec.knob("a").high == 1.0 and spec.knob("b").high == 2.0 and spec.knob("b").low == 0.1
