"""Trials of the study runner on two CPU processes (gloo), with `ddp` (the runner starts the ranks)
and `ddp_spawn` (Lightning spawns them), against one SQLite storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from optuna_bigmodel import BadInputError, parse_spec, run_study
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
