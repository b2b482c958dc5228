"""The digits_mlp task: the shipped digits, their split, the MLP and real (tiny) training runs."""

from __future__ import annotations

import ast
from pathlib import Path
import sys
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks import resolve_task
from optuna_bigmodel.tasks import TaskBuild
from optuna_bigmodel.tasks._digits_data import load_digits_arrays
from optuna_bigmodel.tasks._digits_data import split_digits


pytest.importorskip("sklearn")

TASKS_DIR = Path(__file__).resolve().parents[2] / "optuna_bigmodel" / "tasks"


def _build(params: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
           data: dict[str, Any] | None = None, seed: int = 0) -> TaskBuild:
    return resolve_task("digits_mlp").build(params or {}, model or {}, data or {}, seed)


def _trainer(max_steps: int, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=True, check_val_every_n_epoch=None, **kwargs,
    )


def test_images_are_scaled_to_unit_range() -> None:
    images, labels = load_digits_arrays()
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(labels.tolist()) == set(range(10))


def test_split_sizes_disjointness_and_class_balance() -> None:
    _, labels = load_digits_arrays()
    split = split_digits(labels, seed=0)
    assert {k: v.size for k, v in split.items()} == {"train": 1197, "val": 300, "test": 300}
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(1797))
    whole = np.bincount(labels, minlength=10) / labels.size
    for part in ("val", "test"):
        share = np.bincount(labels[split[part]], minlength=10) / 300
        np.testing.assert_allclose(share, whole, atol=1 / 300 + 1e-9)  # off by one image at most


def test_split_depends_on_the_data_seed_only() -> None:
    _, labels = load_digits_arrays()
    first, again, other = split_digits(labels, 0), split_digits(labels, 0), split_digits(labels, 1)
    for part in first:
        np.testing.assert_array_equal(first[part], again[part])
        assert not np.array_equal(first[part], other[part])
    a, b = _build(seed=1).datamodule, _build(seed=2).datamodule
    a.setup("fit")
    b.setup("fit")
    assert all(np.array_equal(a.indices[k], b.indices[k]) for k in a.indices)


def test_defaults_and_overrides() -> None:
    built = _build()
    linears = [m for m in built.module.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 64), (64, 64), (64, 10)]
    assert built.datamodule.batch_size == 64 and built.optimum is None
    assert built.module.hparams == {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0, "l1": 0.0}
    built = _build({"depth": 0, "batch_size": 16}, model={"depth": 3}, data={"batch_size": 8})
    assert len(built.module.net) == 1 and built.datamodule.batch_size == 16


@pytest.mark.parametrize(
    "params, model, data, expected",
    [
        ({"width": 3}, {}, {}, ["unknown knob 'width'", "accepted: batch_size, depth, dropout"]),
        ({}, {"hidden": 0}, {}, ["task.model setting 'hidden' = 0", "an integer >= 1"]),
        ({"depth": -1}, {}, {}, ["knob 'depth' = -1", "an integer >= 0"]),
        ({}, {}, {"batch_size": 0}, ["task.data setting 'batch_size' = 0"]),
        ({}, {}, {"seed": -2}, ["task.data setting 'seed' = -2"]),
        ({"optimizer": "Adam"}, {}, {}, ["'optimizer' = 'Adam'", "'adam'"]),
        ({}, {}, {"n_val": 3}, ["unknown task.data setting 'n_val'", "batch_size, seed"]),
    ],
)
def test_bad_settings(
    params: dict[str, Any], model: dict[str, Any], data: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(BadInputError) as error:
        _build(params, model, data)
    assert str(error.value).startswith("task 'digits_mlp': ")
    for part in expected:
        assert part in str(error.value)


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(BadInputError, match=r"pip install optuna-bigmodel\[digits\]"):
        _build()


def test_the_package_imports_scikit_learn_only_inside_functions() -> None:
    for path in TASKS_DIR.glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sklearn") for a in node.names), path.name
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("sklearn"), path.name


def test_training_learns_to_classify() -> None:
    built = _build({"lr": 1e-2})
    before = _trainer(1).validate(built.module, datamodule=built.datamodule, verbose=False)[0]
    trainer = _trainer(60, val_check_interval=30)
    trainer.fit(built.module, datamodule=built.datamodule)
    after = trainer.callback_metrics
    assert {"train_loss", "val_loss", "val_acc"} <= set(after)
    assert float(after["val_loss"]) < before["val_loss"] - 1.0
    assert float(after["val_acc"]) > 0.5  # chance is 0.1
    test_metrics = trainer.test(built.module, datamodule=built.datamodule, verbose=False)[0]
    assert test_metrics["test_acc"] > 0.5


def test_build_and_fit_twice_gives_the_same_val_loss() -> None:
    def fit_once(global_seed: int) -> float:
        torch.manual_seed(global_seed)  # plays no part without dropout
        built = _build({"batch_size": 32}, seed=5)
        trainer = _trainer(10, val_check_interval=10)
        trainer.fit(built.module, datamodule=built.datamodule)
        return float(trainer.callback_metrics["val_loss"])

    assert fit_once(1) == fit_once(2)
