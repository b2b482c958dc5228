"""The markov_gpt task: its settings, its GPT, its data and real (tiny) training runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.tasks import resolve_task
from optuna_bigmodel.tasks import TaskBuild
from optuna_bigmodel.tasks._gpt import GPT
from optuna_bigmodel.tasks._gpt import GPTConfig


# A source and model small enough to learn in about a second on one CPU core.
SMALL_DATA = {
    "vocab_size": 8, "order": 2, "branching": 2, "seq_len": 16, "n_train": 512, "n_val": 600,
    "n_test": 64,
}


def _build(params: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
           model: dict[str, Any] | None = None, seed: int = 0) -> TaskBuild:
    return resolve_task("markov_gpt").build(params or {}, model or {}, data or SMALL_DATA, seed)


def _trainer(max_steps: int, **kwargs: Any) -> pl.Trainer:
    # As the study runner builds it: validation every so many steps, across epochs.
    return pl.Trainer(
        max_steps=max_steps, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, deterministic=True, check_val_every_n_epoch=None, **kwargs,
    )


def _val_loss(built: TaskBuild) -> float:
    return _trainer(1).validate(built.module, datamodule=built.datamodule, verbose=False)[0][
        "val_loss"
    ]


def test_defaults() -> None:
    built = resolve_task("markov_gpt").build({}, {}, {}, 0)
    config = built.module.net.config
    assert (config.vocab_size, config.block_size) == (16, 32)
    assert (config.d_model, config.n_layers, config.n_heads, config.d_ff) == (32, 2, 2, 128)
    assert config.dropout == 0.0
    data = built.datamodule
    assert (data.source.order, data.batch_size) == (2, 32)
    assert data.sizes == {"train": 2048, "val": 256, "test": 256}
    assert built.module.hparams == {"optimizer": "adam", "lr": 3e-3, "weight_decay": 0.0, "l1": 0.0}
    assert built.optimum == pytest.approx(data.source.optimal_loss(32))
    assert 0 < built.optimum < np.log(3)  # at most 3 equally likely successors


def test_knobs_override_study_settings() -> None:
    built = _build(
        {"n_layers": 1, "batch_size": 8, "d_model": 16, "optimizer": "sgd"},
        model={"n_layers": 3, "d_ff": 20, "lr": 0.5},
    )
    config = built.module.net.config
    assert (config.n_layers, config.d_model, config.d_ff) == (1, 16, 20)
    assert built.datamodule.batch_size == 8
    assert built.module.hparams["optimizer"] == "sgd"
    assert built.module.hparams["lr"] == 0.5
    assert isinstance(built.module.configure_optimizers(), torch.optim.SGD)


@pytest.mark.parametrize(
    "params, model, data, expected",
    [
        ({"n_layer": 1}, {}, {}, ["unknown knob 'n_layer'", "did you mean 'n_layers'", "d_model"]),
        ({"seed": 1}, {}, {}, ["unknown knob 'seed'"]),
        ({}, {"heads": 1}, {}, ["unknown task.model setting 'heads'", "n_heads"]),
        ({}, {}, {"n_vals": 1}, ["unknown task.data setting 'n_vals'", "n_val"]),
        ({"optimizer": "foo"}, {}, {}, ["'optimizer' = 'foo'", "'sgd', 'momentum', 'adam'"]),
        ({"n_heads": 3}, {}, {}, ["knob 'n_heads' = 3", "a divisor of d_model = 32"]),
        ({}, {"n_heads": 3, "d_model": 12}, {}, None),  # fine: 3 divides 12
        ({"dropout": 1.0}, {}, {}, ["knob 'dropout' = 1.0", "< 1.0"]),
        ({"lr": -1.0}, {}, {}, ["knob 'lr' = -1.0", "> 0.0"]),
        ({}, {}, {"order": 3}, ["task.data setting 'order' = 3", "one of 1, 2"]),
        ({}, {}, {"branching": 17}, ["'branching' = 17", "vocab_size = 16"]),
        ({}, {}, {"vocab_size": 65}, ["'vocab_size' = 65", "at most 64 for order 2"]),
        ({}, {}, {"seq_len": 0}, ["'seq_len' = 0", "an integer >= 1"]),
        ({"batch_size": 0}, {}, {}, ["knob 'batch_size' = 0"]),
    ],
)
def test_bad_settings(
    params: dict[str, Any], model: dict[str, Any], data: dict[str, Any], expected: list[str] | None
) -> None:
    build = resolve_task("markov_gpt").build
    data = {**data, "n_train": 8}  # keeps the valid case cheap
    if expected is None:
        build(params, model, data, 0)
        return
    with pytest.raises(BadInputError) as error:
        build(params, model, data, 0)
    assert str(error.value).startswith("task 'markov_gpt': ")
    for part in expected:
        assert part in str(error.value)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_trial_seed(seed: Any) -> None:
    with pytest.raises(BadInputError, match="seed"):
        _build(seed=seed)


def test_gpt_is_causal() -> None:
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=8, block_size=10, d_model=16, n_heads=4)).eval()
    tokens = torch.randint(0, 8, (2, 10))
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 8
    logits, logits_changed = gpt(tokens), gpt(changed)
    assert logits.shape == (2, 10, 8)
    torch.testing.assert_close(logits[:, :6], logits_changed[:, :6])
    assert not torch.allclose(logits[:, 6:], logits_changed[:, 6:])


def test_gpt_config_checks_heads() -> None:
    with pytest.raises(AssertionError, match="n_heads"):
        GPTConfig(vocab_size=4, block_size=4, d_model=10, n_heads=3)


def test_weights_depend_on_the_trial_seed_only() -> None:
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = _build(seed=7).module.state_dict()
    # The build draws from a private generator: the caller's random stream is untouched.
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(999)
    again = _build(seed=7).module.state_dict()
    other = _build(seed=8).module.state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_data_depends_on_the_data_seed_only() -> None:
    first, again = _build(seed=1).datamodule, _build(seed=2).datamodule
    other = _build(data={**SMALL_DATA, "seed": 1}).datamodule
    bigger = _build(data={**SMALL_DATA, "n_train": 1024}).datamodule
    for module in (first, again, other, bigger):
        module.setup("fit")
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(first.sequences[split], again.sequences[split])
        assert not np.array_equal(first.sequences[split], other.sequences[split])
    # More training data leaves the evaluation data as it was.
    np.testing.assert_array_equal(first.sequences["val"], bigger.sequences["val"])
    np.testing.assert_array_equal(first.sequences["train"], bigger.sequences["train"][:512])


def test_batches_are_shifted_sequences() -> None:
    data = _build({"batch_size": 4}).datamodule
    data.setup("fit")
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    torch.testing.assert_close(x[:, 1:], y[:, :-1])
    assert len(data.val_dataloader()) == 2  # 600 sequences in batches of 512: a short last one


def test_val_loss_is_the_mean_cross_entropy_over_all_validation_tokens() -> None:
    built = _build()
    built.datamodule.setup("validate")
    seqs = torch.from_numpy(built.datamodule.sequences["val"])
    with torch.no_grad():
        logits = built.module.net.eval()(seqs[:, :-1])
        targets = seqs[:, 1:].reshape(-1)
        expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 8), targets)
    assert _val_loss(built) == pytest.approx(float(expected), rel=1e-5)


def test_training_approaches_but_does_not_beat_the_optimum() -> None:
    built = _build({"lr": 1e-2})
    before = _val_loss(built)
    trainer = _trainer(150, val_check_interval=50)
    trainer.fit(built.module, datamodule=built.datamodule)
    after = float(trainer.callback_metrics["val_loss"])
    assert {"train_loss", "val_loss", "val_acc"} <= set(trainer.callback_metrics)
    assert after < before - 1.0
    # A model beats the true source on the validation set only by its sampling noise.
    per_sequence = built.datamodule.source.nll(built.datamodule.sequences["val"]).mean(axis=1)
    noise = per_sequence.std() / np.sqrt(per_sequence.size)
    assert after > built.optimum - 4 * noise
    assert after > built.datamodule.bayes_loss("val") - 4 * noise
    test_metrics = trainer.test(built.module, datamodule=built.datamodule, verbose=False)[0]
    assert {"test_loss", "test_acc"} <= set(test_metrics)


def _fit_val_loss(params: dict[str, Any], seed: int, steps: int = 15) -> float:
    built = _build(params, seed=seed)
    trainer = _trainer(steps, val_check_interval=steps)
    trainer.fit(built.module, datamodule=built.datamodule)
    return float(trainer.callback_metrics["val_loss"])


def test_build_and_fit_twice_gives_the_same_val_loss() -> None:
    torch.manual_seed(1)
    first = _fit_val_loss({"batch_size": 16}, seed=3)
    torch.manual_seed(2)  # without dropout, the global random state plays no part
    assert _fit_val_loss({"batch_size": 16}, seed=3) == first
    assert _fit_val_loss({"batch_size": 16}, seed=4) != first


def test_with_dropout_the_runner_seeding_makes_runs_repeat() -> None:
    params = {"dropout": 0.2, "batch_size": 16}
    pl.seed_everything(3, verbose=False)
    first = _fit_val_loss(params, seed=3)
    pl.seed_everything(3, verbose=False)
    assert _fit_val_loss(params, seed=3) == first


def test_the_l1_setting_adds_its_penalty_to_the_training_loss() -> None:
    import torch

    from optuna_bigmodel.structure import weight_parameters
    from optuna_bigmodel.tasks import resolve_task

    settings = ({"d_model": 8, "n_layers": 1}, {"n_train": 16, "seq_len": 4})
    plain = resolve_task("markov_gpt").build({}, *settings, 0)
    penalised = resolve_task("markov_gpt").build({"l1": 0.01}, *settings, 0)
    plain.datamodule.setup()
    batch = next(iter(plain.datamodule.train_dataloader()))
    penalty = 0.01 * sum(p.abs().sum() for p in weight_parameters(plain.module))
    penalised.module.log = plain.module.log = lambda *args, **kwargs: None  # no trainer attached
    with torch.no_grad():
        got = penalised.module.training_step(batch, 0) - plain.module.training_step(batch, 0)
    torch.testing.assert_close(got, penalty)
