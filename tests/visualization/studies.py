"""Small real studies for the report tests: the tiny task trained for real, with the `learned` and
`structure` records that learned knobs and gates write, set by hand in the format they use."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest

from optuna_bigmodel import parse_spec, resolve_task, run_study
from optuna_bigmodel.study import LightningObjective, TrialsKeepFailing
from tests.conftest import tiny_spec

MAX_STEPS = 8
OPTIMUM = 0.01  # the noise variance of the tiny task's data: its best achievable val_loss
GATES = ("block0", "block1", "head0")


def learned_record(number: int) -> dict[str, Any]:
    """An `lr` that grows by 0.01 per step from 0.1 + 0.01 * number, recorded every 2 steps."""
    start = 0.1 + 0.01 * number
    trajectory = [[step, start + 0.01 * step] for step in range(0, MAX_STEPS + 1, 2)]
    return {"lr": {"final": trajectory[-1][1], "trajectory": trajectory}}


def structure_record(number: int) -> dict[str, Any]:
    """Gate g of trial n ends at keep-probability (g + n) % 4 / 4, kept when that is >= 0.5."""
    gates = {}
    for g, name in enumerate(GATES):
        final = ((g + number) % 4) / 4
        trajectory = [[0, 0.5], [MAX_STEPS // 2, (0.5 + final) / 2], [MAX_STEPS, final]]
        gates[name] = {"final": final, "kept": final >= 0.5, "trajectory": trajectory}
    kept = sum(gate["kept"] for gate in gates.values())
    return {"gates": gates, "params_before": 3000, "params_after": 1000 * kept}


def tiny_real_study(tmp_path: Path, name: str = "tiny", **fields: Any) -> optuna.Study:
    """A grid of 4 real tiny-task trials: lr in {0.05, 0.3}, offset in {0, 5}.

    The threshold pruner stops the two trials with offset 5 at their first validation (step 2);
    the other two train for the full 8 steps, reporting at steps 2, 4, 6 and 8.
    """
    data = tiny_spec(
        tmp_path,
        name=name,
        task={"name": "optuna_bigmodel.testing:tiny_task", "data": {"optimum": OPTIMUM}},
        knobs={
            "lr": {"axis": "strategy", "choices": [0.05, 0.3]},
            "offset": {"axis": "structure", "choices": [0.0, 5.0]},
        },
        sampler={"name": "grid"},
        pruner={"name": "threshold", "kwargs": {"upper": 4.0}},
        trainer={"max_steps": MAX_STEPS, "val_check_interval": 2, "accelerator": "cpu",
                 "progress_bar": False},
        budget={"n_trials": 4},
    )  # fmt: skip
    data.update(fields)
    spec = parse_spec(data)
    inner = LightningObjective(spec, resolve_task(spec.task.name))

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("learned", learned_record(trial.number))
        trial.set_user_attr("structure", structure_record(trial.number))
        return inner(trial)

    return run_study(spec, objective=objective, progress=False)


def in_memory_copy(study: optuna.Study) -> optuna.Study:
    """A copy of a study in memory, for tests that add trials to it."""
    storage = optuna.storages.InMemoryStorage()
    optuna.copy_study(
        from_study_name=study.study_name, from_storage=study._storage, to_storage=storage
    )
    return optuna.load_study(study_name=study.study_name, storage=storage)


def trials_by_state(study: optuna.Study, state: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state.name == state]


def failed_only_study(tmp_path: Path) -> optuna.Study:
    """Real tiny-task trials that all fail at their first training step.

    Failed trials do not use up the budget, so the runner tries until it gives up after three
    failures in a row.
    """
    task = {"name": "optuna_bigmodel.testing:tiny_task", "model": {"fail": True}}
    spec = parse_spec(tiny_spec(tmp_path, name="failing", task=task, budget={"n_trials": 2}))
    with pytest.raises(TrialsKeepFailing):
        run_study(spec, progress=False)
    return optuna.load_study(study_name="failing", storage=spec.storage)


def multi_objective_study() -> optuna.Study:
    """Six trials of two objectives (error, size) made by Optuna itself, with `learned` records."""
    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["error", "size"])

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        width = trial.suggest_int("width", 1, 8)
        lr = trial.suggest_float("lr", 0.01, 1.0, log=True)
        trial.set_user_attr("learned", learned_record(trial.number))
        trial.set_user_attr("compute_steps", 10 * width)
        return abs(lr - 0.1) + 1.0 / width, float(width)

    study.optimize(objective, n_trials=6)
    return study
