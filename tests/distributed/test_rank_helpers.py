"""ask_on_rank_zero and tell_on_rank_zero in each launch situation, faked through the environment
(the real launchers are exercised in test_user_scripts.py)."""

from __future__ import annotations

import json
import os

import optuna
import pytest

from optuna_bigmodel.study import ask_on_rank_zero, is_global_rank_zero, tell_on_rank_zero
from optuna_bigmodel.study._distributed import TRIAL_ENV

LAUNCH_VARS = ("RANK", "SLURM_PROCID", "SLURM_NTASKS", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE",
               TRIAL_ENV)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)


def _suggest(trial: optuna.trial.BaseTrial) -> dict:
    return {"lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
            "act": trial.suggest_categorical("act", ["relu", "tanh"])}  # fmt: skip


def test_alone_it_asks_once_and_leaves_the_trial_for_processes_lightning_starts() -> None:
    study = optuna.create_study()
    asked = []
    trial, params = ask_on_rank_zero(lambda: asked.append(1) or study.ask(), _suggest)
    assert asked == [1] and isinstance(trial, optuna.Trial) and params == trial.params
    shared = json.loads(os.environ[TRIAL_ENV])
    assert shared == {"pid": os.getpid(), "number": 0, "params": params}


def test_a_process_lightning_started_replays_rank_zeros_values_without_asking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = {"pid": os.getppid(), "number": 7, "params": {"lr": 0.125, "act": "tanh"}}
    monkeypatch.setenv(TRIAL_ENV, json.dumps(shared))
    monkeypatch.setenv("LOCAL_RANK", "1")
    trial, params = ask_on_rank_zero(lambda: pytest.fail("rank 1 must not ask"), _suggest)
    assert isinstance(trial, optuna.trial.FixedTrial) and trial.number == 7
    assert params == {"lr": 0.125, "act": "tanh"}
    assert not is_global_rank_zero()


def test_a_second_trial_after_lightnings_launcher_ran_here_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ask_on_rank_zero(optuna.create_study().ask, _suggest)
    monkeypatch.setenv("LOCAL_RANK", "0")  # what Lightning's launcher leaves in rank 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="once per script run"):
        ask_on_rank_zero(optuna.create_study().ask, _suggest)


@pytest.mark.parametrize(
    "env, zero",
    [({}, True), ({"RANK": "0"}, True), ({"RANK": "3"}, False), ({"SLURM_PROCID": "1"}, False),
     ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False), ({"LOCAL_RANK": "0"}, True)],
)  # fmt: skip
def test_global_rank_zero_from_each_launchers_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict, zero: bool
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_global_rank_zero() is zero


def test_tell_on_rank_zero_completes_with_the_last_value_and_does_nothing_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Seen:  # what OptunaPruning.final_value gives after a run that was not pruned
        def final_value(self) -> float:
            return 0.5

    study = optuna.create_study()
    trial = study.ask()
    monkeypatch.setenv("RANK", "1")
    assert tell_on_rank_zero(trial, Seen()) is None  # type: ignore[arg-type]
    monkeypatch.setenv("RANK", "0")
    frozen = tell_on_rank_zero(trial, Seen())  # type: ignore[arg-type]
    assert frozen is not None and frozen.value == 0.5 and study.trials[0].state.name == "COMPLETE"
