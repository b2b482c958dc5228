"""The outer loop: studies launched from specs, their storage, workers and samplers."""

from optuna_bigmodel.study._distributed import (
    ask_on_rank_zero,
    is_global_rank_zero,
    tell_on_rank_zero,
)
from optuna_bigmodel.study._exhaustive import queue_grid
from optuna_bigmodel.study._loop import TrialFailure, TrialsKeepFailing, run_trials
from optuna_bigmodel.study._objective import LightningObjective
from optuna_bigmodel.study._pruners import make_pruner
from optuna_bigmodel.study._runner import WarmStart, run_study, run_worker
from optuna_bigmodel.study._samplers import make_sampler
from optuna_bigmodel.study._seeds import derived_seed
from optuna_bigmodel.study._storage import default_storage_url, open_storage
from optuna_bigmodel.study._warm_start import warm_start
from optuna_bigmodel.study._workers import WorkerFailed, launch_workers

__all__ = [
    "LightningObjective",
    "TrialFailure",
    "TrialsKeepFailing",
    "WarmStart",
    "WorkerFailed",
    "ask_on_rank_zero",
    "default_storage_url",
    "derived_seed",
    "is_global_rank_zero",
    "launch_workers",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "queue_grid",
    "run_study",
    "run_trials",
    "run_worker",
    "tell_on_rank_zero",
    "warm_start",
]
