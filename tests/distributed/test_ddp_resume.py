"""A retried trial that trains on two rank processes resumes from the checkpoint of the trial it
retries, like a single-process one."""

from __future__ import annotations

from pathlib import Path
import signal

import optuna
import pytest
from optuna.trial import TrialState

from optuna_bigmodel.spec import parse_spec
from optuna_bigmodel.study import LightningObjective, run_trials
from optuna_bigmodel.study._checkpoints import checkpoint_dir
from optuna_bigmodel.testing import tiny_task
from tests.conftest import tiny_spec
from tests.study.test_checkpoints import DISTRIBUTIONS, PARAMS, _fit, _SignalAt

pytestmark = pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint")


def test_a_retry_on_two_ranks_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    spec["trainer"].update(devices=2, strategy="ddp")
    storage = spec["storage"]
    study = optuna.create_study(storage=storage, study_name="tiny")
    study.add_trial(optuna.create_trial(
        state=TrialState.FAIL, params=PARAMS, distributions=DISTRIBUTIONS,
        user_attrs={"seed": 123}, intermediate_values={4: 5.0},
    ))  # fmt: skip
    folder = Path(checkpoint_dir(str(tmp_path / "runs"), "tiny", 0))
    with pytest.raises(SystemExit):  # trial 0's run (8 steps, val every 4) stopped at step 6
        _fit(folder, optuna.trial.FixedTrial(PARAMS, 0), _SignalAt(5, signal.SIGTERM))
    study.enqueue_trial(PARAMS, user_attrs={"retry_of": 0})

    objective = LightningObjective(parse_spec(spec), tiny_task)
    run_trials(study, objective, exhaustive=False, n_trials=1, timeout=None)
    retry = study.trials[1]
    assert retry.state == TrialState.COMPLETE, retry.user_attrs
    assert retry.user_attrs["n_devices"] == 2
    assert retry.user_attrs["resumed_from_trial"] == 0 and retry.user_attrs["resumed_at_step"] == 6
    assert retry.user_attrs["trained_steps"] == 2
    assert sorted(retry.intermediate_values) == [4, 8] and retry.intermediate_values[4] == 5.0
