"""The ``markov_gpt`` task: a small GPT learns a random sparse Markov source of known entropy."""

from __future__ import annotations

from collections.abc import Mapping
import functools
from typing import Any

import numpy as np

from optuna_bigmodel.tasks._gpt import GPT
from optuna_bigmodel.tasks._gpt import GPTConfig
from optuna_bigmodel.tasks._markov_data import MarkovDataModule
from optuna_bigmodel.tasks._markov_source import MarkovSource
from optuna_bigmodel.tasks._markov_source import MAX_CONTEXTS
from optuna_bigmodel.tasks._module import CrossEntropyModule
from optuna_bigmodel.tasks._optim import OPTIMIZER_SETTINGS
from optuna_bigmodel.tasks._seeding import seeded_init
from optuna_bigmodel.tasks._settings import checked_seed
from optuna_bigmodel.tasks._settings import choice_setting
from optuna_bigmodel.tasks._settings import float_setting
from optuna_bigmodel.tasks._settings import int_setting
from optuna_bigmodel.tasks._settings import knob_names
from optuna_bigmodel.tasks._settings import resolve_settings
from optuna_bigmodel.tasks._settings import ResolvedSettings
from optuna_bigmodel.tasks._task import Task
from optuna_bigmodel.tasks._task import TaskBuild


NAME = "markov_gpt"

MODEL_SETTINGS = (
    int_setting("d_model", 32, 1),
    int_setting("n_layers", 2, 0),
    int_setting("n_heads", 2, 1),
    int_setting("d_ff", None, 1),  # None: 4 * d_model
    float_setting("dropout", 0.0, 0.0, 1.0),
    *OPTIMIZER_SETTINGS,
)

DATA_SETTINGS = (
    int_setting("vocab_size", 16, 2, MAX_CONTEXTS),
    choice_setting("order", 2, (1, 2)),
    int_setting("branching", 3, 1),
    int_setting("seq_len", 32, 1),
    int_setting("n_train", 2048, 1),
    int_setting("n_val", 256, 1),
    int_setting("n_test", 256, 1),
    int_setting("batch_size", 32, 1),
    int_setting("seed", 0, 0),
)


def build_markov_gpt(
    params: Mapping[str, Any],
    model_settings: Mapping[str, Any],
    data_settings: Mapping[str, Any],
    seed: int,
) -> TaskBuild:
    """Builds one trial of ``markov_gpt``; see :data:`MARKOV_GPT`."""
    seed = checked_seed(NAME, seed)
    settings = resolve_settings(
        NAME, params, model_settings, data_settings, MODEL_SETTINGS, DATA_SETTINGS
    )
    _check_data(settings)
    source = _source(
        settings["vocab_size"], settings["order"], settings["branching"], settings["seed"]
    )
    datamodule = MarkovDataModule(
        source,
        seq_len=settings["seq_len"],
        n_train=settings["n_train"],
        n_val=settings["n_val"],
        n_test=settings["n_test"],
        batch_size=settings["batch_size"],
        data_seed=settings["seed"],
        shuffle_seed=seed,
    )
    net = seeded_init(seed, lambda: GPT(_gpt_config(settings)))
    module = CrossEntropyModule(
        net, settings["optimizer"], settings["lr"], settings["weight_decay"], settings["l1"]
    )
    return TaskBuild(module, datamodule, optimum=source.optimal_loss(settings["seq_len"]))


def _check_data(settings: ResolvedSettings) -> None:
    vocab_size, order = settings["vocab_size"], settings["order"]
    if settings["branching"] > vocab_size:
        raise settings.error("branching", f"an integer in [1, vocab_size = {vocab_size}]")
    if vocab_size**order > MAX_CONTEXTS:
        largest = int(np.floor(MAX_CONTEXTS ** (1 / order) + 1e-9))
        raise settings.error(
            "vocab_size",
            f"vocab_size**order <= {MAX_CONTEXTS}: at most {largest} for order {order}",
        )


def _gpt_config(settings: ResolvedSettings) -> GPTConfig:
    d_model, n_heads = settings["d_model"], settings["n_heads"]
    if d_model % n_heads:
        raise settings.error("n_heads", f"a divisor of d_model = {d_model}")
    d_ff = settings["d_ff"]
    return GPTConfig(
        vocab_size=settings["vocab_size"],
        block_size=settings["seq_len"],
        d_model=d_model,
        n_layers=settings["n_layers"],
        n_heads=n_heads,
        d_ff=4 * d_model if d_ff is None else d_ff,
        dropout=settings["dropout"],
    )


@functools.lru_cache(maxsize=8)
def _source(vocab_size: int, order: int, branching: int, seed: int) -> MarkovSource:
    # Every trial of a study asks for the same source; the linear solve need not run each time.
    # Child stream 0 of the data seed; the sequences of each split use the next ones.
    stream = np.random.SeedSequence(seed, spawn_key=(0,))
    return MarkovSource.random(vocab_size, order, branching, stream)


MARKOV_GPT = Task(
    name=NAME,
    build=build_markov_gpt,
    params=knob_names(MODEL_SETTINGS, DATA_SETTINGS),
    description=(
        "a small GPT learns a random sparse Markov source (synthetic tokens) whose entropy, "
        "the best reachable val_loss, is known exactly"
    ),
)
"""The ``markov_gpt`` task.

Data settings (``task.data``), with defaults: ``vocab_size`` 16, ``order`` 2 (1 or 2: how many past
tokens fix the next one's distribution), ``branching`` 3 (possible next tokens per context),
``seq_len`` 32, ``n_train`` 2048, ``n_val`` 256, ``n_test`` 256 (sequences), ``batch_size`` 32,
``seed`` 0 (fixes the source and the sequences).

Model settings (``task.model``): ``d_model`` 32, ``n_layers`` 2, ``n_heads`` 2 (must divide
``d_model``), ``d_ff`` 4 * ``d_model``, ``dropout`` 0.0, ``lr`` 3e-3, ``optimizer`` ``"adam"``
(or ``"sgd"``, ``"momentum"``, ``"adamw"``), ``weight_decay`` 0.0 (L2), ``l1`` 0.0 (L1 penalty on
the weights, added to the training loss).

Every setting but the data ``seed`` can also be a knob. ``TaskBuild.optimum`` is
``source.optimal_loss(seq_len)``: the expected loss of the true source, which no model beats
except by the sampling noise of the validation set.
"""
