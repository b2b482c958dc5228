"""Workers that die or are stopped mid-trial: nothing is lost, the trial runs again from its
checkpoint.

Real processes (`python -m optuna_bigmodel run`), real signals, a real SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import FrozenTrial, TrialState

from optuna_bigmodel.study import open_storage
from optuna_bigmodel.study._checkpoints import CHECKPOINT_KEY, checkpoints_root, latest_checkpoint

SLOW = {"axis": "strategy", "mode": "fixed", "value": 0.05}  # seconds per step: ~2 s a trial


def _spec(write_spec) -> Path:  # type: ignore[no-untyped-def]
    knobs = {
        "lr": {"axis": "strategy", "low": 0.01, "high": 0.5, "log": True},
        "step_sleep": SLOW,
    }
    return write_spec(knobs=knobs, budget={"n_trials": 3}, trainer={
        "max_steps": 40, "val_check_interval": 20, "accelerator": "cpu", "progress_bar": False,
    })  # fmt: skip


def _start(spec: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_bigmodel", "run", str(spec), "--quiet", "--no-plot"],
        env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _study(tmp_path: Path) -> optuna.Study:
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat=False)
    return optuna.load_study(study_name="tiny", storage=storage)


def _checkpoints(tmp_path: Path) -> Path:
    return Path(checkpoints_root(str(tmp_path / "runs"), "tiny"))


def _wait_for_first_checkpoint_of_second_trial(
    tmp_path: Path, process: subprocess.Popen[str]
) -> None:
    """Returns once trial 1 has saved at its first validation (step 20 of 40)."""
    path = _checkpoints(tmp_path) / "trial-1" / "step-20.ckpt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if path.exists():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the second trial never saved a checkpoint")


def _last_checkpoint_step(tmp_path: Path, trial: int) -> int:
    """The step of the trial's newest checkpoint, as the checkpoint itself records it."""
    found = latest_checkpoint(str(_checkpoints(tmp_path) / f"trial-{trial}"))
    assert found is not None, f"trial {trial} left no checkpoint"
    meta = torch.load(found[1], map_location="cpu", weights_only=False)[CHECKPOINT_KEY]
    assert meta == {"trial": trial, "global_step": found[0]}
    return found[0]


def _assert_resumed(retry: FrozenTrial, stopped: FrozenTrial, step: int) -> None:
    assert retry.user_attrs["resumed_from_trial"] == stopped.number
    assert retry.user_attrs["resumed_at_step"] == step
    assert retry.user_attrs["trained_steps"] == 40 - step  # only the remaining steps
    # The value at step 20 is the stopped trial's, copied; the retry itself reported only step 40.
    assert retry.intermediate_values == {20: stopped.intermediate_values[20], 40: retry.value}


@pytest.mark.parametrize("sig, reason", [(signal.SIGTERM, "terminated"), (signal.SIGINT, "interrupted")])
def test_stopped_worker_checkpoints_and_requeues_its_trial_and_a_rerun_resumes_it(
    write_spec, tmp_path: Path, sig: signal.Signals, reason: str
) -> None:
    spec = _spec(write_spec)
    process = _start(spec)
    _wait_for_first_checkpoint_of_second_trial(tmp_path, process)
    time.sleep(0.25)  # a few steps past it
    process.send_signal(sig)
    process.communicate(timeout=60)
    assert process.returncode == 130  # interrupted, like Ctrl-C
    trials = _study(tmp_path).get_trials()
    first, stopped, requeued = trials[0], trials[1], trials[2]
    assert first.state == TrialState.COMPLETE
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["fail_reason"] == reason
    assert requeued.state == TrialState.WAITING
    assert requeued.system_attrs["fixed_params"]["lr"] == stopped.params["lr"]
    step = _last_checkpoint_step(tmp_path, stopped.number)
    assert 20 < step < 40  # saved on the signal, after the step under way

    rerun = _start(spec)
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    after = _study(tmp_path).get_trials()
    assert (after[0].number, after[0].value) == (first.number, first.value)  # kept as it was
    assert after[2].state == TrialState.COMPLETE and after[2].params["lr"] == stopped.params["lr"]
    _assert_resumed(after[2], stopped, step)
    assert len(after[:]) == 4 and sum(t.state == TrialState.COMPLETE for t in after) == 3
    assert os.listdir(_checkpoints(tmp_path)) == []  # every trial has ended for good


def test_killed_worker_trial_is_failed_by_heartbeat_and_retried_from_its_checkpoint(
    write_spec, tmp_path: Path
) -> None:
    spec = _spec(write_spec)
    beat = {"OPTUNA_BIGMODEL_HEARTBEAT_S": "1", "OPTUNA_BIGMODEL_GRACE_S": "3"}
    process = _start(spec, beat)
    _wait_for_first_checkpoint_of_second_trial(tmp_path, process)
    process.kill()  # kill -9: no handler runs, the trial is left RUNNING
    process.communicate(timeout=30)
    trials = _study(tmp_path).get_trials()
    assert trials[1].state == TrialState.RUNNING
    first = trials[0]
    step = _last_checkpoint_step(tmp_path, 1)
    assert step == 20  # the validation's; the steps since are lost
    time.sleep(4)  # past the grace period: the dead worker's heartbeat is stale

    rerun = _start(spec, beat)
    _out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    after = _study(tmp_path).get_trials()
    dead, retry = after[1], [t for t in after if t.system_attrs.get("failed_trial") == after[1].number]
    assert dead.state == TrialState.FAIL
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params["lr"] == dead.params["lr"]
    _assert_resumed(retry[0], dead, step)
    assert (after[0].number, after[0].value) == (first.number, first.value)
    assert sum(t.state == TrialState.COMPLETE for t in after) == 3
    assert not [t for t in after if t.state == TrialState.RUNNING]
    assert os.listdir(_checkpoints(tmp_path)) == []
