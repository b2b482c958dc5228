"""The worker loop: claiming queued trials, ending states, budgets, interruptions."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_bigmodel._errors import BadInputError
from optuna_bigmodel.study import open_storage, run_trials
from optuna_bigmodel.study._loop import TrialsKeepFailing, claim_queued_trial


def _claim_all(url: str, name: str) -> None:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    run_trials(study, lambda t: t.suggest_int("i", 0, 999), exhaustive=True, n_trials=None, timeout=None)


def test_each_queued_trial_is_claimed_by_exactly_one_of_three_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = optuna.create_study(storage=open_storage(url), study_name="q")
    for i in range(60):
        study.enqueue_trial({"i": i})
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_claim_all, args=(url, "q")) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    trials = study.get_trials()
    assert len(trials) == 60  # no trial created beyond the queue
    assert sorted(t.params["i"] for t in trials) == list(range(60))
    assert {t.state for t in trials} == {TrialState.COMPLETE}


def test_claim_returns_none_when_queue_is_empty() -> None:
    study = optuna.create_study()
    assert claim_queued_trial(study) is None
    study.enqueue_trial({"x": 1.0})
    trial = claim_queued_trial(study)
    assert trial is not None and study.trials[0].state == TrialState.RUNNING
    assert claim_queued_trial(study) is None


def test_budget_counts_complete_pruned_and_running() -> None:
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        if trial.number % 2:
            raise optuna.TrialPruned()
        return trial.suggest_float("x", 0, 1)

    run_trials(study, objective, exhaustive=False, n_trials=5, timeout=None)
    states = [t.state for t in study.trials]
    assert len(states) == 5
    assert states.count(TrialState.PRUNED) == 2
    run_trials(study, objective, exhaustive=False, n_trials=5, timeout=None)
    assert len(study.trials) == 5  # the budget is the study's, not this call's


def test_a_compute_budget_counts_every_finished_trials_steps() -> None:
    # Trial costs: 10 (reported steps), 25 (a compute_steps record), 10 (pruned), 10 (failed)...
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        trial.report(1.0, 10)
        if trial.number == 1:
            trial.set_user_attr("compute_steps", 25)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            raise ValueError("broken")
        return 1.0

    run_trials(study, objective, exhaustive=False, n_trials=None, timeout=None, compute_steps=55)
    # After 4 trials 55 steps are spent: no fifth one starts (at 54 a fifth one would).
    assert len(study.trials) == 4
    run_trials(study, objective, exhaustive=False, n_trials=None, timeout=None, compute_steps=56)
    assert len(study.trials) == 5


def test_failed_trial_records_its_reason_and_the_study_goes_on() -> None:
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 1:
            raise ValueError("broken batch")
        return 1.0

    run_trials(study, objective, exhaustive=False, n_trials=3, timeout=None)
    failed = study.trials[1]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == "ValueError: broken batch"
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3


def test_three_failures_in_a_row_stop_the_study() -> None:
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        raise RuntimeError("always")

    with pytest.raises(TrialsKeepFailing, match="3 trials in a row failed.*always"):
        run_trials(study, objective, exhaustive=False, n_trials=10, timeout=None)
    assert len(study.trials) == 3


def test_bad_input_fails_the_trial_and_stops() -> None:
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        raise BadInputError("monitor: no such metric")

    with pytest.raises(BadInputError):
        run_trials(study, objective, exhaustive=False, n_trials=10, timeout=None)
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_interrupted_trial_is_failed_and_requeued_with_its_params() -> None:
    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise KeyboardInterrupt
        return x

    with pytest.raises(KeyboardInterrupt):
        run_trials(study, objective, exhaustive=False, n_trials=4, timeout=None)
    interrupted, requeued = study.trials[1], study.trials[2]
    assert interrupted.state == TrialState.FAIL
    assert interrupted.user_attrs["fail_reason"] == "interrupted"
    assert requeued.state == TrialState.WAITING
    assert requeued.system_attrs["fixed_params"] == interrupted.params
    run_trials(study, lambda t: t.suggest_float("x", 0, 1), exhaustive=False, n_trials=4, timeout=None)
    assert study.trials[2].state == TrialState.COMPLETE
    assert study.trials[2].params == interrupted.params


def test_timeout_stops_starting_trials() -> None:
    study = optuna.create_study()
    run_trials(study, lambda t: 0.0, exhaustive=False, n_trials=None, timeout=0.0)
    assert study.trials == []


def test_trial_failure_stores_its_short_reason_and_detail() -> None:
    from optuna_bigmodel.study import TrialFailure

    study = optuna.create_study()

    def objective(trial: optuna.Trial) -> float:
        if trial.number == 0:
            raise TrialFailure("oom", "CUDA out of memory, tried to allocate 2 GiB")
        return 1.0

    run_trials(study, objective, exhaustive=False, n_trials=1, timeout=None)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    trial = study.trials[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs == {"fail_reason": "oom", "fail_detail": "CUDA out of memory, tried to allocate 2 GiB"}
