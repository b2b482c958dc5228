"""run_study end to end with real Lightning runs: grid over workers, reproducibility, resume,
warm start, and refusing to mix two different studies under one name."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from optuna_bigmodel import BadInputError, load_spec, run_study
from optuna_bigmodel.study import WarmStart

TINY = "optuna_bigmodel.testing:tiny_task"


def _grid_spec(write_spec: Callable[..., Path]) -> Path:
    return write_spec(
        knobs={
            "lr": {"axis": "strategy", "choices": [0.05, 0.1, 0.2, 0.4]},
            "offset": {"axis": "structure", "choices": [0.0, 1.0, 2.0]},
            "width": {"axis": "structure", "choices": [0, 4]},
        },
        sampler="grid",
        budget={},
    )


def test_grid_over_three_worker_processes_covers_every_point_exactly_once(write_spec) -> None:
    study = run_study(_grid_spec(write_spec), workers=3, progress=False)
    trials = study.get_trials()
    points = sorted((t.params["lr"], t.params["offset"], t.params["width"]) for t in trials)
    expected = sorted(itertools.product([0.05, 0.1, 0.2, 0.4], [0.0, 1.0, 2.0], [0, 4]))
    assert points == expected  # 24 points, none twice, none lost
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    assert study.best_params["offset"] == 0.0


def test_running_a_finished_grid_again_adds_nothing(write_spec) -> None:
    path = _grid_spec(write_spec)
    first = run_study(path, progress=False)
    again = run_study(path, progress=False)
    assert len(again.trials) == len(first.trials) == 24


def _markov_spec(tmp_path: Path, db: str) -> dict:
    return {
        "name": "repro",
        "seed": 7,
        "task": {
            "name": "markov_gpt",
            "model": {"d_model": 16, "n_layers": 1, "n_heads": 2},
            "data": {"seq_len": 16, "n_train": 128, "n_val": 32, "n_test": 32, "batch_size": 16},
        },
        "knobs": {
            "lr": {"axis": "strategy", "low": 1.0e-3, "high": 1.0e-1, "log": True},
            "optimizer": {"axis": "strategy", "choices": ["adam", "sgd"]},
        },
        "sampler": "tpe",
        "storage": f"sqlite:///{tmp_path / db}",
        "run_dir": str(tmp_path / "runs"),
        "trainer": {"max_steps": 6, "val_check_interval": 3, "accelerator": "cpu", "progress_bar": False},
        "budget": {"n_trials": 3},
    }


def test_same_study_file_twice_gives_identical_params_and_values(tmp_path: Path) -> None:
    results = []
    for db in ("a.db", "b.db"):
        path = tmp_path / f"{db}.yaml"
        path.write_text(yaml.safe_dump(_markov_spec(tmp_path, db)))
        study = run_study(path, progress=False)
        results.append([(t.params, t.value, t.user_attrs["seed"]) for t in study.trials])
    assert results[0] == results[1]
    assert len({r[2] for r in results[0]}) == 3  # each trial its own seed
    assert all(t[1] is not None for t in results[0])


def test_interrupted_study_resumes_where_it_stopped(write_spec) -> None:
    path = write_spec(budget={"n_trials": 5})
    calls = []

    def interrupt_third(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        value = trial.suggest_float("lr", 0.01, 0.5, log=True)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return value

    with pytest.raises(KeyboardInterrupt):
        run_study(path, objective=interrupt_third, progress=False)
    before = run_study(path, n_trials=2, progress=False)  # nothing to add: 2 are done
    done = [(t.number, t.value) for t in before.get_trials(states=(TrialState.COMPLETE,))]
    study = run_study(path, progress=False)
    trials = study.get_trials()
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 5
    assert [(t.number, t.value) for t in complete][:2] == done  # earlier results kept as they were
    interrupted = trials[2]
    assert interrupted.user_attrs["fail_reason"] == "interrupted"
    assert trials[3].params["lr"] == interrupted.params["lr"]  # re-queued trial ran first


def test_warm_start_queues_the_best_configurations_of_another_study(write_spec, tmp_path) -> None:
    source = run_study(write_spec(name="source", budget={"n_trials": 6}), progress=False)
    best = sorted(source.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)[:2]
    # The new study tunes another space: only the knob they share travels.
    path = write_spec(
        name="target",
        knobs={
            "lr": {"axis": "strategy", "low": 0.01, "high": 0.5, "log": True},
            "width": {"axis": "structure", "choices": [0, 4]},
        },
        budget={"n_trials": 3},
    )
    target = run_study(
        path, warm_start_from=WarmStart("source", f"sqlite:///{tmp_path / 'study.db'}", 2), progress=False
    )
    first_two = target.trials[:2]
    assert [t.params["lr"] for t in first_two] == [t.params["lr"] for t in best]
    assert all(t.params["width"] in (0, 4) for t in first_two)  # sampled: not in the source
    assert first_two[0].user_attrs["warm_start_from"] == f"source#{best[0].number}"


def test_a_stored_study_with_another_search_space_is_refused(write_spec) -> None:
    run_study(write_spec(budget={"n_trials": 1}), progress=False)
    knobs = yaml.safe_load(write_spec().read_text())["knobs"]
    knobs["width"] = {"axis": "structure", "choices": [0, 4]}
    changed = write_spec(knobs=knobs, budget={"n_trials": 2})
    with pytest.raises(BadInputError, match="different knobs") as err:
        run_study(changed, progress=False)
    assert str(err.value).count("'offset'") == 2 and str(err.value).count("'width'") == 1
    study = run_study(changed, allow_changed_space=True, progress=False)
    assert len(study.trials) == 2


def test_a_bad_override_writes_nothing(write_spec, tmp_path) -> None:
    path = write_spec()
    with pytest.raises(BadInputError, match="n_trials"):
        run_study(path, n_trials=0)
    assert not (tmp_path / "study.db").exists()


def test_unknown_knob_for_a_builtin_task_is_refused_before_storage(write_spec, tmp_path) -> None:
    spec = load_spec(write_spec(task={"name": "markov_gpt"}))
    with pytest.raises(BadInputError, match="knobs.offset.*markov_gpt"):
        run_study(spec)
    assert not (tmp_path / "study.db").exists()


def test_objects_from_python_are_refused_with_several_workers(write_spec) -> None:
    with pytest.raises(BadInputError, match="workers"):
        run_study(write_spec(), sampler=optuna.samplers.RandomSampler(), workers=2)


def test_sampler_and_pruner_objects_are_used_as_given(write_spec) -> None:
    sampler = optuna.samplers.RandomSampler(seed=3)
    pruner = optuna.pruners.ThresholdPruner(upper=0.0)  # every reported value is above 0: prune
    study = run_study(write_spec(), sampler=sampler, pruner=pruner, progress=False)
    assert study.sampler is sampler
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 4
    assert all(t.user_attrs["pruned_at_step"] == 4 for t in study.trials)
