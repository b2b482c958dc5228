"""Runs the four methods on one task and seed as real studies, and reads back what each trial cost
and scored."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import time
from typing import Any
import warnings

import optuna
import torch

from benchmarks.quality._setup import METHODS
from benchmarks.quality._setup import Sizes
from benchmarks.quality._setup import study_file
from benchmarks.quality._setup import TaskSetup
from optuna_bigmodel import run_study
from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.study._compute import trial_compute_steps


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial, as the benchmark reads it."""

    number: int
    state: str
    compute: int  # training steps (search batches included), 0 for an over-budget structure
    val: float | None  # the study's value: final val_loss of a complete trial
    test: float | None  # test_loss of a complete trial
    params: dict[str, Any]
    learned: dict[str, Any] | None  # ours: final learned values and structure size


@dataclass(frozen=True)
class MethodRun:
    """All trials of one method on one task and seed, in the order they ran."""

    task: str
    method: str
    seed: int
    optimum: float | None
    seconds: float
    trials: list[TrialRecord]

    @property
    def compute(self) -> int:
        return sum(t.compute for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MethodRun:
        trials = [TrialRecord(**t) for t in data["trials"]]
        return cls(**{**data, "trials": trials})


def run_task_seed(
    setup: TaskSetup, sizes: Sizes, seed: int, folder: str, methods: tuple[str, ...] = METHODS
) -> list[MethodRun]:
    """The grid first (its compute sets random's and TPE's budgets), then the others; ``methods``
    without the grid runs only ``ours`` (it needs no budget from the grid)."""
    _quiet()
    if "grid" not in methods:
        assert set(methods) <= {"ours"}, "random and TPE take their budget from the grid's run"
        return [_run(setup, sizes, seed, folder, method, None) for method in methods]
    runs = [_run(setup, sizes, seed, folder, "grid", None)]
    share = round(sizes.outer_share * runs[0].compute)
    runs += [_run(setup, sizes, seed, folder, method, share) for method in methods if method != "grid"]
    return runs


def _run(
    setup: TaskSetup, sizes: Sizes, seed: int, folder: str, method: str, compute: int | None
) -> MethodRun:
    spec = parse_spec(study_file(method, setup, sizes, seed, folder, compute))
    Path(folder, f"{spec.name}.db").unlink(missing_ok=True)  # a fresh study, never a resumed one
    start = time.perf_counter()
    study = run_study(spec, progress=False)
    seconds = time.perf_counter() - start
    trials = [_record(t) for t in study.trials if t.state.is_finished()]
    optimum = next((t.user_attrs["optimum"] for t in study.trials if "optimum" in t.user_attrs), None)
    return MethodRun(setup.name, method, seed, optimum, seconds, trials)


def _record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    test = trial.user_attrs.get("test", {}).get("test_loss")
    learned = None
    if "learned" in trial.user_attrs or "structure" in trial.user_attrs:
        values = {k: v["final"] for k, v in trial.user_attrs.get("learned", {}).items()}
        structure = trial.user_attrs.get("structure", {})
        size = structure.get("params_after", 0) / max(1, structure.get("params_before", 1))
        learned = {**values, "size": round(size, 3)}
    val = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
    params = {k: v for k, v in trial.params.items() if "." not in k}  # gate knobs left out
    return TrialRecord(trial.number, trial.state.name, trial_compute_steps(trial), val, test,
                       params, learned)  # fmt: skip


def _quiet() -> None:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna_bigmodel").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
