"""A tiny built-in task and a trainer for the inner-loop tests (a few seconds per run on CPU)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from optuna_bigmodel.tasks import resolve_task
from optuna_bigmodel.tasks import TaskBuild


MODEL = {"d_model": 16, "n_layers": 2, "n_heads": 2, "d_ff": 32, "optimizer": "sgd"}
DATA = {"vocab_size": 8, "seq_len": 8, "n_train": 256, "n_val": 64, "batch_size": 16}


def tiny_gpt(seed: int = 0, **model: Any) -> TaskBuild:
    return resolve_task("markov_gpt").build({}, {**MODEL, **model}, DATA, seed)


def fit(build: TaskBuild, callbacks: list[pl.Callback], steps: int = 30) -> pl.Trainer:
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        val_check_interval=steps, check_val_every_n_epoch=None, callbacks=callbacks,
    )  # fmt: skip
    trainer.fit(build.module, datamodule=build.datamodule)
    return trainer
