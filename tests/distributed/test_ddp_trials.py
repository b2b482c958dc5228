"""Trials of the study runner on two CPU processes (gloo), with `ddp` (the runner starts the ranks)
and `ddp_spawn` (Lightning spawns them), against one SQLite storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from optuna_bigmodel import BadInputError, parse_spec, run_study
from optuna_bigmodel.testing import build_tiny
from tests.conftest import tiny_spec
from tests.distributed._ranked_task import read_records
from tests.distributed._specs import ALWAYS, ranked_spec

STRATEGIES = ["ddp", "ddp_spawn"]


def _run(tmp_path: Path, **fields):
    return run_study(parse_spec(ranked_spec(tmp_path, **fields)), progress=False)


def _rank_means(tmp_path: Path) -> dict[int, float]:
    """The mean over both ranks of the value each logged, by step."""
    records = [read_records(str(tmp_path), rank) for rank in (0, 1)]
    per_rank = [{e["step"]: e["value"] for e in entries if "step" in e} for entries in records]
    assert per_rank[0].keys() == per_rank[1].keys()
    return {step: (per_rank[0][step] + per_rank[1][step]) / 2 for step in per_rank[0]}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_pruner_that_always_prunes_ends_the_trial_pruned_at_the_first_validation(
    tmp_path: Path, strategy: str
) -> None:
    study = _run(tmp_path, strategy=strategy, pruner=ALWAYS)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["pruned_at_step"] == 4 and trial.user_attrs["pruned_reason"] == "pruner"
    assert list(trial.intermediate_values) == [4]
    # Both ranks stopped at the same step: neither validated again after step 4.
    assert _rank_means(tmp_path).keys() == {4}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_pruner_that_never_prunes_completes_with_the_mean_over_ranks(
    tmp_path: Path, strategy: str
) -> None:
    study = _run(tmp_path, strategy=strategy)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE
    means = _rank_means(tmp_path)
    # The ranks disagree on purpose (rank 1 adds 1.0); what is stored is their mean, once per step.
    assert trial.intermediate_values == pytest.approx(means)
    assert trial.value == pytest.approx(means[8])
    assert trial.user_attrs["n_devices"] == 2
    # The parameters were sampled once (one trial in the storage) and every rank built with them.
    built_with = [read_records(str(tmp_path), rank)[0] for rank in (0, 1)]
    assert built_with[0]["params"] == built_with[1]["params"] == trial.params
    assert built_with[0]["pid"] != built_with[1]["pid"]


def test_a_metric_missing_on_one_rank_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    missing = r"'val_loss' was not logged during validation on global rank\(s\) 1 of 2"
    with pytest.raises(BadInputError, match=missing):
        _run(tmp_path, missing_on_rank=1)


def test_the_tiny_tasks_data_keeps_no_generator_and_shuffles_the_same_each_time() -> None:
    # ddp_spawn sends the datamodule to its processes through torch.multiprocessing, which fails
    # to rebuild a torch.Generator there; the loader makes its own, from the seed.
    data = build_tiny({}, {}, {}, seed=3).datamodule
    assert not any(isinstance(value, torch.Generator) for value in vars(data).values())
    first, again = (next(iter(data.train_dataloader()))[0] for _ in range(2))
    assert torch.equal(first, again)


def test_a_tiny_task_study_runs_with_ddp_spawn_on_two_cpu_processes(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path, budget={"n_trials": 1})
    spec["trainer"].update(devices=2, strategy="ddp_spawn")
    (trial,) = run_study(parse_spec(spec), progress=False).trials
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["n_devices"] == 2 and sorted(trial.intermediate_values) == [4, 8]
