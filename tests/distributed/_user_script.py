"""A user's own DDP training script, written as the README's "Your own script" section shows:
one trial of the ranked test task across two CPU processes, whichever way they are started.

    python _user_script.py STORAGE STUDY RECORD_DIR PRUNER               (Lightning's ddp launcher)
    torchrun --standalone --nproc-per-node 2 _user_script.py STORAGE STUDY RECORD_DIR PRUNER
"""

from __future__ import annotations

import sys

import optuna
import pytorch_lightning as pl

from optuna_bigmodel.callbacks import OptunaPruning
from optuna_bigmodel.study import ask_on_rank_zero, tell_on_rank_zero
from tests.distributed._ranked_task import build_ranked

PRUNERS = {
    "always": optuna.pruners.ThresholdPruner(upper=-1.0),  # every val_loss is above -1
    "never": optuna.pruners.NopPruner(),
}


def suggest(trial: optuna.trial.BaseTrial) -> dict:
    return {
        "lr": trial.suggest_float("lr", 0.01, 0.5, log=True),
        "width": trial.suggest_categorical("width", [0, 4]),
    }


def main(storage: str, study_name: str, record_dir: str, pruner: str) -> None:
    def ask() -> optuna.Trial:  # runs on global rank 0 only
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=PRUNERS[pruner])
        return study.ask()

    trial, params = ask_on_rank_zero(ask, suggest)
    built = build_ranked(params, {}, {"record_dir": record_dir}, seed=0)
    pruning = OptunaPruning(trial, monitor="val_loss")
    trainer = pl.Trainer(
        strategy="ddp", devices=2, accelerator="cpu", max_steps=8, val_check_interval=4,
        check_val_every_n_epoch=None, callbacks=[pruning], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(built.module, datamodule=built.datamodule)
    tell_on_rank_zero(trial, pruning)


if __name__ == "__main__":
    main(*sys.argv[1:])
