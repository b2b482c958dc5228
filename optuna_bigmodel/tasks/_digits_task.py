"""The ``digits_mlp`` task: an MLP classifies scikit-learn's 8x8 hand-written digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna_bigmodel.tasks._digits_data import DigitsDataModule
from optuna_bigmodel.tasks._digits_data import N_CLASSES
from optuna_bigmodel.tasks._digits_data import N_PIXELS
from optuna_bigmodel.tasks._digits_data import require_sklearn
from optuna_bigmodel.tasks._mlp import make_mlp
from optuna_bigmodel.tasks._module import CrossEntropyModule
from optuna_bigmodel.tasks._optim import OPTIMIZER_SETTINGS
from optuna_bigmodel.tasks._seeding import seeded_init
from optuna_bigmodel.tasks._settings import checked_seed
from optuna_bigmodel.tasks._settings import float_setting
from optuna_bigmodel.tasks._settings import int_setting
from optuna_bigmodel.tasks._settings import knob_names
from optuna_bigmodel.tasks._settings import resolve_settings
from optuna_bigmodel.tasks._task import Task
from optuna_bigmodel.tasks._task import TaskBuild


NAME = "digits_mlp"

MODEL_SETTINGS = (
    int_setting("hidden", 64, 1),
    int_setting("depth", 2, 0),
    float_setting("dropout", 0.0, 0.0, 1.0),
    *OPTIMIZER_SETTINGS,
)

DATA_SETTINGS = (
    int_setting("batch_size", 64, 1),
    int_setting("seed", 0, 0, 2**32 - 1),  # scikit-learn's random_state takes 0..2**32-1
)


def build_digits_mlp(
    params: Mapping[str, Any],
    model_settings: Mapping[str, Any],
    data_settings: Mapping[str, Any],
    seed: int,
) -> TaskBuild:
    """Builds one trial of ``digits_mlp``; see :data:`DIGITS_MLP`."""
    seed = checked_seed(NAME, seed)
    settings = resolve_settings(
        NAME, params, model_settings, data_settings, MODEL_SETTINGS, DATA_SETTINGS
    )
    require_sklearn()  # fail now, not in the middle of fit
    datamodule = DigitsDataModule(settings["batch_size"], settings["seed"], shuffle_seed=seed)
    net = seeded_init(
        seed,
        lambda: make_mlp(
            N_PIXELS, N_CLASSES, settings["hidden"], settings["depth"], settings["dropout"]
        ),
    )
    module = CrossEntropyModule(
        net, settings["optimizer"], settings["lr"], settings["weight_decay"], settings["l1"]
    )
    return TaskBuild(module, datamodule, optimum=None)


DIGITS_MLP = Task(
    name=NAME,
    build=build_digits_mlp,
    params=knob_names(MODEL_SETTINGS, DATA_SETTINGS),
    description="an MLP classifies the 8x8 hand-written digits shipped with scikit-learn",
)
"""The ``digits_mlp`` task (needs the ``digits`` extra: scikit-learn).

Data settings (``task.data``), with defaults: ``batch_size`` 64, ``seed`` 0 (fixes the 1197 / 300 /
300 train / val / test split, stratified by class). Model settings (``task.model``): ``hidden`` 64,
``depth`` 2 (hidden layers; 0 gives a linear classifier), ``dropout`` 0.0, ``lr`` 3e-3,
``optimizer`` ``"adam"`` (or ``"sgd"``, ``"momentum"``, ``"adamw"``), ``weight_decay`` 0.0 (L2), ``l1`` 0.0 (L1 penalty on
the weights, added to the training loss).
Every setting but the data ``seed`` can also be a knob. The best loss is unknown:
``TaskBuild.optimum`` is None. The module also logs ``val_acc`` and ``test_acc``.
"""
