"""A user's own script with OptunaPruning under `strategy="ddp"`, started by Lightning's launcher
(which re-runs the script for rank 1) and by torchrun (which starts both ranks at once): one
trial, asked on rank 0 only, the same parameters on both ranks, ended by rank 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.distributed._ranked_task import read_records

SCRIPT = str(Path(__file__).with_name("_user_script.py"))
LAUNCHERS = {
    "lightning": [sys.executable, SCRIPT],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc-per-node", "2", SCRIPT],
}  # fmt: skip


@pytest.mark.parametrize(
    "launcher, pruner, state",
    [("lightning", "never", TrialState.COMPLETE), ("torchrun", "always", TrialState.PRUNED)],
)
def test_a_users_ddp_script_runs_one_trial_with_the_same_parameters_on_both_ranks(
    tmp_path: Path, launcher: str, pruner: str, state: TrialState
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="own", storage=storage)
    command = LAUNCHERS[launcher] + [storage, "own", str(tmp_path), pruner]
    subprocess.run(command, check=True, timeout=240)

    (trial,) = optuna.load_study(study_name="own", storage=storage).trials
    assert trial.state == state
    records = [read_records(str(tmp_path), rank) for rank in (0, 1)]
    assert records[0][0]["params"] == records[1][0]["params"] == trial.params
    values = [{e["step"]: e["value"] for e in rank if "step" in e} for rank in records]
    means = {step: (values[0][step] + values[1][step]) / 2 for step in values[0]}
    assert trial.intermediate_values == pytest.approx(means)
    if state == TrialState.COMPLETE:
        assert list(means) == [4, 8] and trial.value == pytest.approx(means[8])
    else:
        assert list(means) == [4] and trial.user_attrs["pruned_at_step"] == 4
